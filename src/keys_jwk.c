/*
 * keys_jwk.c
 *		JWK and JWKS (RFC 7517, 7518, 8037): reading them into key sets, with every member
 *		measured before it is decoded, and writing a parsed key back as a JWK.
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "b64url.h"
#include "json_util.h"
#include "keys.h"
#include "keys_jwk.h"

#define KEY_MAX_JWKS_KEYS	256

/*
 * Largest decoded JWK members: an RSA modulus and the private values of at most
 * KEY_MAX_RSA_BITS (one leading zero byte tolerated), a public exponent of at most 64 bits,
 * an HMAC secret as long as a text key.  Every member is measured before it is decoded.
 */
#define KEY_MAX_RSA_BYTES	(KEY_MAX_RSA_BITS / 8 + 1)
#define KEY_MAX_RSA_E_BYTES 9
#define KEY_MAX_OCT_BYTES	KEY_MAX_TEXT_LEN

/* ----------------------------------------------------------------
 * Reading
 * ----------------------------------------------------------------
 */

/*
 * A base64url member of a JWK, of at most `maxbytes` decoded bytes (measured before it is
 * decoded); *why set when malformed, too long or (if required) missing.
 */
static unsigned char *
jwk_bytes(JsonbContainer *jwk, const char *name, int maxbytes, int *len, bool required,
		  const char **why)
{
	JsonbValue *v = json_member(jwk, name);
	unsigned char *bytes;

	*len = 0;
	if (v == NULL)
	{
		if (required)
			*why = psprintf("The JWK has no \"%s\" member.", name);
		return NULL;
	}
	if (v->type != jbvString)
	{
		*why = psprintf("The JWK member \"%s\" is not a string.", name);
		return NULL;
	}
	if (v->val.string.len > B64URL_ENC_LEN(maxbytes))
	{
		*why = psprintf("The JWK member \"%s\" is longer than a key of this type can have.", name);
		return NULL;
	}
	bytes = b64url_decode_palloc(v->val.string.val, v->val.string.len, len);
	if (bytes == NULL)
		*why = psprintf("The JWK member \"%s\" is not valid base64url.", name);
	else if (*len == 0)
	{
		*why = psprintf("The JWK member \"%s\" is empty.", name);
		bytes = NULL;
	}
	return bytes;
}

/*
 * A member that is not read (a private member when only the public key is wanted): absent,
 * or a string no longer than the member can be.  Returns whether it is present.
 */
static bool
jwk_unread_member(JsonbContainer *jwk, const char *name, int maxbytes, const char **why)
{
	JsonbValue *v = json_member(jwk, name);

	if (v == NULL)
		return false;
	if (v->type != jbvString)
		*why = psprintf("The JWK member \"%s\" is not a string.", name);
	else if (v->val.string.len > B64URL_ENC_LEN(maxbytes))
		*why = psprintf("The JWK member \"%s\" is longer than a key of this type can have.", name);
	return true;
}

static BIGNUM *
jwk_bn(JsonbContainer *jwk, const char *name, int maxbytes, bool required, bool secret,
	   const char **why)
{
	int			len;
	unsigned char *b = jwk_bytes(jwk, name, maxbytes, &len, required, why);
	BIGNUM	   *bn;

	if (b == NULL)
		return NULL;
	bn = secret ? BN_secure_new() : BN_new();
	if (bn == NULL || BN_bin2bn(b, len, bn) == NULL)
	{
		BN_free(bn);
		elog(ERROR, "BN_bin2bn() failed");
	}
	if (secret)
	{
		BN_set_flags(bn, BN_FLG_CONSTTIME);
		OPENSSL_cleanse(b, len);
	}
	return bn;
}

