/*
 * keygen.c
 *		Key generation and JWK export: generate_jwk(), jwk_public(), pem_to_jwk().
 *
 * Keys made here never leave the database except as the caller asks; a private JWK is
 * returned to the caller (who stores it, e.g. in the key store) and its public half can
 * be published as a JWKS.
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "b64url.h"
#include "crm_security.h"
#include "keys.h"

static void
jwk_push_string(JsonbParseState **ps, const char *key, const char *val, int len)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = (char *) val;
	v.val.string.len = len < 0 ? strlen(val) : len;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
jwk_push_bytes(JsonbParseState **ps, const char *key, const unsigned char *data, int len)
{
	/* the JsonbValue points into b64 until the JWK is serialized */
	jwk_push_string(ps, key, b64url_encode_palloc(data, len), -1);
}

/* A BIGNUM parameter of pkey as base64url, left-padded to `pad` bytes when pad > 0. */
static void
jwk_push_bn(JsonbParseState **ps, const char *key, EVP_PKEY *pkey, const char *param, int pad)
{
	BIGNUM	   *bn = NULL;
	unsigned char *buf;
	int			len;

	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
	{
		ERR_clear_error();
		elog(ERROR, "could not read key parameter %s", param);
	}
	len = pad > 0 ? pad : BN_num_bytes(bn);
	buf = palloc(Max(len, 1));
	if (BN_bn2binpad(bn, buf, len) != len)
	{
		BN_clear_free(bn);
		elog(ERROR, "BN_bn2binpad() failed");
	}
	BN_clear_free(bn);
	jwk_push_bytes(ps, key, buf, len);
	OPENSSL_cleanse(buf, len);
}

/* The JWK of a parsed key: public members only, or with the private ones. */
static Jsonb *
jwk_from_key(const CrmKey *key, bool with_private, const char *alg, const char *kid)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	switch (key->type)
	{
		case CRM_KEY_OCT:
			if (!with_private)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("an HMAC secret has no public part")));
			jwk_push_string(&ps, "kty", "oct", -1);
			jwk_push_bytes(&ps, "k", key->secret, key->secret_len);
			break;
		case CRM_KEY_RSA:
			jwk_push_string(&ps, "kty", "RSA", -1);
			jwk_push_bn(&ps, "n", key->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
			jwk_push_bn(&ps, "e", key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
			if (with_private && key->is_private)
			{
				jwk_push_bn(&ps, "d", key->pkey, OSSL_PKEY_PARAM_RSA_D, 0);
				jwk_push_bn(&ps, "p", key->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0);
				jwk_push_bn(&ps, "q", key->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0);
				jwk_push_bn(&ps, "dp", key->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0);
				jwk_push_bn(&ps, "dq", key->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0);
				jwk_push_bn(&ps, "qi", key->pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
			}
			break;
		case CRM_KEY_EC:
			{
				int			size = key->ec_nid == NID_X9_62_prime256v1 ? 32 :
					key->ec_nid == NID_secp384r1 ? 48 : 66;

				jwk_push_string(&ps, "kty", "EC", -1);
				jwk_push_string(&ps, "crv", size == 32 ? "P-256" : size == 48 ? "P-384" : "P-521", -1);
				jwk_push_bn(&ps, "x", key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, size);
				jwk_push_bn(&ps, "y", key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, size);
				if (with_private && key->is_private)
					jwk_push_bn(&ps, "d", key->pkey, OSSL_PKEY_PARAM_PRIV_KEY, size);
				break;
			}
		case CRM_KEY_OKP:
			{
				unsigned char raw[32];
				size_t		len = sizeof(raw);

				jwk_push_string(&ps, "kty", "OKP", -1);
				jwk_push_string(&ps, "crv", "Ed25519", -1);
				if (!EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) || len != 32)
					elog(ERROR, "could not read the Ed25519 public key");
				jwk_push_bytes(&ps, "x", raw, 32);
				if (with_private && key->is_private)
				{
					len = sizeof(raw);
					if (!EVP_PKEY_get_raw_private_key(key->pkey, raw, &len) || len != 32)
						elog(ERROR, "could not read the Ed25519 private key");
					jwk_push_bytes(&ps, "d", raw, 32);
					OPENSSL_cleanse(raw, sizeof(raw));
				}
				break;
			}
	}
	if (alg != NULL)
		jwk_push_string(&ps, "alg", alg, -1);
	if (kid != NULL)
		jwk_push_string(&ps, "kid", kid, -1);
	jwk_push_string(&ps, "use", "sig", -1);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* A fresh key for alg, parsed into a key set below the current context. */
static CrmKeySet *
keygen_for(const CrmAlg *alg)
{
	EVP_PKEY   *pkey = NULL;
	CrmKeySet  *set;
	Jsonb	   *jwk;

	if (alg->family == CRM_ALG_HMAC)
	{
		/* a secret as long as the hash output, as RFC 7518 recommends */
		int			len = strcmp(alg->md_name, "SHA256") == 0 ? 32 :
			strcmp(alg->md_name, "SHA384") == 0 ? 48 : 64;
		unsigned char secret[64];
		JsonbParseState *ps = NULL;

		if (RAND_bytes(secret, len) != 1)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate random bytes")));
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		jwk_push_string(&ps, "kty", "oct", -1);
		jwk_push_bytes(&ps, "k", secret, len);
		OPENSSL_cleanse(secret, sizeof(secret));
		jwk = JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
		return keys_parse_jsonb(jwk, true, CurrentMemoryContext);
	}
	switch (alg->family)
	{
		case CRM_ALG_RSA:
		case CRM_ALG_RSAPSS:
			pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
			break;
		case CRM_ALG_ECDSA:
			pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
									 alg->ec_nid == NID_X9_62_prime256v1 ? "P-256" :
									 alg->ec_nid == NID_secp384r1 ? "P-384" : "P-521");
			break;
		case CRM_ALG_EDDSA:
			pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
			break;
		default:
			break;
	}
	if (pkey == NULL)
	{
		ERR_clear_error();
		elog(ERROR, "key generation failed");
	}
	set = keys_new_set_from_pkey(pkey, true, CurrentMemoryContext);
	return set;
}

