/*
 * signature.c
 *		Raw JOSE signatures: verify_signature() and sign_message(), and the primitives
 *		under jwt.c.
 *
 * ECDSA signatures are taken only in the JOSE form, r||s of exactly twice the field
 * size, and r and s must lie in [1, n-1] before OpenSSL sees them (the all-zero
 * "psychic signature" of CVE-2022-21449 is refused here already).
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "crm_security.h"
#include "keys.h"
#include "signature.h"

/* Group order n of each supported curve, for the range check of r and s. */
static const BIGNUM *
ec_order(int nid)
{
	static BIGNUM *orders[3];
	int			slot = nid == NID_X9_62_prime256v1 ? 0 : nid == NID_secp384r1 ? 1 : 2;

	if (orders[slot] == NULL)
	{
		EC_GROUP   *group = EC_GROUP_new_by_curve_name(nid);

		if (group == NULL)
			elog(ERROR, "EC_GROUP_new_by_curve_name() failed");
		orders[slot] = BN_dup(EC_GROUP_get0_order(group));
		EC_GROUP_free(group);
		if (orders[slot] == NULL)
			elog(ERROR, "BN_dup() failed");
	}
	return orders[slot];
}

/* Set RSA padding, digest, and for PSS salt length and MGF1 digest, on a context. */
static bool
sig_set_params(EVP_PKEY_CTX *ctx, const CrmAlg *alg)
{
	const EVP_MD *md = crm_alg_md(alg);

	if (EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
		return false;
	if (alg->family == CRM_ALG_RSA)
		return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
	if (alg->family == CRM_ALG_RSAPSS)
		return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
			EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
	return true;
}

/* The verification context of a key for an algorithm, made once and kept with the key. */
static EVP_PKEY_CTX *
sig_verify_ctx(const CrmKey *key, const CrmAlg *alg)
{
	CrmKey	   *k = (CrmKey *) key;

	if (k->vctx[alg->id] == NULL)
	{
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);

		if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0 || !sig_set_params(ctx, alg))
		{
			EVP_PKEY_CTX_free(ctx);
			ERR_clear_error();
			elog(ERROR, "could not set up %s verification", alg->name);
		}
		k->vctx[alg->id] = ctx;
	}
	return k->vctx[alg->id];
}

static bool
sig_digest(const CrmAlg *alg, const unsigned char *msg, size_t msglen,
		   unsigned char *dgst, unsigned int *dlen)
{
	return EVP_Digest(msg, msglen, dgst, dlen, crm_alg_md(alg), NULL) == 1;
}

/* JOSE r||s to DER, or NULL when r or s is out of [1, n-1]. */
static unsigned char *
ecdsa_raw_to_der(const CrmAlg *alg, const unsigned char *sig, int *derlen)
{
	const BIGNUM *order = ec_order(alg->ec_nid);
	BIGNUM	   *r = BN_bin2bn(sig, alg->ec_bytes, NULL);
	BIGNUM	   *s = BN_bin2bn(sig + alg->ec_bytes, alg->ec_bytes, NULL);
	ECDSA_SIG  *esig = NULL;
	unsigned char *der = NULL;

	*derlen = 0;
	if (r == NULL || s == NULL ||
		BN_is_zero(r) || BN_is_zero(s) ||
		BN_cmp(r, order) >= 0 || BN_cmp(s, order) >= 0 ||
		(esig = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(esig, r, s))
	{
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(esig);
		return NULL;
	}
	/* esig owns r and s now */
	*derlen = i2d_ECDSA_SIG(esig, &der);
	ECDSA_SIG_free(esig);
	if (*derlen <= 0)
		return NULL;
	return der;
}

bool
sig_verify(const CrmKey *key, const CrmAlg *alg,
			const unsigned char *msg, size_t msglen,
			const unsigned char *sig, size_t siglen)
{
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	bool		ok = false;

	Assert(keys_allows(key, alg, CRM_KEY_FOR_VERIFY));
	switch (alg->family)
	{
		case CRM_ALG_HMAC:
			{
				unsigned char mac[EVP_MAX_MD_SIZE];
				unsigned int maclen;

				crm_hmac_keyed(&((CrmKey *) key)->mac_ctx[crm_md_slot(crm_alg_md(alg))],
							   crm_alg_md(alg), key->secret, key->secret_len, msg, msglen,
							   mac, &maclen);
				ok = siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
				OPENSSL_cleanse(mac, sizeof(mac));
				return ok;
			}
		case CRM_ALG_RSA:
		case CRM_ALG_RSAPSS:
			if (siglen != (size_t) EVP_PKEY_get_size(key->pkey))
				return false;
			if (!sig_digest(alg, msg, msglen, dgst, &dlen))
				elog(ERROR, "EVP_Digest() failed");
			ok = EVP_PKEY_verify(sig_verify_ctx(key, alg), sig, siglen, dgst, dlen) == 1;
			break;
		case CRM_ALG_ECDSA:
			{
				unsigned char *der;
				int			derlen;

				if (siglen != (size_t) alg->ec_bytes * 2)
					return false;
				der = ecdsa_raw_to_der(alg, sig, &derlen);
				if (der == NULL)
				{
					ERR_clear_error();
					return false;
				}
				if (sig_digest(alg, msg, msglen, dgst, &dlen))
					ok = EVP_PKEY_verify(sig_verify_ctx(key, alg), der, derlen, dgst, dlen) == 1;
				OPENSSL_free(der);
				break;
			}
		case CRM_ALG_EDDSA:
			{
				EVP_MD_CTX *mctx;

				if (siglen != 64)
					return false;
				mctx = EVP_MD_CTX_new();
				if (mctx != NULL &&
					EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1)
					ok = EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
				EVP_MD_CTX_free(mctx);
				break;
			}
	}
	ERR_clear_error();
	return ok;
}

static bytea *
bytea_from(const unsigned char *data, size_t len)
{
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), data, len);
	return result;
}