/* Build an EVP_PKEY from OSSL_PARAMs; returns NULL when OpenSSL refuses them. */
static EVP_PKEY *
jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld, bool is_private)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY   *pkey = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
	{
		if (EVP_PKEY_fromdata(ctx, &pkey,
							  is_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
							  params) != 1)
			pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/*
 * Public (and, for private keys, pairwise) consistency check: for EC and Ed25519 keys, where
 * it costs about one signature.  RSA private keys are checked by jwk_rsa_private_check().
 */
static bool
jwk_key_consistent(EVP_PKEY *pkey, bool is_private, bool public_check)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	bool		ok = ctx != NULL;

	if (ok && public_check)
		ok = EVP_PKEY_public_check(ctx) == 1;
	if (ok && is_private)
		ok = EVP_PKEY_pairwise_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/*
 * The arithmetic relations between the members of an RSA private JWK (n, e, d and, when
 * ncrt is 5, p, q, dp, dq, qi): 1 < d < n; n = p q; dp = d mod (p-1), dq = d mod (q-1),
 * e dp = 1 mod (p-1), e dq = 1 mod (q-1), qi q = 1 mod p with qi < p.  A few multiplications
 * and divisions, where OpenSSL's pairwise check also proves p and q prime (minutes for a
 * JWKS of large keys); a key that satisfies these relations signs correctly, and a key with
 * composite "primes" could only hurt its owner, who gave it.
 */
static bool
jwk_rsa_private_check(BIGNUM **bn, int ncrt)
{
	BIGNUM	   *n = bn[0], *e = bn[1], *d = bn[2];
	BN_CTX	   *ctx = BN_CTX_secure_new();
	BIGNUM	   *t, *pm1, *qm1;
	bool		ok = false;

	if (ctx == NULL)
		return false;
	BN_CTX_start(ctx);
	t = BN_CTX_get(ctx);
	pm1 = BN_CTX_get(ctx);
	qm1 = BN_CTX_get(ctx);
	if (t == NULL || qm1 == NULL)
		goto done;
	if (BN_is_zero(d) || BN_is_one(d) || BN_cmp(d, n) >= 0)
		goto done;
	if (ncrt == 5)
	{
		BIGNUM	   *p = bn[3], *q = bn[4], *dp = bn[5], *dq = bn[6], *qi = bn[7];

		BN_set_flags(t, BN_FLG_CONSTTIME);
		if (BN_cmp(p, BN_value_one()) <= 0 || BN_cmp(q, BN_value_one()) <= 0 ||
			BN_cmp(qi, p) >= 0 ||
			!BN_mul(t, p, q, ctx) || BN_cmp(t, n) != 0 ||
			!BN_sub(pm1, p, BN_value_one()) || !BN_sub(qm1, q, BN_value_one()) ||
			!BN_mod(t, d, pm1, ctx) || BN_cmp(t, dp) != 0 ||
			!BN_mod(t, d, qm1, ctx) || BN_cmp(t, dq) != 0 ||
			!BN_mod_mul(t, e, dp, pm1, ctx) || !BN_is_one(t) ||
			!BN_mod_mul(t, e, dq, qm1, ctx) || !BN_is_one(t) ||
			!BN_mod_mul(t, qi, q, p, ctx) || !BN_is_one(t))
			goto done;
	}
	ok = true;
done:
	BN_CTX_end(ctx);
	BN_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

static const char *
jwk_parse_rsa(CrmKey *key, JsonbContainer *jwk, bool with_private)
{
	const char *why = NULL;
	const char *names[] = {"d", "p", "q", "dp", "dq", "qi"};
	const char *params[] = {OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
		OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
	OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	BIGNUM	   *bn[8] = {NULL};	/* n, e, d, p, q, dp, dq, qi */
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY   *pkey = NULL;
	bool		is_private = false;
	int			ncrt = 0;
	int			i;

	if (json_member(jwk, "oth") != NULL)
		return "Multi-prime RSA keys are not supported.";
	/* Sizes and types of every member first, before any of them is decoded. */
	for (i = 0; i < 6 && !why; i++)
		if (jwk_unread_member(jwk, names[i], KEY_MAX_RSA_BYTES, &why) && i > 0)
			ncrt++;
	if (why)
		return why;
	if (json_member(jwk, "d") == NULL && ncrt != 0)
		return "An RSA private JWK must have all of p, q, dp, dq and qi, or none.";
	if (ncrt != 0 && ncrt != 5)
		return "An RSA private JWK must have all of p, q, dp, dq and qi, or none.";

	bn[0] = jwk_bn(jwk, "n", KEY_MAX_RSA_BYTES, true, false, &why);
	if (!why)
		bn[1] = jwk_bn(jwk, "e", KEY_MAX_RSA_E_BYTES, true, false, &why);
	if (!why && (!BN_is_odd(bn[1]) || BN_is_one(bn[1]) || !BN_is_odd(bn[0])))
		why = "The RSA key is malformed.";
	if (!why && BN_num_bits(bn[1]) > 64)
		why = "RSA public exponents larger than 64 bits are not supported.";
	if (!why && BN_num_bits(bn[0]) < KEY_MIN_RSA_BITS)
		why = psprintf("RSA keys must have at least %d bits; this one has %d.",
					   KEY_MIN_RSA_BITS, BN_num_bits(bn[0]));
	if (!why && BN_num_bits(bn[0]) > KEY_MAX_RSA_BITS)
		why = psprintf("RSA keys of more than %d bits are not supported.", KEY_MAX_RSA_BITS);

	/* The private members only when the key is to sign. */
	if (!why && with_private && json_member(jwk, "d") != NULL)
	{
		is_private = true;
		for (i = 0; i < 6 && !why; i++)
			bn[2 + i] = jwk_bn(jwk, names[i], KEY_MAX_RSA_BYTES, false, true, &why);
		if (!why && !jwk_rsa_private_check(bn, ncrt))
			why = "The RSA private key does not match its public key.";
	}
	else
		ncrt = 0;
	if (!why)
	{
		bld = OSSL_PARAM_BLD_new();
		if (bld == NULL ||
			!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn[0]) ||
			!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn[1]) ||
			(is_private && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, bn[2])))
			why = "The RSA key could not be built.";
		for (i = 0; i < 5 && !why && ncrt == 5; i++)
			if (!OSSL_PARAM_BLD_push_BN(bld, params[i], bn[3 + i]))
				why = "The RSA key could not be built.";
	}
	if (!why)
	{
		pkey = jwk_fromdata("RSA", bld, is_private);
		if (pkey == NULL)
			why = "The RSA key is malformed.";
	}
	OSSL_PARAM_BLD_free(bld);
	for (i = 0; i < 8; i++)
		BN_clear_free(bn[i]);
	ERR_clear_error();
	if (why)
		return why;
	return keys_adopt_pkey(key, pkey, is_private);
}

