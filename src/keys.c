/*
 * keys.c
 *		Parsing and caching of keys: HMAC secrets, PEM, JWK and JWKS.
 *
 * A key fixes the algorithms it may be used with.  A text key is either a PEM block
 * (asymmetric) or an HMAC secret, never both: a PEM public key can therefore never be used
 * as an HMAC secret, which is what the classic algorithm-confusion attack needs.
 *
 * Parsed keys live in a memory context of their own; a reset callback on it frees the
 * OpenSSL objects and wipes secrets, so nothing leaks on any error path.
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "b64url.h"
#include "crm_security.h"
#include "json_util.h"
#include "keys.h"

#define KEY_MIN_HMAC_BYTES	32
#define KEY_MIN_RSA_BITS	2048
#define KEY_MAX_RSA_BITS	16384
#define KEY_MAX_TEXT_LEN	(64 * 1024)
#define KEY_MAX_JWKS_KEYS	256
#define KEY_CACHE_SIZE		32

/*
 * Largest decoded JWK members: an RSA modulus and the private values of at most
 * KEY_MAX_RSA_BITS (one leading zero byte tolerated), a public exponent of at most 64 bits,
 * an HMAC secret as long as a text key.  Every member is measured before it is decoded.
 */
#define KEY_MAX_RSA_BYTES	(KEY_MAX_RSA_BITS / 8 + 1)
#define KEY_MAX_RSA_E_BYTES 9
#define KEY_MAX_OCT_BYTES	KEY_MAX_TEXT_LEN

static void keys_set_release(void *arg);

/* ----------------------------------------------------------------
 * Key sets
 * ----------------------------------------------------------------
 */

static CrmKeySet *
keys_new_set(MemoryContext parent)
{
	MemoryContext mcxt = AllocSetContextCreate(parent, "crm_security key set",
											   ALLOCSET_SMALL_SIZES);
	CrmKeySet  *set = MemoryContextAllocZero(mcxt, sizeof(CrmKeySet));
	MemoryContextCallback *cb = MemoryContextAllocZero(mcxt, sizeof(MemoryContextCallback));

	set->mcxt = mcxt;
	set->keys = MemoryContextAllocZero(mcxt, sizeof(CrmKey *) * 4);
	cb->func = keys_set_release;
	cb->arg = set;
	MemoryContextRegisterResetCallback(mcxt, cb);
	return set;
}

/* A new empty key in `set`, already owned by it (freed with it). */
static CrmKey *
keys_add(CrmKeySet *set)
{
	CrmKey	   *key = MemoryContextAllocZero(set->mcxt, sizeof(CrmKey));

	if (set->nkeys > 0 && (set->nkeys & (set->nkeys - 1)) == 0 && set->nkeys >= 4)
		set->keys = repalloc(set->keys, sizeof(CrmKey *) * set->nkeys * 2);
	key->may_verify = true;
	key->may_sign = true;
	set->keys[set->nkeys++] = key;
	return key;
}

static void
keys_release_key(CrmKey *key)
{
	int			i;

	for (i = 0; i < CRM_NUM_ALGS; i++)
	{
		if (key->vctx[i])
			EVP_PKEY_CTX_free(key->vctx[i]);
		key->vctx[i] = NULL;
	}
	for (i = 0; i < 3; i++)
	{
		if (key->mac_ctx[i])
			EVP_MAC_CTX_free(key->mac_ctx[i]);	/* cleanses the keyed state */
		key->mac_ctx[i] = NULL;
	}
	if (key->pkey)
		EVP_PKEY_free(key->pkey);	/* clears private key material */
	key->pkey = NULL;
	if (key->secret)
		OPENSSL_cleanse(key->secret, key->secret_len);
}

/* Memory context reset callback: free OpenSSL objects, wipe secrets. */
static void
keys_set_release(void *arg)
{
	CrmKeySet  *set = (CrmKeySet *) arg;
	int			i;

	for (i = 0; i < set->nkeys; i++)
		keys_release_key(set->keys[i]);
	set->nkeys = 0;
}

void
keys_free_set(CrmKeySet *set)
{
	if (set)
		MemoryContextDelete(set->mcxt);
}

/* Drop the last key of a set (a JWKS member that turned out unusable). */
static void
keys_drop_last(CrmKeySet *set)
{
	Assert(set->nkeys > 0);
	keys_release_key(set->keys[--set->nkeys]);
}

