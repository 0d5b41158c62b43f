/*
 * context_sql.c
 *		The SQL functions of the claim context (sql/30_context.sql): set_claim_context(),
 *		clear_claim_context(), claims(), claim(), user_id(), tenant_id(), app_role(),
 *		actor_type().  The context itself, and every value derived from it, is context.c's.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "citus_context.h"
#include "context.h"
#include "context_checks.h"
#include "context_status.h"
#include "crm_security.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "keys.h"

/* An optional text argument as a C string, or NULL. */
static char *
ctx_opt_text_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * SQL function: set_claim_context(token text, tenant_id text, request_id text) returns jsonb
 * (not strict: a NULL token is refused, NULL tenant_id and request_id mean none)
 */
PG_FUNCTION_INFO_V1(crm_set_claim_context);
Datum
crm_set_claim_context(PG_FUNCTION_ARGS)
{
	text	   *t;
	char	   *token;
	size_t		len;
	Jsonb	   *claims;
	char	   *tenant,
			   *request_id;
	ErrorContextCallback hide;

	/* The statement carries the token: keep it out of the log on every refusal. */
	keys_hide_statement_push(&hide);
	t = jwt_token_arg(fcinfo, 0);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		crm_auth_refuse(CRM_AUTH_MALFORMED, "token", "The token is empty.", NULL);
	jwt_check_length((int) Min(len, (size_t) INT_MAX));
	tenant = ctx_opt_text_arg(fcinfo, 1);
	request_id = ctx_opt_text_arg(fcinfo, 2);
	if (request_id != NULL && strlen(request_id) > CTX_MAX_REQUEST_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request id is too long"),
				 errdetail("A request id is at most %d bytes.", CTX_MAX_REQUEST_ID_LEN)));
	token = text_to_cstring(t);
	claims = ctx_set_token(token, len, tenant, request_id);
	citus_ctx_propagate();		/* the same context on Citus workers */
	explicit_bzero(token, len);
	keys_hide_statement_pop(&hide);
	ctx_usage_warnings();		/* context_status.c */
	PG_RETURN_JSONB_P(claims);
}

/* SQL function: clear_claim_context() returns void */
PG_FUNCTION_INFO_V1(crm_clear_claim_context);
Datum
crm_clear_claim_context(PG_FUNCTION_ARGS)
{
	ctx_clear();
	citus_ctx_propagate();
	PG_RETURN_VOID();
}

/* SQL function: claims() returns jsonb */
PG_FUNCTION_INFO_V1(crm_claims);
Datum
crm_claims(PG_FUNCTION_ARGS)
{
	Jsonb	   *j = ctx_claims();

	if (j == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(j);
}

/* A text result, NULL for a NULL string. */
static Datum
ctx_return_text(FunctionCallInfo fcinfo, const char *s)
{
	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(s));
}

/* SQL function: claim(path text) returns text */
PG_FUNCTION_INFO_V1(crm_claim);
Datum
crm_claim(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));

	return ctx_return_text(fcinfo, ctx_claim_text(path));
}

/* SQL function: user_id() returns text */
PG_FUNCTION_INFO_V1(crm_user_id);
Datum
crm_user_id(PG_FUNCTION_ARGS)
{
	return ctx_return_text(fcinfo, ctx_user_id_text());
}

/* SQL function: tenant_id() returns text */
PG_FUNCTION_INFO_V1(crm_tenant_id);
Datum
crm_tenant_id(PG_FUNCTION_ARGS)
{
	return ctx_return_text(fcinfo, ctx_tenant_text());
}

/* SQL function: app_role() returns text */
PG_FUNCTION_INFO_V1(crm_app_role);
Datum
crm_app_role(PG_FUNCTION_ARGS)
{
	return ctx_return_text(fcinfo, ctx_role_text());
}

/* SQL function: actor_type() returns text */
PG_FUNCTION_INFO_V1(crm_actor_type);
Datum
crm_actor_type(PG_FUNCTION_ARGS)
{
	return ctx_return_text(fcinfo, ctx_actor_type());
}
