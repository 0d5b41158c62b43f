/*
 * keys.h
 *		Signing and verification keys: HMAC secrets, PEM, JWK and JWKS.
 */
#ifndef CRM_KEYS_H
#define CRM_KEYS_H

#include "utils/jsonb.h"

#include "crypto.h"

typedef enum CrmKeyType
{
	CRM_KEY_OCT,				/* HMAC secret */
	CRM_KEY_RSA,
	CRM_KEY_EC,
	CRM_KEY_OKP					/* Ed25519 */
} CrmKeyType;

/* One parsed key.  Owned by the CrmKeySet it was parsed into. */
typedef struct CrmKey
{
	CrmKeyType	type;
	EVP_PKEY   *pkey;			/* RSA, EC, OKP */
	unsigned char *secret;		/* oct: the secret, wiped when freed */
	int			secret_len;
	bool		is_private;		/* can sign */
	bool		pss_only;		/* an RSASSA-PSS key: PS* only */
	int			ec_nid;			/* EC: the curve */
	char	   *kid;			/* NULL when the key has none */
	const CrmAlg *bound_alg;	/* a JWK "alg" or the key store's algorithm */
	bool		unusable;		/* a JWK "alg" we do not know: matches nothing */
	bool		may_verify;		/* from JWK "use" / "key_ops" */
	bool		may_sign;
	EVP_PKEY_CTX *vctx[CRM_NUM_ALGS];	/* verification contexts, made on first use */
	EVP_MAC_CTX *mac_ctx[3];	/* oct: HMAC-SHA256/384/512 keyed with the secret */
} CrmKey;

/* A set of keys: one key, or every key of a JWKS or of the key store. */
typedef struct CrmKeySet
{
	int			nkeys;
	CrmKey	  **keys;
	bool		select_by_kid;	/* a JWKS: a token's kid picks the key */
	char	   *skipped_detail; /* why the first skipped JWKS member was unusable */
	MemoryContext mcxt;			/* owns everything above */
} CrmKeySet;

typedef enum CrmKeyUse
{
	CRM_KEY_FOR_VERIFY,
	CRM_KEY_FOR_SIGN
} CrmKeyUse;

/*
 * Parse a key given as text (HMAC secret or PEM) into a new set in its own memory context
 * below `parent` (JWKs and JWKSs: keys_parse_jsonb() in keys_jwk.h).  Invalid keys raise
 * SQLSTATE 28000 with a detail.  Free with keys_free_set(), which also frees the OpenSSL
 * objects and wipes secrets.
 */
extern CrmKeySet *keys_parse_text(const char *data, int len, MemoryContext parent);
extern void keys_free_set(CrmKeySet *set);

/* A name for the key's type, for messages: "HMAC", "RSA", "EC P-256", "Ed25519". */
extern const char *keys_type_name(const CrmKey *key);

/* A one-key set that takes ownership of an EVP_PKEY (freed with the set, also on error). */
extern CrmKeySet *keys_new_set_from_pkey(EVP_PKEY *pkey, bool is_private, MemoryContext parent);

/*
 * The same, cached per backend by a digest of the input, so that using one key many times
 * costs only the cryptography.  The set stays valid until the next call of these functions.
 */
extern CrmKeySet *keys_cached_text(text *key);
extern CrmKeySet *keys_cached_jsonb(Jsonb *jwk, bool with_private);

/* Limits of what is parsed at all. */
#define KEY_MAX_JWK_BYTES	(1024 * 1024)	/* a JWK or JWKS (the jsonb value) */
#define KEY_MAX_TEXT_LEN	(64 * 1024) /* a text key */
#define KEY_MIN_HMAC_BYTES	32
#define KEY_MIN_RSA_BITS	2048
#define KEY_MAX_RSA_BITS	16384

/*
 * An error context callback that adds no context line but keeps the statement out of the
 * server log (errhidestmt): for functions whose arguments are tokens or keys.  Push it with
 * keys_hide_statement_push() at the start of such a function; it covers every error raised
 * below it, ours and PostgreSQL's (a query cancel, a constraint of a table).  Pop it with
 * keys_hide_statement_pop() before a normal return; an error unwinds it by itself.
 */
extern void keys_hide_statement_push(ErrorContextCallback *cb);
extern void keys_hide_statement_pop(ErrorContextCallback *cb);

/* Whether `key` may be used with `alg` for `use` (family, curve, size, JWK alg/use/key_ops). */
extern bool keys_allows(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use);

/* Why `key` cannot be used with `alg` for `use` (a sentence), or NULL when it can. */
extern const char *keys_refusal(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use);

/* Raise 28000 explaining why `key` cannot be used with `alg` for `use`, if it cannot. */
extern void keys_check(const CrmKey *key, const CrmAlg *alg, CrmKeyUse use);

/*
 * For the key parsers (keys_pem.c, keys_jwk.c).
 *
 * keys_new_set: an empty set in its own memory context below `parent`.  keys_add: a new
 * empty key owned by the set.  keys_drop_last: release the last key (a JWKS member that
 * turned out unusable).  keys_adopt_pkey: give `pkey` to `key` (owned by it from now on)
 * and classify it; returns NULL, or why it cannot be used (size, curve, type).
 * keys_invalid: raise 28000 "invalid key" with `detail`.
 */
extern CrmKeySet *keys_new_set(MemoryContext parent);
extern CrmKey *keys_add(CrmKeySet *set);
extern void keys_drop_last(CrmKeySet *set);
extern const char *keys_adopt_pkey(CrmKey *key, EVP_PKEY *pkey, bool is_private);
extern void keys_invalid(const char *detail) pg_attribute_noreturn();

#endif							/* CRM_KEYS_H */