bytea *
sig_sign(const CrmKey *key, const CrmAlg *alg, const unsigned char *msg, size_t msglen)
{
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	unsigned char *buf = NULL;
	size_t		len = 0;
	bool		ok = false;
	bytea	   *result = NULL;

	Assert(keys_allows(key, alg, CRM_KEY_FOR_SIGN));
	if (alg->family == CRM_ALG_HMAC)
	{
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen;

		crm_hmac(crm_alg_md(alg), key->secret, key->secret_len, msg, msglen, mac, &maclen);
		result = bytea_from(mac, maclen);
		OPENSSL_cleanse(mac, sizeof(mac));
		return result;
	}
	if (alg->family == CRM_ALG_EDDSA)
	{
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();

		if (mctx != NULL &&
			EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1 &&
			EVP_DigestSign(mctx, NULL, &len, msg, msglen) == 1)
		{
			buf = palloc(len);
			ok = EVP_DigestSign(mctx, buf, &len, msg, msglen) == 1;
		}
		EVP_MD_CTX_free(mctx);
	}
	else
	{
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);

		if (ctx != NULL && sig_digest(alg, msg, msglen, dgst, &dlen) &&
			EVP_PKEY_sign_init(ctx) == 1 && sig_set_params(ctx, alg) &&
			EVP_PKEY_sign(ctx, NULL, &len, dgst, dlen) == 1)
		{
			buf = palloc(len);
			ok = EVP_PKEY_sign(ctx, buf, &len, dgst, dlen) == 1;
		}
		EVP_PKEY_CTX_free(ctx);
	}
	if (ok && alg->family == CRM_ALG_ECDSA)
	{
		/* DER to the JOSE form r||s, each left-padded to the field size. */
		const unsigned char *p = buf;
		ECDSA_SIG  *esig = d2i_ECDSA_SIG(NULL, &p, len);
		unsigned char *raw = palloc(alg->ec_bytes * 2);

		ok = esig != NULL &&
			BN_bn2binpad(ECDSA_SIG_get0_r(esig), raw, alg->ec_bytes) == alg->ec_bytes &&
			BN_bn2binpad(ECDSA_SIG_get0_s(esig), raw + alg->ec_bytes, alg->ec_bytes) == alg->ec_bytes;
		ECDSA_SIG_free(esig);
		buf = raw;
		len = alg->ec_bytes * 2;
	}
	ERR_clear_error();
	if (!ok)
		elog(ERROR, "%s signing failed", alg->name);
	return bytea_from(buf, len);
}

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

static const CrmAlg *
sig_alg_from_arg(text *name)
{
	return crm_alg_from_arg(text_to_cstring(name));
}

/*
 * The keys of a set usable with alg; raises 28000 with the reason when none is.
 * Returns the number of usable keys, stored in out (palloc'd).
 */
