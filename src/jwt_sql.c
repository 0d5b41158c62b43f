/*
 * jwt_sql.c
 *		The SQL functions of compact JWT and JWS (sql/20_jwt.sql): jwt_verify(), jwt_sign(),
 *		jwt_decode(), jws_verify(): their arguments, and the core of jwt.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "crm_security.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "keys.h"
#include "signature.h"

text *
jwt_token_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		crm_auth_refuse(CRM_AUTH_MALFORMED, "token", "No token was given.", NULL);
	return PG_GETARG_TEXT_PP(argno);
}

static void
jwt_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
}

/*
 * The key argument: text (secret or PEM) or jsonb (JWK or JWKS), parsed once per backend;
 * the private members of JWKs only when signing.
 */
static CrmKeySet *
jwt_key_arg(FunctionCallInfo fcinfo, int argno, bool jsonb_key, bool to_sign)
{
	if (jsonb_key)
		return keys_cached_jsonb(PG_GETARG_JSONB_P(argno), to_sign);
	return keys_cached_text(PG_GETARG_TEXT_PP(argno));
}

/* Options from the SQL arguments (algorithms, audience, issuer, leeway) at 2..5. */
static void
jwt_options_from_args(FunctionCallInfo fcinfo, JwtVerifyOptions *opts)
{
	jwt_options_init(opts);
	if (!PG_ARGISNULL(2))
		jwt_options_set_algorithms(opts, PG_GETARG_ARRAYTYPE_P(2));
	if (!PG_ARGISNULL(3))
		opts->audience = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (!PG_ARGISNULL(4))
		opts->issuer = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (!PG_ARGISNULL(5))
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(5);

		opts->leeway = (double) iv->time / USECS_PER_SEC +
			(double) iv->day * SECS_PER_DAY + (double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
		if (opts->leeway < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("leeway must not be negative")));
	}
}

static Datum
jwt_verify_sql(FunctionCallInfo fcinfo, bool jsonb_key)
{
	JwtVerifyOptions opts;
	text	   *token;
	CrmKeySet  *keys;
	Jsonb	   *claims;
	ErrorContextCallback hide;

	keys_hide_statement_push(&hide);
	token = jwt_token_arg(fcinfo, 0);
	jwt_require_arg(fcinfo, 1, "key");
	jwt_check_length(VARSIZE_ANY_EXHDR(token));
	jwt_options_from_args(fcinfo, &opts);
	keys = jwt_key_arg(fcinfo, 1, jsonb_key, false);
	claims = jwt_verify_token(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), keys, &opts, NULL);
	keys_hide_statement_pop(&hide);
	PG_RETURN_JSONB_P(claims);
}

/* SQL function: jwt_verify(token text, key text, algorithms text[], audience text, issuer text, leeway interval) returns jsonb */
PG_FUNCTION_INFO_V1(crm_jwt_verify_text);
Datum
crm_jwt_verify_text(PG_FUNCTION_ARGS)
{
	return jwt_verify_sql(fcinfo, false);
}

/* SQL function: jwt_verify(token text, key jsonb, algorithms text[], audience text, issuer text, leeway interval) returns jsonb */
PG_FUNCTION_INFO_V1(crm_jwt_verify_jsonb);
Datum
crm_jwt_verify_jsonb(PG_FUNCTION_ARGS)
{
	return jwt_verify_sql(fcinfo, true);
}

static Datum
jwt_sign_sql(FunctionCallInfo fcinfo, bool jsonb_key)
{
	CrmKeySet  *keys;
	const CrmAlg *alg;
	text	   *token;
	ErrorContextCallback hide;

	keys_hide_statement_push(&hide);
	jwt_require_arg(fcinfo, 0, "claims");
	jwt_require_arg(fcinfo, 1, "key");
	jwt_require_arg(fcinfo, 2, "algorithm");
	alg = crm_alg_from_arg(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	keys = jwt_key_arg(fcinfo, 1, jsonb_key, true);
	token = jwt_sign_claims(PG_GETARG_JSONB_P(0), sig_signing_key(keys, alg), alg,
							PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	keys_hide_statement_pop(&hide);
	PG_RETURN_TEXT_P(token);
}

/* SQL function: jwt_sign(claims jsonb, key text, algorithm text, header jsonb) returns text */
PG_FUNCTION_INFO_V1(crm_jwt_sign_text);
Datum
crm_jwt_sign_text(PG_FUNCTION_ARGS)
{
	return jwt_sign_sql(fcinfo, false);
}

/* SQL function: jwt_sign(claims jsonb, key jsonb, algorithm text, header jsonb) returns text */
PG_FUNCTION_INFO_V1(crm_jwt_sign_jsonb);
Datum
crm_jwt_sign_jsonb(PG_FUNCTION_ARGS)
{
	return jwt_sign_sql(fcinfo, true);
}

/* SQL function: jwt_decode(token text) returns table(header jsonb, payload jsonb, signature bytea) */
PG_FUNCTION_INFO_V1(crm_jwt_decode);
Datum
crm_jwt_decode(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Jsonb	   *header;
	Jsonb	   *payload;
	bytea	   *sig;
	ErrorContextCallback hide;

	keys_hide_statement_push(&hide);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	jwt_decode_token(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), &header, &payload, &sig);
	values[0] = JsonbPGetDatum(header);
	values[1] = JsonbPGetDatum(payload);
	values[2] = PointerGetDatum(sig);
	keys_hide_statement_pop(&hide);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

static Datum
jws_verify_sql(FunctionCallInfo fcinfo, bool jsonb_key)
{
	text	   *jws = PG_GETARG_TEXT_PP(0);
	CrmKeySet  *keys;
	bytea	   *payload;
	ErrorContextCallback hide;

	keys_hide_statement_push(&hide);
	jwt_check_length(VARSIZE_ANY_EXHDR(jws));
	keys = jwt_key_arg(fcinfo, 1, jsonb_key, false);
	payload = jws_verify_token(VARDATA_ANY(jws), VARSIZE_ANY_EXHDR(jws), keys, NULL);
	keys_hide_statement_pop(&hide);
	PG_RETURN_BYTEA_P(payload);
}

/* SQL function: jws_verify(jws text, key jsonb) returns bytea */
PG_FUNCTION_INFO_V1(crm_jws_verify_jsonb);
Datum
crm_jws_verify_jsonb(PG_FUNCTION_ARGS)
{
	return jws_verify_sql(fcinfo, true);
}

/* SQL function: jws_verify(jws text, key text) returns bytea */
PG_FUNCTION_INFO_V1(crm_jws_verify_text);
Datum
crm_jws_verify_text(PG_FUNCTION_ARGS)
{
	return jws_verify_sql(fcinfo, false);
}
