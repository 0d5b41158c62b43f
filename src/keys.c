/*
 * keys.c
 *		Key sets, text keys (an HMAC secret or a PEM block), the per-backend cache of parsed
 *		keys, and the policy of which key may be used with which algorithm.  PEM blocks are
 *		decoded by keys_pem.c, JWKs and JWKSs read and written by keys_jwk.c.
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
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "crm_security.h"
#include "keys.h"
#include "keys_jwk.h"
#include "keys_pem.h"

#define KEY_CACHE_SIZE		32

static void keys_set_release(void *arg);

/* ----------------------------------------------------------------
 * Key sets
 * ----------------------------------------------------------------
 */

CrmKeySet *
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

CrmKey *
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

void
keys_drop_last(CrmKeySet *set)
{
	Assert(set->nkeys > 0);
	keys_release_key(set->keys[--set->nkeys]);
}

/* A name for the key's type, for messages: "HMAC", "RSA", "EC P-256", "Ed25519". */
const char *
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

void
keys_invalid(const char *detail)
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

const char *
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
		why = keys_pem_parse(key, copy, len);
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
		keys_invalid(psprintf("Keys longer than %d bytes are not accepted.", KEY_MAX_TEXT_LEN));
	if (len == 0)
		keys_invalid("The key is empty.");
	set = keys_new_set(parent);
	why = keys_parse_text_into(keys_add(set), data, len);
	if (why != NULL)
	{
		keys_free_set(set);
		keys_invalid(why);
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
		keys_invalid(why);
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
		keys_invalid(psprintf("Keys longer than %d bytes are not accepted.", KEY_MAX_TEXT_LEN));
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
		keys_invalid(psprintf("A JWK or JWKS may be at most %d bytes long.", KEY_MAX_JWK_BYTES));
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
		keys_invalid(why);
}