/* A name for the key's type, for messages: "HMAC", "RSA", "EC P-256", "Ed25519". */
static const char *
keys_type_name(const CrmKey *key)
{
	switch (key->type)
	{
		case CRM_KEY_OCT:
			return "HMAC";
		case CRM_KEY_RSA:
			return key->pss_only ? "RSA-PSS" : "RSA";
		case CRM_KEY_EC:
			return key->ec_nid == NID_X9_62_prime256v1 ? "EC P-256" :
				key->ec_nid == NID_secp384r1 ? "EC P-384" : "EC P-521";
		case CRM_KEY_OKP:
			return "Ed25519";
	}
	return "unknown";
}

static void
invalid_key(const char *detail)
{
	ereport(ERROR,
			(errcode(CRM_ERRCODE_INVALID_AUTH),
			 errmsg("invalid key"),
			 errdetail_internal("%s", detail),
			 errhidestmt(true)));
}

/* Error context callback: no context line, and the statement stays out of the log. */
static void
keys_hide_statement_cb(void *arg)
{
	errhidestmt(true);
}

void
keys_hide_statement_push(ErrorContextCallback *cb)
{
	cb->callback = keys_hide_statement_cb;
	cb->arg = NULL;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

void
keys_hide_statement_pop(ErrorContextCallback *cb)
{
	Assert(error_context_stack == cb);
	error_context_stack = cb->previous;
}

/* ----------------------------------------------------------------
 * Checks common to every asymmetric key, whatever its source
 * ----------------------------------------------------------------
 */

/*
 * The public exponent and modulus of an RSA key, whatever its source: e odd, at least 3 and
 * at most 64 bits (e = 1 makes every message its own signature), n odd.
 */
static const char *
keys_rsa_exponent_check(EVP_PKEY *pkey)
{
	BIGNUM	   *n = NULL,
			   *e = NULL;
	const char *why = NULL;

	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
		!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
		why = "The RSA key is malformed.";
	else if (!BN_is_odd(e) || BN_is_one(e) || !BN_is_odd(n))
		why = "The RSA key is malformed.";
	else if (BN_num_bits(e) > 64)
		why = "RSA public exponents larger than 64 bits are not supported.";
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return why;
}

/* Classify pkey into key; returns NULL or why it cannot be used. */
static const char *
keys_adopt_pkey(CrmKey *key, EVP_PKEY *pkey, bool is_private)
{
	int			id = EVP_PKEY_get_base_id(pkey);

	key->pkey = pkey;			/* owned by the key from now on */
	key->is_private = is_private;
	switch (id)
	{
		case EVP_PKEY_RSA:
		case EVP_PKEY_RSA_PSS:
			{
				int			bits = EVP_PKEY_get_bits(pkey);
				const char *why = keys_rsa_exponent_check(pkey);

				if (why != NULL)
				{
					key->type = CRM_KEY_RSA;
					return why;
				}

				key->type = CRM_KEY_RSA;
				key->pss_only = (id == EVP_PKEY_RSA_PSS);
				if (bits < KEY_MIN_RSA_BITS)
					return psprintf("RSA keys must have at least %d bits; this one has %d.",
									KEY_MIN_RSA_BITS, bits);
				if (bits > KEY_MAX_RSA_BITS)
					return psprintf("RSA keys of more than %d bits are not supported.",
									KEY_MAX_RSA_BITS);
				return NULL;
			}
		case EVP_PKEY_EC:
			{
				char		group[64];
				size_t		glen = 0;
				int			nid;

				key->type = CRM_KEY_EC;
				if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
													group, sizeof(group), &glen))
					return "The EC key has no named curve.";
				nid = OBJ_txt2nid(group);
				if (nid == NID_undef)
					nid = EC_curve_nist2nid(group);
				if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1 && nid != NID_secp521r1)
					return "Only the curves P-256, P-384 and P-521 are supported.";
				key->ec_nid = nid;
				return NULL;
			}
		case EVP_PKEY_ED25519:
			key->type = CRM_KEY_OKP;
			return NULL;
		default:
			return "Only RSA, EC (P-256, P-384, P-521) and Ed25519 keys are supported.";
	}
}

/* ----------------------------------------------------------------
 * Text keys: PEM or HMAC secret
 * ----------------------------------------------------------------
 */