/* SQL function: generate_jwk(algorithm text, kid text) returns jsonb */
PG_FUNCTION_INFO_V1(crm_generate_jwk);
Datum
crm_generate_jwk(PG_FUNCTION_ARGS)
{
	char	   *name;
	const CrmAlg *alg;
	CrmKeySet  *set;
	Jsonb	   *jwk;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("algorithm must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	alg = crm_alg_from_arg(name);
	set = keygen_for(alg);
	jwk = jwk_from_key(set->keys[0], true, alg->name,
					   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	keys_free_set(set);
	PG_RETURN_JSONB_P(jwk);
}

/* Copy alg and kid of a source JWK, when it has them. */
static const char *
jwk_string_member(Jsonb *jwk, const char *name)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jwk->root, name, strlen(name), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* SQL function: jwk_public(jwk jsonb) returns jsonb */
PG_FUNCTION_INFO_V1(crm_jwk_public);
Datum
crm_jwk_public(PG_FUNCTION_ARGS)
{
	Jsonb	   *src = PG_GETARG_JSONB_P(0);
	CrmKeySet  *set;
	Jsonb	   *jwk;
	ErrorContextCallback hide;

	keys_hide_statement_push(&hide);
	set = keys_parse_jsonb(src, false, CurrentMemoryContext);

	if (set->select_by_kid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jwk_public takes a single JWK, not a JWKS")));
	jwk = jwk_from_key(set->keys[0], false, jwk_string_member(src, "alg"),
					   jwk_string_member(src, "kid"));
	keys_free_set(set);
	keys_hide_statement_pop(&hide);
	PG_RETURN_JSONB_P(jwk);
}

/* SQL function: pem_to_jwk(pem text, kid text) returns jsonb (public members only) */
PG_FUNCTION_INFO_V1(crm_pem_to_jwk);
Datum
crm_pem_to_jwk(PG_FUNCTION_ARGS)
{
	text	   *pem;
	CrmKeySet  *set;
	Jsonb	   *jwk;

	ErrorContextCallback hide;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	keys_hide_statement_push(&hide);
	pem = PG_GETARG_TEXT_PP(0);
	set = keys_parse_text(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem), CurrentMemoryContext);

	if (set->keys[0]->type == CRM_KEY_OCT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key is not a PEM key")));
	jwk = jwk_from_key(set->keys[0], false, NULL,
					   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	keys_free_set(set);
	keys_hide_statement_pop(&hide);
	PG_RETURN_JSONB_P(jwk);
}
