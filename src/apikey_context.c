/*
 * apikey_context.c
 *		set_api_key_context(): the claim context of an integration that holds an API key.
 *
 * The key is verified by apikey_verify() (one lookup, every refusal, the use counted and
 * limited: once per call), and its row becomes the claims of a short-lived token signed by
 * the extension's own key (keystore_internal.c): sub = the key's id, tenant_id = its tenant,
 * permissions = its effective scopes, crm_actor_type = "api_key", exp at most
 * APIKEY_CONTEXT_SECONDS ahead and never after the key stops being valid.  That token is
 * then set by the claim context's own path (ctx_set_token), so the context reaches parallel
 * workers and survives nothing beyond its transaction, exactly as a user's: workers verify
 * the token's signature, they do not look the key up or count it again.  The actor type
 * "api_key" comes from the key that signed, never from a claim (context_internal.c), and
 * the tenant is the key's, without memberships (context_tenant.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "apikey_context.h"
#include "apikey_verify.h"
#include "citus_context.h"
#include "context.h"
#include "context_internal.h"
#include "crm_security.h"
#include "json_util.h"
#include "keys.h"
#include "keystore_internal.h"

/* The claims of the token for a verified key, as a jsonb object. */
static Jsonb *
apikey_context_claims(const ApiKeyVerified *k)
{
	StringInfoData buf;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz exp = now + (TimestampTz) APIKEY_CONTEXT_SECONDS * USECS_PER_SEC;
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&k->id)));
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	if (k->valid_until != DT_NOEND && k->valid_until < exp)
		exp = k->valid_until;
	if (exp <= now + 1000)
		ereport(ERROR,
				(errcode(CRM_ERRCODE_INVALID_AUTH),
				 errmsg("invalid API key"),
				 errdetail("The API key expired."),
				 errhidestmt(true)));

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"iss\":");
	json_append_string(&buf, KS_INTERNAL_ISSUER, strlen(KS_INTERNAL_ISSUER));
	appendStringInfoString(&buf, ",\"sub\":");
	json_append_string(&buf, id, strlen(id));
	appendStringInfoString(&buf, ",\"" CTX_INTERNAL_ACTOR_CLAIM "\":\"api_key\"");
	if (k->tenant_id != NULL)
	{
		appendStringInfoString(&buf, ",\"" CTX_INTERNAL_TENANT_CLAIM "\":");
		json_append_string(&buf, VARDATA_ANY(k->tenant_id), VARSIZE_ANY_EXHDR(k->tenant_id));
	}
	appendStringInfoString(&buf, ",\"" CTX_INTERNAL_PERMS_CLAIM "\":[");
	deconstruct_array(k->scopes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		if (buf.data[buf.len - 1] != '[')
			appendStringInfoChar(&buf, ',');
		json_append_string(&buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	appendStringInfoChar(&buf, ']');
	ks_internal_append_time(&buf, "iat", now);
	ks_internal_append_time(&buf, "exp", exp);
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * SQL function: set_api_key_context(api_key text, service text DEFAULT NULL,
 *		client_ip inet DEFAULT NULL) returns jsonb
 * Not strict: a NULL key is refused like any other (28000).  The lookup and the count run
 * as the tables' owner (as verify_api_key() does); the context is set as the caller.
 */
PG_FUNCTION_INFO_V1(crm_set_api_key_context);
Datum
crm_set_api_key_context(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	ApiKeyVerified k;
	Oid			save_userid;
	int			save_sec_context;
	Jsonb	   *claims;
	char	   *token;
	size_t		len;
	Jsonb	   *result;

	keys_hide_statement_push(&hide);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(apikey_tables_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	apikey_verify(PG_ARGISNULL(0) ? NULL : (text *) PG_GETARG_POINTER(0),
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
				  PG_ARGISNULL(2) ? NULL : PG_GETARG_INET_P(2),
				  &k);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	claims = apikey_context_claims(&k);
	token = text_to_cstring(ks_internal_sign(claims));
	len = strlen(token);
	/* The context's own path: verified again, the tenant resolved, the settings set. */
	result = ctx_set_token(token, len, NULL, NULL);
	citus_ctx_propagate();		/* the same context on Citus workers */
	explicit_bzero(token, len);
	keys_hide_statement_pop(&hide);
	PG_RETURN_JSONB_P(result);
}
