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
 * Parse a key given as text (HMAC secret or PEM) or jsonb (JWK or JWKS) into a new set in
 * its own memory context below `parent`.  Invalid keys raise SQLSTATE 28000 with a detail.
 * Free with keys_free_set(), which also frees the OpenSSL objects and wipes secrets.
 *
 * `with_private`: whether the private members of asymmetric JWKs (d, p, q, dp, dq, qi) are
 * read.  Without, a private JWK gives its public key only: its private members are checked
 * for type and size, never decoded or checked for consistency (which costs what verification
 * does not need).  HMAC secrets (oct "k") are always read.
 */
extern CrmKeySet *keys_parse_text(const char *data, int len, MemoryContext parent);
extern CrmKeySet *keys_parse_jsonb(Jsonb *jwk, bool with_private, MemoryContext parent);
extern void keys_free_set(CrmKeySet *set);

/* A one-key set that takes ownership of an EVP_PKEY (freed with the set, also on error). */
extern CrmKeySet *keys_new_set_from_pkey(EVP_PKEY *pkey, bool is_private, MemoryContext parent);

/*
 * The same, cached per backend by a digest of the input, so that using one key many times
 * costs only the cryptography.  The set stays valid until the next call of these functions.
 */
extern CrmKeySet *keys_cached_text(text *key);
extern CrmKeySet *keys_cached_jsonb(Jsonb *jwk, bool with_private);

/* Largest JWK or JWKS accepted (the jsonb value), in bytes. */
#define KEY_MAX_JWK_BYTES	(1024 * 1024)

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

#endif							/* CRM_KEYS_H */
