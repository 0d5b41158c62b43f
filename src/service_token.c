/*
 * service_token.c
 *		issue_service_token(): a short-lived token, signed by the extension's own key
 *		(keystore_internal.c), with which one registered service calls another.
 *
 * Minting a token is impersonating the service, so only superusers and members of
 * crm_security_token_issuer may (EXECUTE is revoked from PUBLIC, and this file checks the
 * membership again), and only for a service that service_registry lets call the audience
 * (both registered and enabled).  set_claim_context() on the token gives actor_type()
 * 'service' after checking the same registry again, at every verification
 * (context_internal.c).
 */
#include "postgres.h"

#include <openssl/rand.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "b64url.h"
#include "context_internal.h"
#include "crm_security.h"
#include "json_util.h"
#include "keystore_internal.h"
#include "service_token.h"

/* A service name: a lowercase letter or digit, then [a-z0-9._-], at most 63 bytes. */
static bool
service_name_valid(const char *s, int len)
{
	int			i;

	if (len < 1 || len > 63)
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];
		bool		alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

static char *
service_name_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", what)));
	t = PG_GETARG_TEXT_PP(argno);
	if (!service_name_valid(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s", what),
				 errdetail("A service name is a lowercase letter or digit, then lowercase letters, digits, \".\", \"_\" or \"-\", at most 63 bytes.")));
	return text_to_cstring(t);
}

/* The lifetime in microseconds: 1 second to SERVICE_TOKEN_MAX_SECONDS, no months. */
static int64
service_ttl_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *iv;
	int64		usecs;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must not be null")));
	iv = PG_GETARG_INTERVAL_P(argno);
	if (iv->month != 0 || iv->day < -1 || iv->day > 1)
		usecs = -1;
	else
		usecs = iv->time + (int64) iv->day * USECS_PER_DAY;
	if (usecs < USECS_PER_SEC || usecs > (int64) SERVICE_TOKEN_MAX_SECONDS * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid service token lifetime"),
				 errdetail("A service token lives from 1 second to %d seconds.", SERVICE_TOKEN_MAX_SECONDS)));
	return usecs;
}

/* Superusers and members of the issuer role only. */
static void
service_check_issuer(void)
{
	Oid			issuer = get_role_oid(SERVICE_TOKEN_ISSUER_ROLE, true);

	if (superuser())
		return;
	if (OidIsValid(issuer) && has_privs_of_role(GetUserId(), issuer))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to issue service tokens"),
			 errdetail("Only superusers and members of %s may issue service tokens.",
					   SERVICE_TOKEN_ISSUER_ROLE)));
}

/*
 * SQL function: issue_service_token(service text, audience text,
 *		ttl interval DEFAULT '60 seconds') returns text
 */
PG_FUNCTION_INFO_V1(crm_issue_service_token);
Datum
crm_issue_service_token(PG_FUNCTION_ARGS)
{
	char	   *service,
			   *audience;
	int64		ttl;
	const char *why;
	TimestampTz now = GetCurrentTimestamp();
	StringInfoData buf;
	unsigned char rnd[16];
	char	   *jti;

	service_check_issuer();
	service = service_name_arg(fcinfo, 0, "service name");
	audience = service_name_arg(fcinfo, 1, "audience");
	ttl = service_ttl_arg(fcinfo, 2);

	why = ctx_service_refusal(service, audience);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("service \"%s\" may not call service \"%s\"", service, audience),
				 errdetail_internal("%s", why)));

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	jti = b64url_encode_palloc(rnd, sizeof(rnd));

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"iss\":");
	json_append_string(&buf, KS_INTERNAL_ISSUER, strlen(KS_INTERNAL_ISSUER));
	appendStringInfoString(&buf, ",\"sub\":");
	json_append_string(&buf, service, strlen(service));
	appendStringInfoString(&buf, ",\"aud\":");
	json_append_string(&buf, audience, strlen(audience));
	appendStringInfoString(&buf, ",\"" CTX_INTERNAL_ACTOR_CLAIM "\":\"service\",\"jti\":");
	json_append_string(&buf, jti, strlen(jti));
	ks_internal_append_time(&buf, "iat", now);
	ks_internal_append_time(&buf, "exp", now + ttl);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_TEXT_P(ks_internal_sign(DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																		 CStringGetDatum(buf.data)))));
}