static const char *
jwk_parse_ec(CrmKey *key, JsonbContainer *jwk, bool with_private)
{
	const char *why = NULL;
	bool		ok;
	char	   *crv = json_member_string(jwk, "crv", &ok);
	const char *group;
	int			size;
	int			xlen,
				ylen,
				dlen = 0;
	unsigned char *x,
			   *y,
			   *d = NULL;
	unsigned char *pub;
	BIGNUM	   *dbn = NULL;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY   *pkey = NULL;

	if (!ok || crv == NULL)
		return "An EC JWK needs a \"crv\" string.";
	if (strcmp(crv, "P-256") == 0)
		group = "prime256v1", size = 32;
	else if (strcmp(crv, "P-384") == 0)
		group = "secp384r1", size = 48;
	else if (strcmp(crv, "P-521") == 0)
		group = "secp521r1", size = 66;
	else
		return "Only the curves P-256, P-384 and P-521 are supported.";

	if (jwk_unread_member(jwk, "d", size, &why) && with_private && !why)
		d = jwk_bytes(jwk, "d", size, &dlen, false, &why);
	if (why)
		return why;
	x = jwk_bytes(jwk, "x", size, &xlen, true, &why);
	if (why)
		return why;
	y = jwk_bytes(jwk, "y", size, &ylen, true, &why);
	if (why)
		return why;
	if (xlen != size || ylen != size || (d != NULL && dlen != size))
	{
		if (d != NULL)
			OPENSSL_cleanse(d, dlen);
		return psprintf("The coordinates of a %s key must be %d bytes long.", crv, size);
	}

	pub = palloc(1 + 2 * size);
	pub[0] = 0x04;
	memcpy(pub + 1, x, size);
	memcpy(pub + 1 + size, y, size);

	bld = OSSL_PARAM_BLD_new();
	if (d != NULL)
	{
		dbn = BN_secure_new();
		if (dbn != NULL && BN_bin2bn(d, dlen, dbn) == NULL)
		{
			BN_free(dbn);
			dbn = NULL;
		}
		OPENSSL_cleanse(d, dlen);
		if (dbn == NULL)
			why = "The EC key could not be built.";
	}
	if (!why &&
		(bld == NULL ||
		 !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		 !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * size) ||
		 (dbn != NULL && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn))))
		why = "The EC key could not be built.";
	if (!why)
	{
		pkey = jwk_fromdata("EC", bld, dbn != NULL);
		if (pkey == NULL || !jwk_key_consistent(pkey, dbn != NULL, true))
		{
			EVP_PKEY_free(pkey);
			pkey = NULL;
			why = "The EC key is not a valid point of its curve, or its private part does not match.";
		}
	}
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(dbn);
	ERR_clear_error();
	if (why)
		return why;
	return keys_adopt_pkey(key, pkey, d != NULL);
}

