/*
 * crypto.h
 *		JOSE algorithms and the crypto primitives under them.
 */
#ifndef CRM_CRYPTO_H
#define CRM_CRYPTO_H

#include <openssl/evp.h>

typedef enum CrmAlgFamily
{
	CRM_ALG_HMAC,				/* HS256/384/512 */
	CRM_ALG_RSA,				/* RS256/384/512: RSASSA-PKCS1-v1_5 */
	CRM_ALG_RSAPSS,				/* PS256/384/512: RSASSA-PSS, salt = hash length */
	CRM_ALG_ECDSA,				/* ES256/384/512: raw r||s */
	CRM_ALG_EDDSA				/* EdDSA / Ed25519 */
} CrmAlgFamily;

typedef struct CrmAlg
{
	const char *name;			/* JOSE name, e.g. "RS256" */
	CrmAlgFamily family;
	const char *md_name;		/* digest, NULL for EdDSA */
	int			ec_nid;			/* curve for ECDSA */
	int			ec_bytes;		/* size of r and of s for ECDSA */
	int			id;				/* index into the table; aliases share it */
} CrmAlg;

#define CRM_NUM_ALGS 13

/* The algorithm named `name` (case-sensitive, as JOSE), or NULL. */
extern const CrmAlg *crm_alg_lookup(const char *name);

/* The algorithm named by an argument; 22023 for an unknown name (with a word on "none"). */
extern const CrmAlg *crm_alg_from_arg(const char *name);

/* Whether an unrecognized algorithm name may be quoted in a message (short, plain). */
extern bool crm_name_quotable(const char *name);

/* The digest of an algorithm, fetched once per process. */
extern const EVP_MD *crm_alg_md(const CrmAlg *alg);

/* HMAC with a digest name "sha256", "sha384" or "sha512"; out must hold 64 bytes. */
extern void crm_hmac(const EVP_MD *md, const unsigned char *key, size_t keylen,
					 const unsigned char *data, size_t datalen,
					 unsigned char *out, unsigned int *outlen);

/*
 * HMAC with a context keyed once and kept in *slot: computing with a kept key skips the
 * key schedule.  The caller frees *slot with EVP_MAC_CTX_free().
 */
extern void crm_hmac_keyed(EVP_MAC_CTX **slot, const EVP_MD *md,
						   const unsigned char *key, size_t keylen,
						   const unsigned char *data, size_t datalen,
						   unsigned char *out, unsigned int *outlen);

/* Index 0..2 of the digest of an HMAC algorithm (SHA-256/384/512). */
extern int	crm_md_slot(const EVP_MD *md);

#define CRM_SHA256_LEN 32

/*
 * SHA-256 incrementally: begin, update, final.  The state lives in the current memory
 * context and is released with it, error or not; final may be called once.
 */
typedef struct CrmSha256Stream CrmSha256Stream;
extern CrmSha256Stream *crm_sha256_begin(void);
extern void crm_sha256_update(CrmSha256Stream *s, const void *data, size_t len);
extern void crm_sha256_final(CrmSha256Stream *s, unsigned char *out);

/* SHA-256 of data into out[CRM_SHA256_LEN]. */
extern void crm_sha256(const void *data, size_t len, unsigned char *out);

/*
 * AES-256-GCM with a 96-bit nonce and a 128-bit tag.  Encryption writes len bytes of
 * ciphertext to ct and the tag to tag; decryption returns false when the tag does not
 * verify (wrong key, other associated data, altered ciphertext), leaving pt undefined.
 * key_id is a number that tells keys apart and is not secret (a data key's id, or
 * CRM_GCM_KEK): it places the key's kept context, so that the place says nothing about
 * the key's bytes; keys are still compared in full.
 */
#define CRM_GCM_KEY_LEN 32
#define CRM_GCM_NONCE_LEN 12
#define CRM_GCM_TAG_LEN 16
#define CRM_GCM_KEK 0
extern void crm_aes_gcm_encrypt(const unsigned char *key, int64 key_id,
								const unsigned char *nonce,
								const unsigned char *aad, size_t aadlen,
								const unsigned char *pt, size_t len,
								unsigned char *ct, unsigned char *tag);
extern bool crm_aes_gcm_decrypt(const unsigned char *key, int64 key_id,
								const unsigned char *nonce,
								const unsigned char *aad, size_t aadlen,
								const unsigned char *ct, size_t len,
								const unsigned char *tag, unsigned char *pt);

/* Wipe the keys kept by the keyed contexts (at the end of each transaction). */
extern void crm_aes_gcm_forget(void);

/*
 * len random bytes (at most 4096) for a key or a nonce, from a per-process pool refilled
 * from OpenSSL; each byte handed out once, wiped from the pool.
 */
extern void crm_random_pooled(unsigned char *out, int len);

#endif							/* CRM_CRYPTO_H */