/* Never prompt for a passphrase: encrypted keys are refused. */
static int
keys_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static const char *
keys_parse_pem(CrmKey *key, const char *data, int len)
{
	const char *begin = strstr(data, "-----BEGIN ");
	const char *label_end;
	char		label[64];
	int			label_len;
	BIO		   *bio;
	EVP_PKEY   *pkey = NULL;
	bool		is_private = false;

	if (begin == NULL)
		return "The PEM text has no BEGIN line.";
	begin += strlen("-----BEGIN ");
	label_end = strstr(begin, "-----");
	if (label_end == NULL || label_end - begin >= (int) sizeof(label))
		return "The PEM text has a malformed BEGIN line.";
	label_len = label_end - begin;
	memcpy(label, begin, label_len);
	label[label_len] = '\0';

	if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 || strstr(data, "Proc-Type: 4,ENCRYPTED") != NULL)
		return "Encrypted private keys are not supported.";

	bio = BIO_new_mem_buf(data, len);
	if (bio == NULL)
		elog(ERROR, "BIO_new_mem_buf() failed");

	if (strcmp(label, "PUBLIC KEY") == 0)
		pkey = PEM_read_bio_PUBKEY(bio, NULL, keys_no_passphrase, NULL);
	else if (strcmp(label, "RSA PUBLIC KEY") == 0)
	{
		OSSL_DECODER_CTX *dctx;

		dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA",
											 EVP_PKEY_PUBLIC_KEY, NULL, NULL);
		if (dctx != NULL)
		{
			if (!OSSL_DECODER_from_bio(dctx, bio))
				pkey = NULL;
			OSSL_DECODER_CTX_free(dctx);
		}
	}
	else if (strcmp(label, "PRIVATE KEY") == 0 ||
			 strcmp(label, "RSA PRIVATE KEY") == 0 ||
			 strcmp(label, "EC PRIVATE KEY") == 0 ||
			 strcmp(label, "EC PARAMETERS") == 0)
	{
		pkey = PEM_read_bio_PrivateKey(bio, NULL, keys_no_passphrase, NULL);
		is_private = true;
	}
	else if (strcmp(label, "CERTIFICATE") == 0)
	{
		X509	   *cert = PEM_read_bio_X509(bio, NULL, keys_no_passphrase, NULL);

		if (cert != NULL)
		{
			pkey = X509_get_pubkey(cert);
			X509_free(cert);
		}
	}
	else
	{
		bool		plain = true;
		int			i;

		/* A PEM label is capitals and spaces; anything else may be part of a secret. */
		for (i = 0; i < label_len; i++)
			if (!((label[i] >= 'A' && label[i] <= 'Z') || (label[i] >= '0' && label[i] <= '9') ||
				  label[i] == ' '))
				plain = false;
		BIO_free(bio);
		if (!plain || label_len == 0 || label_len > 40)
			return "The PEM block is of a type that is not supported.";
		return psprintf("PEM blocks of type \"%s\" are not supported.", label);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return psprintf("The PEM block \"%s\" could not be decoded.", label);
	return keys_adopt_pkey(key, pkey, is_private);
}

static const char *
keys_parse_text_into(CrmKey *key, const char *data, int len)
{
	int			i = 0;

	while (i < len && isspace((unsigned char) data[i]))
		i++;

	/*
	 * Text that holds a PEM block anywhere (after "Bag Attributes", a subject line, a byte
	 * order mark...) is a PEM key or nothing: never an HMAC secret, or the public key's
	 * text could sign tokens.
	 */
	if (len > 0 && memmem(data, (size_t) len, "-----BEGIN", 10) != NULL)
	{
		char	   *copy = pnstrdup(data, len);
		const char *why;

		if (strlen(copy) != (size_t) len)
			return "The PEM text contains a NUL byte.";
		why = keys_parse_pem(key, copy, len);
		pfree(copy);
		return why;
	}
	if (i < len && data[i] == '{')
		return "The key looks like a JWK; pass JWKs as jsonb, never as an HMAC secret.";

	key->type = CRM_KEY_OCT;
	if (len < KEY_MIN_HMAC_BYTES)
		return psprintf("HMAC secrets must be at least %d bytes long.", KEY_MIN_HMAC_BYTES);
	key->secret = MemoryContextAlloc(GetMemoryChunkContext(key), len);
	memcpy(key->secret, data, len);
	key->secret_len = len;
	key->is_private = true;
	return NULL;
}