static const char *
jwk_parse_okp(CrmKey *key, JsonbContainer *jwk, bool with_private)
{
	const char *why = NULL;
	bool		ok;
	char	   *crv = json_member_string(jwk, "crv", &ok);
	int			xlen,
				dlen = 0;
	unsigned char *x,
			   *d = NULL;
	EVP_PKEY   *pkey;

	if (!ok || crv == NULL)
		return "An OKP JWK needs a \"crv\" string.";
	if (strcmp(crv, "Ed25519") != 0)
		return "Only the OKP curve Ed25519 is supported.";
	if (jwk_unread_member(jwk, "d", 32, &why) && with_private && !why)
		d = jwk_bytes(jwk, "d", 32, &dlen, false, &why);
	if (why)
		return why;
	x = jwk_bytes(jwk, "x", 32, &xlen, true, &why);
	if (why)
		return why;
	if (xlen != 32 || (d != NULL && dlen != 32))
	{
		if (d != NULL)
			OPENSSL_cleanse(d, dlen);
		return "Ed25519 keys are 32 bytes long.";
	}
	if (d != NULL)
	{
		unsigned char derived[32];
		size_t		dl = sizeof(derived);

		pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, d, 32);
		OPENSSL_cleanse(d, dlen);
		if (pkey == NULL)
			why = "The Ed25519 private key is malformed.";
		else if (!EVP_PKEY_get_raw_public_key(pkey, derived, &dl) || dl != 32 ||
				 memcmp(derived, x, 32) != 0)
		{
			EVP_PKEY_free(pkey);
			pkey = NULL;
			why = "The Ed25519 private key does not match its public key.";
		}
	}
	else
	{
		pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, 32);
		if (pkey == NULL)
			why = "The Ed25519 public key is malformed.";
	}
	ERR_clear_error();
	if (why)
		return why;
	return keys_adopt_pkey(key, pkey, d != NULL);
}

static const char *
jwk_parse_oct(CrmKey *key, JsonbContainer *jwk)
{
	const char *why = NULL;
	int			len;
	unsigned char *k = jwk_bytes(jwk, "k", KEY_MAX_OCT_BYTES, &len, true, &why);

	key->type = CRM_KEY_OCT;
	if (why)
		return why;
	if (len < KEY_MIN_HMAC_BYTES)
	{
		OPENSSL_cleanse(k, len);
		return psprintf("HMAC secrets must be at least %d bytes long.", KEY_MIN_HMAC_BYTES);
	}
	key->secret = MemoryContextAlloc(GetMemoryChunkContext(key), len);
	memcpy(key->secret, k, len);
	OPENSSL_cleanse(k, len);
	key->secret_len = len;
	key->is_private = true;
	return NULL;
}

