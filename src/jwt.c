/*
 * jwt.c
 *		Compact JWT and JWS: verification with claim checks, signing, decoding.
 *
 * The order of the checks matters: the length limit comes before any decoding, the
 * header is parsed and its algorithm checked against the key before the signature is
 * computed, and the payload is parsed only after the signature verified, so unverified
 * input reaches as little code as possible.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "b64url.h"
#include "crm_security.h"
#include "json_util.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "security_events.h"
#include "keys.h"
#include "signature.h"


/* A token split into its parts, header decoded and checked. */
typedef struct JwtParts
{
	const char *token;
	int			signing_input_len;	/* header.payload */
	const char *payload_b64;
	int			payload_b64_len;
	const char *sig_b64;
	int			sig_b64_len;
	Jsonb	   *header;
	const CrmAlg *alg;
	char	   *kid;
} JwtParts;

/*
 * Headers repeat from token to token (same alg, kid, typ), so the outcome of checking one
 * is kept, keyed by its exact base64url text.
 */
#define JWT_HEADER_CACHE_SIZE 8
#define JWT_HEADER_CACHE_MAX 256

typedef struct JwtHeaderCacheEntry
{
	int			len;			/* 0: empty slot */
	char		seg[JWT_HEADER_CACHE_MAX];
	const CrmAlg *alg;
	char	   *kid;			/* in TopMemoryContext, or NULL */
} JwtHeaderCacheEntry;

static JwtHeaderCacheEntry jwt_header_cache[JWT_HEADER_CACHE_SIZE];
static int	jwt_header_cache_next = 0;

static bool
jwt_header_cache_lookup(const char *seg, int len, JwtParts *parts)
{
	int			i;

	if (len > JWT_HEADER_CACHE_MAX)
		return false;
	for (i = 0; i < JWT_HEADER_CACHE_SIZE; i++)
	{
		JwtHeaderCacheEntry *e = &jwt_header_cache[i];

		if (e->len == len && memcmp(e->seg, seg, len) == 0)
		{
			parts->alg = e->alg;
			parts->kid = e->kid;
			return true;
		}
	}
	return false;
}

static void
jwt_header_cache_add(const char *seg, int len, const JwtParts *parts)
{
	JwtHeaderCacheEntry *e;

	if (len > JWT_HEADER_CACHE_MAX)
		return;
	e = &jwt_header_cache[jwt_header_cache_next];
	jwt_header_cache_next = (jwt_header_cache_next + 1) % JWT_HEADER_CACHE_SIZE;
	if (e->kid)
		pfree(e->kid);
	e->kid = parts->kid ? MemoryContextStrdup(TopMemoryContext, parts->kid) : NULL;
	e->alg = parts->alg;
	memcpy(e->seg, seg, len);
	e->len = len;
}

/* Refuse a token for `reason` (jwt_errors.c: auth_failures, the SQLSTATE, the detail). */
static void
jwt_refuse(CrmAuthReason reason, const char *what, const char *detail)
{
	crm_auth_refuse(reason, what, detail, NULL);
}

/* crm_security.max_token_length: the longest token, in bytes, that any function looks at. */
static int	jwt_max_token_length = 65536;