CrmKeySet *
keys_parse_text(const char *data, int len, MemoryContext parent)
{
	CrmKeySet  *set;
	const char *why;

	if (len > KEY_MAX_TEXT_LEN)
		invalid_key(psprintf("Keys longer than %d bytes are not accepted.", KEY_MAX_TEXT_LEN));
	if (len == 0)
		invalid_key("The key is empty.");
	set = keys_new_set(parent);
	why = keys_parse_text_into(keys_add(set), data, len);
	if (why != NULL)
	{
		keys_free_set(set);
		invalid_key(why);
	}
	return set;
}

CrmKeySet *
keys_new_set_from_pkey(EVP_PKEY *pkey, bool is_private, MemoryContext parent)
{
	CrmKeySet  *set = keys_new_set(parent);
	const char *why = keys_adopt_pkey(keys_add(set), pkey, is_private);

	if (why != NULL)
	{
		keys_free_set(set);
		invalid_key(why);
	}
	return set;
}

/* ----------------------------------------------------------------
 * JWK and JWKS
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
		invalid_key(psprintf("A JWK or JWKS may be at most %d bytes long.", KEY_MAX_JWK_BYTES));
	if (!JB_ROOT_IS_OBJECT(jwk))
		invalid_key("A JWK or JWKS must be a JSON object.");
	set = keys_new_set(parent);
	keys = json_member(&jwk->root, "keys");
	if (keys == NULL)
	{
		why = jwk_parse_into(keys_add(set), &jwk->root, with_private);
		if (why != NULL)
		{
			keys_free_set(set);
			invalid_key(why);
		}
		return set;
	}

	/* A JWKS: unusable members are skipped, as other JOSE libraries do. */
	if (keys->type != jbvBinary || !JsonContainerIsArray(keys->val.binary.data))
	{
		keys_free_set(set);
		invalid_key("The JWKS member \"keys\" is not an array.");
	}
	if (JsonContainerSize(keys->val.binary.data) > KEY_MAX_JWKS_KEYS)
	{
		keys_free_set(set);
		invalid_key(psprintf("A JWKS may hold at most %d keys.", KEY_MAX_JWKS_KEYS));
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
 * Per-backend cache of parsed keys, by a digest of their source
 * ----------------------------------------------------------------
 */

typedef struct KeyCacheEntry
{
	uint32		hash;			/* hash_bytes() of kind and source, a first filter */
	char		kind;			/* 't' text, 'j' jsonb */
	int			srclen;
	char	   *src;			/* the source, in the set's context (wiped with it) */
	CrmKeySet  *set;
	uint64		last_used;
} KeyCacheEntry;

static KeyCacheEntry key_cache[KEY_CACHE_SIZE];
static uint64 key_cache_clock = 0;
static MemoryContext key_cache_mcxt = NULL;

/* Wipe the cached source of a key (it may be a secret) when its set goes. */
static void
key_cache_wipe_src(void *arg)
{
	KeyCacheEntry *e = (KeyCacheEntry *) arg;

	if (e->src)
		OPENSSL_cleanse(e->src, e->srclen);
	e->src = NULL;
	e->set = NULL;
}

/*
 * Look a key source up.  Sources are compared whole, in constant time, so that the
 * cache tells nothing about the secrets it holds.
 */
static CrmKeySet *
key_cache_lookup(char kind, const char *src, int len, uint32 *hash)
{
	int			i;

	*hash = hash_bytes((const unsigned char *) src, len) ^ (uint32) kind;
	for (i = 0; i < KEY_CACHE_SIZE; i++)
	{
		KeyCacheEntry *e = &key_cache[i];

		if (e->set != NULL && e->hash == *hash && e->kind == kind && e->srclen == len &&
			CRYPTO_memcmp(e->src, src, len) == 0)
		{
			e->last_used = ++key_cache_clock;
			return e->set;
		}
	}
	return NULL;
}

static CrmKeySet *
key_cache_insert(char kind, const char *src, int len, uint32 hash, CrmKeySet *set)
{
	KeyCacheEntry *victim = &key_cache[0];
	MemoryContextCallback *cb;
	int			i;

	if (key_cache_mcxt == NULL)
		key_cache_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security key cache",
											   ALLOCSET_SMALL_SIZES);
	for (i = 0; i < KEY_CACHE_SIZE; i++)
	{
		if (key_cache[i].set == NULL)
		{
			victim = &key_cache[i];
			break;
		}
		if (key_cache[i].last_used < victim->last_used)
			victim = &key_cache[i];
	}
	if (victim->set != NULL)
		keys_free_set(victim->set);	/* its callback clears the entry */
	MemoryContextSetParent(set->mcxt, key_cache_mcxt);
	victim->src = MemoryContextAlloc(set->mcxt, Max(len, 1));
	memcpy(victim->src, src, len);
	victim->srclen = len;
	victim->kind = kind;
	victim->hash = hash;
	victim->set = set;
	victim->last_used = ++key_cache_clock;
	cb = MemoryContextAllocZero(set->mcxt, sizeof(MemoryContextCallback));
	cb->func = key_cache_wipe_src;
	cb->arg = victim;
	MemoryContextRegisterResetCallback(set->mcxt, cb);
	return set;
}