static int
sig_usable_keys(CrmKeySet *set, const CrmAlg *alg, CrmKeyUse use, const CrmKey ***out)
{
	int			n = 0;
	int			i;

	*out = palloc(sizeof(CrmKey *) * Max(set->nkeys, 1));
	for (i = 0; i < set->nkeys; i++)
		if (keys_allows(set->keys[i], alg, use))
			(*out)[n++] = set->keys[i];
	if (n == 0)
	{
		if (set->nkeys == 1)
			keys_check(set->keys[0], alg, use);
		ereport(ERROR,
				(errcode(CRM_ERRCODE_INVALID_AUTH),
				 errmsg("invalid key"),
				 errdetail("No key of the key set can be used with algorithm \"%s\".", alg->name),
				 set->skipped_detail ?
				 errhint("A member of the JWKS was skipped: %s", set->skipped_detail) : 0));
	}
	return n;
}

static Datum
verify_signature_common(text *algname, CrmKeySet *set, bytea *msg, bytea *sig)
{
	const CrmAlg *alg = sig_alg_from_arg(algname);
	const CrmKey **keys;
	int			n = sig_usable_keys(set, alg, CRM_KEY_FOR_VERIFY, &keys);
	int			i;

	for (i = 0; i < n; i++)
		if (sig_verify(keys[i], alg,
						(unsigned char *) VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg),
						(unsigned char *) VARDATA_ANY(sig), VARSIZE_ANY_EXHDR(sig)))
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

/* SQL function: verify_signature(algorithm text, key text, message bytea, signature bytea) returns boolean */
PG_FUNCTION_INFO_V1(crm_verify_signature_text);
Datum
crm_verify_signature_text(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum		result;

	keys_hide_statement_push(&hide);
	result = verify_signature_common(PG_GETARG_TEXT_PP(0),
								   keys_cached_text(PG_GETARG_TEXT_PP(1)),
								   PG_GETARG_BYTEA_PP(2), PG_GETARG_BYTEA_PP(3));
	keys_hide_statement_pop(&hide);
	return result;
}

/* SQL function: verify_signature(algorithm text, key jsonb, message bytea, signature bytea) returns boolean */
PG_FUNCTION_INFO_V1(crm_verify_signature_jsonb);
Datum
crm_verify_signature_jsonb(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum		result;

	keys_hide_statement_push(&hide);
	result = verify_signature_common(PG_GETARG_TEXT_PP(0),
								   keys_cached_jsonb(PG_GETARG_JSONB_P(1), false),
								   PG_GETARG_BYTEA_PP(2), PG_GETARG_BYTEA_PP(3));
	keys_hide_statement_pop(&hide);
	return result;
}

/* The one key of a set that may sign with alg; a JWKS must hold exactly one. */
const CrmKey *
sig_signing_key(CrmKeySet *set, const CrmAlg *alg)
{
	const CrmKey **keys;
	int			n = sig_usable_keys(set, alg, CRM_KEY_FOR_SIGN, &keys);

	if (n > 1)
		ereport(ERROR,
				(errcode(CRM_ERRCODE_INVALID_AUTH),
				 errmsg("invalid key"),
				 errdetail("More than one key of the key set can sign with algorithm \"%s\"; pass a single JWK.",
						   alg->name)));
	return keys[0];
}

static Datum
sign_message_common(text *algname, CrmKeySet *set, bytea *msg)
{
	const CrmAlg *alg = sig_alg_from_arg(algname);
	const CrmKey *key = sig_signing_key(set, alg);

	PG_RETURN_BYTEA_P(sig_sign(key, alg, (unsigned char *) VARDATA_ANY(msg),
								VARSIZE_ANY_EXHDR(msg)));
}

/* SQL function: sign_message(algorithm text, key text, message bytea) returns bytea */
PG_FUNCTION_INFO_V1(crm_sign_message_text);
Datum
crm_sign_message_text(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum		result;

	keys_hide_statement_push(&hide);
	result = sign_message_common(PG_GETARG_TEXT_PP(0),
							   keys_cached_text(PG_GETARG_TEXT_PP(1)),
							   PG_GETARG_BYTEA_PP(2));
	keys_hide_statement_pop(&hide);
	return result;
}

/* SQL function: sign_message(algorithm text, key jsonb, message bytea) returns bytea */
PG_FUNCTION_INFO_V1(crm_sign_message_jsonb);
Datum
crm_sign_message_jsonb(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum		result;

	keys_hide_statement_push(&hide);
	result = sign_message_common(PG_GETARG_TEXT_PP(0),
							   keys_cached_jsonb(PG_GETARG_JSONB_P(1), true),
							   PG_GETARG_BYTEA_PP(2));
	keys_hide_statement_pop(&hide);
	return result;
}