void
jwt_init(void)
{
	DefineCustomIntVariable("crm_security.max_token_length",
							"Longest token, in bytes, that is parsed at all.",
							"Longer tokens are refused before any decoding.",
							&jwt_max_token_length,
							65536, 256, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

bool
jwt_length_allowed(size_t len)
{
	return len <= (size_t) jwt_max_token_length;
}

void
jwt_check_length(int len)
{
	if (len > jwt_max_token_length)
	{
		crm_auth_refuse(CRM_AUTH_MALFORMED, "token",
						psprintf("The token is %d bytes long; crm_security.max_token_length allows %d.",
								 len, jwt_max_token_length), NULL);
	}
}

/*
 * The time that exp, nbf and key windows are checked against: the start of the current
 * statement (or of the transaction, in a procedure that commits).  Not the start of the
 * transaction, which a long transaction holds for as long as it likes; and fixed for the
 * whole statement, so that the STABLE functions jwt_verify() and jws_verify() give the same
 * answer for every row of a scan and in every parallel worker of the statement.  The key
 * store (set_claim_context) uses the current time, see ks_verify_token().
 */
void
jwt_options_init(JwtVerifyOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->now = Max(GetCurrentStatementStartTimestamp(), GetCurrentTransactionStartTimestamp());
}

/* Parse a text[] of algorithm names (22023 for an unknown name or "none"). */
void
jwt_options_set_algorithms(JwtVerifyOptions *opts, ArrayType *algs)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(algs, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the list of allowed algorithms is empty")));
	opts->algorithms = palloc(sizeof(CrmAlg *) * n);
	opts->nalgorithms = n;
	for (i = 0; i < n; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the list of allowed algorithms contains a null")));
		name = TextDatumGetCString(elems[i]);
		opts->algorithms[i] = crm_alg_from_arg(name);
	}
}

/*
 * Split a compact token into three segments, decode and check its header.  JWS payloads
 * may be empty; everything else must not be.
 */
static void
jwt_split(const char *token, int len, const char *what, bool want_header, JwtParts *parts)
{
	const char *dot1,
			   *dot2;
	unsigned char *hbytes;
	int			hlen;
	const char *why;
	bool		ok;
	char	   *alg;
	int			ndots = 0;
	int			i;

	memset(parts, 0, sizeof(*parts));
	jwt_check_length(len);
	for (i = 0; i < len; i++)
		if (token[i] == '.')
			ndots++;
	if (ndots != 2)
		crm_auth_refuse(CRM_AUTH_MALFORMED, what,
						psprintf("A compact %s has three segments separated by dots; this one has %d.",
								 what, ndots + 1),
						crm_auth_bearer_hint(token, len));
	dot1 = memchr(token, '.', len);
	dot2 = memchr(dot1 + 1, '.', len - (dot1 + 1 - token));
	parts->token = token;
	parts->signing_input_len = dot2 - token;
	parts->payload_b64 = dot1 + 1;
	parts->payload_b64_len = dot2 - (dot1 + 1);
	parts->sig_b64 = dot2 + 1;
	parts->sig_b64_len = len - (dot2 + 1 - token);

	if (dot1 == token)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The header segment is empty.");
	if (!want_header && jwt_header_cache_lookup(token, dot1 - token, parts))
	{
		if (parts->sig_b64_len == 0)
			jwt_refuse(CRM_AUTH_MALFORMED, what, "The signature segment is empty.");
		return;
	}

	hbytes = b64url_decode_palloc(token, dot1 - token, &hlen);
	if (hbytes == NULL)
		crm_auth_refuse(CRM_AUTH_MALFORMED, what, "The header is not valid base64url.",
						crm_auth_bearer_hint(token, len));
	parts->header = json_parse_object((char *) hbytes, hlen, &why);
	if (parts->header == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, what, psprintf("The header is not an acceptable JSON object: %s", why));
	/* Decoding for inspection stops here: an unsecured or odd header is shown, not judged. */
	if (want_header)
		return;

	alg = json_member_string(&parts->header->root, "alg", &ok);
	if (!ok)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The header member \"alg\" is not a string.");
	if (alg == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The header has no \"alg\" member.");
	if (pg_strcasecmp(alg, "none") == 0)
		jwt_refuse(CRM_AUTH_ALGORITHM, what, "Unsecured tokens (\"alg\": \"none\") are never accepted.");
	parts->alg = crm_alg_lookup(alg);
	if (parts->alg == NULL)
		jwt_refuse(CRM_AUTH_ALGORITHM, what, psprintf("The algorithm \"%.32s\" is not supported.", alg));

	if (json_member(&parts->header->root, "crit") != NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The header lists critical extensions (\"crit\"), and none is supported.");
	if (json_member(&parts->header->root, "b64") != NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "Unencoded payloads (\"b64\") are not supported.");
	parts->kid = json_member_string(&parts->header->root, "kid", &ok);
	if (!ok)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The header member \"kid\" is not a string.");
	jwt_header_cache_add(token, dot1 - token, parts);
	if (parts->sig_b64_len == 0)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The signature segment is empty.");
}

/*
 * Check the algorithm against the allowlist, pick the candidate keys and verify the
 * signature with them; returns the key that verified.
 */
static const CrmKey *
jwt_verify_signature(JwtParts *parts, CrmKeySet *keys, const JwtVerifyOptions *opts,
					 const char *what)
{
	const CrmAlg *alg = parts->alg;
	const CrmKey *candidates[JWT_MAX_CANDIDATES];
	int			ncand = 0;
	bool		kid_seen = false;
	const char *refusal = NULL;
	unsigned char *sig;
	int			siglen;
	int			i;

	if (opts != NULL && opts->algorithms != NULL)
	{
		bool		allowed = false;

		for (i = 0; i < opts->nalgorithms; i++)
			if (opts->algorithms[i]->id == alg->id)
				allowed = true;
		if (!allowed)
			jwt_refuse(CRM_AUTH_ALGORITHM, what, psprintf("The algorithm \"%s\" is not allowed.", alg->name));
	}

	for (i = 0; i < keys->nkeys && ncand < JWT_MAX_CANDIDATES; i++)
	{
		const CrmKey *key = keys->keys[i];
		const char *why;

		if (keys->select_by_kid && parts->kid != NULL &&
			(key->kid == NULL || strcmp(key->kid, parts->kid) != 0))
			continue;
		kid_seen = true;
		why = keys_refusal(key, alg, CRM_KEY_FOR_VERIFY);
		if (why == NULL)
			candidates[ncand++] = key;
		else if (refusal == NULL)
			refusal = why;
	}
	if (ncand == 0)
	{
		if (keys->select_by_kid && parts->kid != NULL && !kid_seen)
			jwt_refuse(CRM_AUTH_UNKNOWN_KEY, what, "No key has the token's \"kid\".");
		if (refusal != NULL)
			jwt_refuse(CRM_AUTH_ALGORITHM, what, refusal);
		authfail_report("token", "algorithm", NULL);
		ereport(ERROR,
				(crm_auth_errcode(CRM_AUTH_ALGORITHM),
				 errmsg("invalid %s", what),
				 crm_auth_errdetail(CRM_AUTH_ALGORITHM,
									psprintf("No key can verify algorithm \"%s\".", alg->name)),
				 keys->skipped_detail ?
				 errhint("A member of the JWKS was skipped: %s", keys->skipped_detail) : 0));
	}

	sig = b64url_decode_palloc(parts->sig_b64, parts->sig_b64_len, &siglen);
	if (sig == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, what, "The signature is not valid base64url.");
	for (i = 0; i < ncand; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (sig_verify(candidates[i], alg, (const unsigned char *) parts->token,
						parts->signing_input_len, sig, siglen))
			return candidates[i];
	}
	jwt_refuse(CRM_AUTH_BAD_SIGNATURE, what, "The signature does not match.");
	return NULL;				/* keep compiler quiet */
}

/* A numeric claim as seconds, or refuse the token. */
static bool
jwt_numeric_claim(Jsonb *claims, const char *name, double *value)
{
	JsonbValue *v = json_member(&claims->root, name);

	if (v == NULL)
		return false;
	if (v->type != jbvNumeric)
		jwt_refuse(CRM_AUTH_INVALID_CLAIM, "token", psprintf("The \"%s\" claim is not a number.", name));
	*value = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
												NumericGetDatum(v->val.numeric)));
	if (isnan(*value))
		jwt_refuse(CRM_AUTH_INVALID_CLAIM, "token", psprintf("The \"%s\" claim is not a number.", name));
	return true;
}