CrmKeySet *
keys_cached_text(text *key)
{
	const char *src = VARDATA_ANY(key);
	int			len = VARSIZE_ANY_EXHDR(key);
	uint32		hash;
	CrmKeySet  *set;

	if (len > KEY_MAX_TEXT_LEN)
		invalid_key(psprintf("Keys longer than %d bytes are not accepted.", KEY_MAX_TEXT_LEN));
	set = key_cache_lookup('t', src, len, &hash);
	if (set)
		return set;
	/* Parsed below the current context first, so that an error leaks nothing. */
	return key_cache_insert('t', src, len, hash,
							keys_parse_text(src, len, CurrentMemoryContext));
}

CrmKeySet *
keys_cached_jsonb(Jsonb *jwk, bool with_private)
{
	const char *src = VARDATA(jwk);
	int			len = VARSIZE(jwk) - VARHDRSZ;
	char		kind = with_private ? 'J' : 'j';
	uint32		hash;
	CrmKeySet  *set;

	if (VARSIZE(jwk) > KEY_MAX_JWK_BYTES)
		invalid_key(psprintf("A JWK or JWKS may be at most %d bytes long.", KEY_MAX_JWK_BYTES));
	set = key_cache_lookup(kind, src, len, &hash);
	if (set)
		return set;
	return key_cache_insert(kind, src, len, hash,
							keys_parse_jsonb(jwk, with_private, CurrentMemoryContext));
}

/* ----------------------------------------------------------------
 * Which key may be used with which algorithm
 * ----------------------------------------------------------------
 */

const char *
keys_refusal(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use)
{
	bool		family_ok;

	if (key->unusable)
		return "The key is bound (JWK \"alg\") to an algorithm that is not supported.";
	switch (alg->family)
	{
		case CRM_ALG_HMAC:
			family_ok = key->type == CRM_KEY_OCT;
			break;
		case CRM_ALG_RSA:
			family_ok = key->type == CRM_KEY_RSA && !key->pss_only;
			break;
		case CRM_ALG_RSAPSS:
			family_ok = key->type == CRM_KEY_RSA;
			break;
		case CRM_ALG_ECDSA:
			family_ok = key->type == CRM_KEY_EC && key->ec_nid == alg->ec_nid;
			break;
		case CRM_ALG_EDDSA:
			family_ok = key->type == CRM_KEY_OKP;
			break;
		default:
			family_ok = false;
	}
	if (!family_ok)
		return psprintf("A key of type %s cannot be used with algorithm \"%s\".",
						keys_type_name(key), alg->name);
	if (key->bound_alg != NULL && key->bound_alg->id != alg->id)
		return psprintf("The key is bound to algorithm \"%s\", not \"%s\".",
						key->bound_alg->name, alg->name);
	if (use == CRM_KEY_FOR_VERIFY && !key->may_verify)
		return "The key's \"use\" or \"key_ops\" does not allow verification.";
	if (use == CRM_KEY_FOR_SIGN && !key->may_sign)
		return "The key's \"use\" or \"key_ops\" does not allow signing.";
	if (use == CRM_KEY_FOR_SIGN && !key->is_private)
		return "A public key cannot sign.";
	return NULL;
}

bool
keys_allows(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use)
{
	return keys_refusal(key, alg, use) == NULL;
}

void
keys_check(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use)
{
	const char *why = keys_refusal(key, alg, use);

	if (why != NULL)
		invalid_key(why);
}