/* Parse one JWK object into key; NULL or why not. */
static const char *
jwk_parse_into(CrmKey *key, JsonbContainer *jwk, bool with_private)
{
	bool		ok;
	char	   *kty,
			   *use,
			   *alg,
			   *kid;
	JsonbValue *ops;
	const char *why;

	kty = json_member_string(jwk, "kty", &ok);
	if (!ok || kty == NULL)
		return "The JWK needs a \"kty\" string.";
	kid = json_member_string(jwk, "kid", &ok);
	if (!ok)
		return "The JWK member \"kid\" is not a string.";
	if (kid != NULL)
		key->kid = MemoryContextStrdup(GetMemoryChunkContext(key), kid);
	use = json_member_string(jwk, "use", &ok);
	if (!ok)
		return "The JWK member \"use\" is not a string.";
	if (use != NULL && strcmp(use, "sig") != 0)
		key->may_verify = key->may_sign = false;
	ops = json_member(jwk, "key_ops");
	if (ops != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		bool		verify = false,
					sign = false;

		if (ops->type != jbvBinary || !JsonContainerIsArray(ops->val.binary.data))
			return "The JWK member \"key_ops\" is not an array.";
		it = JsonbIteratorInit(ops->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (v.type != jbvString)
				return "The JWK member \"key_ops\" must hold strings.";
			if (v.val.string.len == 6 && memcmp(v.val.string.val, "verify", 6) == 0)
				verify = true;
			if (v.val.string.len == 4 && memcmp(v.val.string.val, "sign", 4) == 0)
				sign = true;
		}
		key->may_verify = key->may_verify && verify;
		key->may_sign = key->may_sign && sign;
	}
	alg = json_member_string(jwk, "alg", &ok);
	if (!ok)
		return "The JWK member \"alg\" is not a string.";
	if (alg != NULL)
	{
		key->bound_alg = crm_alg_lookup(alg);
		if (key->bound_alg == NULL)
			key->unusable = true;
	}

	if (strcmp(kty, "oct") == 0)
		why = jwk_parse_oct(key, jwk);
	else if (strcmp(kty, "RSA") == 0)
		why = jwk_parse_rsa(key, jwk, with_private);
	else if (strcmp(kty, "EC") == 0)
		why = jwk_parse_ec(key, jwk, with_private);
	else if (strcmp(kty, "OKP") == 0)
		why = jwk_parse_okp(key, jwk, with_private);
	else
		why = "The JWK \"kty\" must be oct, RSA, EC or OKP.";
	return why;
}

CrmKeySet *
keys_parse_jsonb(Jsonb *jwk, bool with_private, MemoryContext parent)
{
	CrmKeySet  *set;
	JsonbValue *keys;
	const char *why;

	if (VARSIZE(jwk) > KEY_MAX_JWK_BYTES)
		keys_invalid(psprintf("A JWK or JWKS may be at most %d bytes long.", KEY_MAX_JWK_BYTES));
	if (!JB_ROOT_IS_OBJECT(jwk))
		keys_invalid("A JWK or JWKS must be a JSON object.");
	set = keys_new_set(parent);
	keys = json_member(&jwk->root, "keys");
	if (keys == NULL)
	{
		why = jwk_parse_into(keys_add(set), &jwk->root, with_private);
		if (why != NULL)
		{
			keys_free_set(set);
			keys_invalid(why);
		}
		return set;
	}

	/* A JWKS: unusable members are skipped, as other JOSE libraries do. */
	if (keys->type != jbvBinary || !JsonContainerIsArray(keys->val.binary.data))
	{
		keys_free_set(set);
		keys_invalid("The JWKS member \"keys\" is not an array.");
	}
	if (JsonContainerSize(keys->val.binary.data) > KEY_MAX_JWKS_KEYS)
	{
		keys_free_set(set);
		keys_invalid(psprintf("A JWKS may hold at most %d keys.", KEY_MAX_JWKS_KEYS));
	}
	set->select_by_kid = true;
	{
		JsonbIterator *it = JsonbIteratorInit(keys->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			/* A cancel or statement_timeout is served between members. */
			CHECK_FOR_INTERRUPTS();
			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				why = "A member of the JWKS is not an object.";
			else
				why = jwk_parse_into(keys_add(set), v.val.binary.data, with_private);
			if (why != NULL)
			{
				if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
					keys_drop_last(set);
				if (set->skipped_detail == NULL)
					set->skipped_detail = MemoryContextStrdup(set->mcxt, why);
			}
		}
	}
	return set;
}

/* ----------------------------------------------------------------
 * Writing
 * ----------------------------------------------------------------
 */

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

Jsonb *
keys_jwk_from_key(const CrmKey *key, bool with_private, const char *alg, const char *kid)
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

Jsonb *
keys_jwk_oct(const unsigned char *secret, int len)
{
	JsonbParseState *ps = NULL;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	jwk_push_string(&ps, "kty", "oct", -1);
	jwk_push_bytes(&ps, "k", secret, len);
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}