/*
 * Until when verified claims hold: their "exp" plus the leeway, or DT_NOEND without "exp".
 * For claims that jwt_verify_token() accepted (so "exp" is a number in range).
 */
TimestampTz
jwt_claims_end(Jsonb *claims, const JwtVerifyOptions *opts)
{
	double		exp;
	double		end;

	if (!jwt_numeric_claim(claims, "exp", &exp))
		return DT_NOEND;
	end = exp + opts->leeway - (double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
	if (end * USECS_PER_SEC >= (double) DT_NOEND)
		return DT_NOEND;
	return (TimestampTz) (end * USECS_PER_SEC);
}

/* A Unix time as text for messages, when it is a plausible time. */
static const char *
jwt_time_text(double t)
{
	if (t < -1e10 || t > 1e11)
		return "a time out of range";
	return timestamptz_to_str((TimestampTz) ((t - ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * USECS_PER_SEC));
}

static bool
jwt_aud_contains(JsonbValue *aud, const char *audience, bool *wellformed)
{
	size_t		alen = strlen(audience);
	bool		found = false;

	*wellformed = true;
	if (aud->type == jbvString)
		return aud->val.string.len == alen && memcmp(aud->val.string.val, audience, alen) == 0;
	if (aud->type == jbvBinary && JsonContainerIsArray(aud->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(aud->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (v.type != jbvString)
				*wellformed = false;
			else if (v.val.string.len == alen && memcmp(v.val.string.val, audience, alen) == 0)
				found = true;
		}
		return found;
	}
	*wellformed = false;
	return false;
}

void
jwt_check_claims(Jsonb *claims, const JwtVerifyOptions *opts)
{
	double		now = (double) opts->now / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	double		t;
	JsonbValue *v;
	bool		wellformed;

	if (jwt_numeric_claim(claims, "exp", &t))
	{
		if (now >= t + opts->leeway)
			jwt_refuse(CRM_AUTH_EXPIRED, "token", psprintf("The token expired at %s.", jwt_time_text(t)));
	}
	else if (opts->require_exp)
		jwt_refuse(CRM_AUTH_MISSING_EXP, "token", "The token has no \"exp\" claim.");
	if (jwt_numeric_claim(claims, "nbf", &t) && now + opts->leeway < t)
		jwt_refuse(CRM_AUTH_NOT_YET_VALID, "token", psprintf("The token is not valid before %s.", jwt_time_text(t)));
	(void) jwt_numeric_claim(claims, "iat", &t);

	v = json_member(&claims->root, "iss");
	if (v != NULL && v->type != jbvString)
		jwt_refuse(CRM_AUTH_INVALID_CLAIM, "token", "The \"iss\" claim is not a string.");
	if (opts->issuer != NULL &&
		(v == NULL || v->val.string.len != strlen(opts->issuer) ||
		 memcmp(v->val.string.val, opts->issuer, v->val.string.len) != 0))
		jwt_refuse(CRM_AUTH_ISSUER, "token", "The token's issuer is not the expected issuer.");

	v = json_member(&claims->root, "sub");
	if (v != NULL && v->type != jbvString)
		jwt_refuse(CRM_AUTH_INVALID_CLAIM, "token", "The \"sub\" claim is not a string.");

	v = json_member(&claims->root, "aud");
	if (v != NULL)
	{
		bool		found = jwt_aud_contains(v, opts->audience ? opts->audience : "", &wellformed);

		if (!wellformed)
			jwt_refuse(CRM_AUTH_INVALID_CLAIM, "token", "The \"aud\" claim is not a string or an array of strings.");
		if (opts->audience != NULL && !found)
			jwt_refuse(CRM_AUTH_AUDIENCE, "token", psprintf("The token's audience does not include \"%s\".",
										 opts->audience));
	}
	else if (opts->audience != NULL)
		jwt_refuse(CRM_AUTH_AUDIENCE, "token", "The token has no \"aud\" claim.");
}

void
jwt_token_header(const char *token, int len, const CrmAlg **alg, const char **kid)
{
	JwtParts	parts;

	jwt_split(token, len, "token", false, &parts);
	*alg = parts.alg;
	*kid = parts.kid;
}

Jsonb *
jwt_verify_token(const char *token, int len, CrmKeySet *keys,
				 const JwtVerifyOptions *opts, const CrmKey **key_used)
{
	JwtParts	parts;
	const CrmKey *key;
	unsigned char *payload;
	int			plen;
	const char *why;
	Jsonb	   *claims;

	jwt_split(token, len, "token", false, &parts);
	key = jwt_verify_signature(&parts, keys, opts, "token");
	payload = b64url_decode_palloc(parts.payload_b64, parts.payload_b64_len, &plen);
	if (payload == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, "token", "The payload is not valid base64url.");
	claims = json_parse_object((char *) payload, plen, &why);
	if (claims == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, "token", psprintf("The payload is not an acceptable JSON object: %s", why));
	if (!opts->skip_claims)
		jwt_check_claims(claims, opts);
	if (key_used)
		*key_used = key;
	return claims;
}

/* Verify a compact JWS (any payload, no claim checks); return the payload. */
bytea *
jws_verify_token(const char *jws, int len, CrmKeySet *keys, const CrmKey **key_used)
{
	JwtParts	parts;
	const CrmKey *key;
	bytea	   *payload;
	int			plen;

	jwt_split(jws, len, "JWS", false, &parts);
	key = jwt_verify_signature(&parts, keys, NULL, "JWS");
	payload = palloc(VARHDRSZ + B64URL_DEC_LEN(parts.payload_b64_len));
	plen = b64url_decode(parts.payload_b64, parts.payload_b64_len,
						 (unsigned char *) VARDATA(payload));
	if (plen < 0)
		jwt_refuse(CRM_AUTH_MALFORMED, "JWS", "The payload is not valid base64url.");
	SET_VARSIZE(payload, VARHDRSZ + plen);
	if (key_used)
		*key_used = key;
	return payload;
}

/* Append one member "name":value of a header being built. */
static void
jwt_header_member(StringInfo hdr, const char *name, JsonbValue *v)
{
	Jsonb	   *jb = JsonbValueToJsonb(v);

	if (hdr->len > 1)
		appendStringInfoChar(hdr, ',');
	json_append_string(hdr, name, strlen(name));
	appendStringInfoChar(hdr, ':');
	json_append_compact(hdr, &jb->root);
}

/* Sign claims (a JSON object) into a compact JWT; `header` may add members. */
text *
jwt_sign_claims(Jsonb *claims, const CrmKey *key, const CrmAlg *alg, Jsonb *header)
{
	StringInfoData hdr,
				payload,
				tok;
	JsonbValue	v;
	bytea	   *sig;
	char	   *b64;

	if (!JB_ROOT_IS_OBJECT(claims) || JB_ROOT_IS_SCALAR(claims))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("claims must be a JSON object")));
	if (header != NULL && (!JB_ROOT_IS_OBJECT(header) || JB_ROOT_IS_SCALAR(header)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header must be a JSON object")));
	keys_check(key, alg, CRM_KEY_FOR_SIGN);

	initStringInfo(&hdr);
	appendStringInfoChar(&hdr, '{');
	v.type = jbvString;
	v.val.string.val = (char *) alg->name;
	v.val.string.len = strlen(alg->name);
	jwt_header_member(&hdr, "alg", &v);
	if (header == NULL || json_member(&header->root, "typ") == NULL)
	{
		v.val.string.val = "JWT";
		v.val.string.len = 3;
		jwt_header_member(&hdr, "typ", &v);
	}
	if (key->kid != NULL && (header == NULL || json_member(&header->root, "kid") == NULL))
	{
		v.val.string.val = key->kid;
		v.val.string.len = strlen(key->kid);
		jwt_header_member(&hdr, "kid", &v);
	}
	if (header != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&header->root);
		JsonbIteratorToken t;
		JsonbValue	k;
		char	   *name = NULL;

		while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (t == WJB_KEY)
				name = pnstrdup(k.val.string.val, k.val.string.len);
			else if (t == WJB_VALUE)
			{
				if (strcmp(name, "alg") == 0)
				{
					if (k.type != jbvString || k.val.string.len != strlen(alg->name) ||
						memcmp(k.val.string.val, alg->name, k.val.string.len) != 0)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("header \"alg\" does not match the signing algorithm \"%s\"",
										alg->name)));
					continue;
				}
				if (strcmp(name, "crit") == 0 || strcmp(name, "b64") == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("header member \"%s\" is not supported", name)));
				jwt_header_member(&hdr, name, &k);
			}
		}
	}
	appendStringInfoChar(&hdr, '}');

	initStringInfo(&payload);
	json_append_compact(&payload, &claims->root);

	initStringInfo(&tok);
	b64 = b64url_encode_palloc((unsigned char *) hdr.data, hdr.len);
	appendStringInfoString(&tok, b64);
	appendStringInfoChar(&tok, '.');
	b64 = b64url_encode_palloc((unsigned char *) payload.data, payload.len);
	appendStringInfoString(&tok, b64);
	sig = sig_sign(key, alg, (unsigned char *) tok.data, tok.len);
	appendStringInfoChar(&tok, '.');
	b64 = b64url_encode_palloc((unsigned char *) VARDATA(sig), VARSIZE(sig) - VARHDRSZ);
	appendStringInfoString(&tok, b64);

	if (tok.len > jwt_max_token_length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the signed token would be %d bytes long, more than crm_security.max_token_length (%d)",
						tok.len, jwt_max_token_length)));
	return cstring_to_text_with_len(tok.data, tok.len);
}

