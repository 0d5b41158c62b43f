/*
 * keygen.c
 *		Key generation and JWK export: generate_jwk(), jwk_public(), pem_to_jwk().  JWKs
 *		are written by keys_jwk.c.
 *
 * Keys made here never leave the database except as the caller asks; a private JWK is
 * returned to the caller (who stores it, e.g. in the key store) and its public half can
 * be published as a JWKS.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "crm_security.h"
#include "keys.h"
#include "keys_jwk.h"

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

		if (RAND_bytes(secret, len) != 1)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate random bytes")));
		jwk = keys_jwk_oct(secret, len);
		OPENSSL_cleanse(secret, sizeof(secret));
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
	jwk = keys_jwk_from_key(set->keys[0], true, alg->name,
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
	jwk = keys_jwk_from_key(set->keys[0], false, jwk_string_member(src, "alg"),
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
	jwk = keys_jwk_from_key(set->keys[0], false, NULL,
					   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	keys_free_set(set);
	keys_hide_statement_pop(&hide);
	PG_RETURN_JSONB_P(jwk);
}