/*
 * Parse a compact token without verifying it (jwt_decode()): its header after the header
 * checks, its payload as a JSON object, its signature bytes.  Malformed tokens raise 28000.
 */
void
jwt_decode_token(const char *token, int len, Jsonb **header, Jsonb **payload, bytea **sig)
{
	JwtParts	parts;
	unsigned char *bytes;
	int			plen;
	const char *why;
	int			siglen;

	jwt_split(token, len, "token", true, &parts);
	bytes = b64url_decode_palloc(parts.payload_b64, parts.payload_b64_len, &plen);
	if (bytes == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, "token", "The payload is not valid base64url.");
	*payload = json_parse_object((char *) bytes, plen, &why);
	if (*payload == NULL)
		jwt_refuse(CRM_AUTH_MALFORMED, "token", psprintf("The payload is not an acceptable JSON object: %s", why));
	*sig = palloc(VARHDRSZ + B64URL_DEC_LEN(parts.sig_b64_len));
	siglen = b64url_decode(parts.sig_b64, parts.sig_b64_len, (unsigned char *) VARDATA(*sig));
	if (siglen < 0)
		jwt_refuse(CRM_AUTH_MALFORMED, "token", "The signature is not valid base64url.");
	SET_VARSIZE(*sig, VARHDRSZ + siglen);
	*header = parts.header;
}
