/*
 * crypto.c
 *		JOSE algorithm table, HMAC, digests, constant-time comparison, random bytes.
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "crm_security.h"
#include "crypto.h"

/* The 13 JOSE algorithms, plus the RFC 9864 name Ed25519 as an alias of EdDSA. */
static const CrmAlg crm_algs[] = {
	{"HS256", CRM_ALG_HMAC, "SHA256", 0, 0, 0},
	{"HS384", CRM_ALG_HMAC, "SHA384", 0, 0, 1},
	{"HS512", CRM_ALG_HMAC, "SHA512", 0, 0, 2},
	{"RS256", CRM_ALG_RSA, "SHA256", 0, 0, 3},
	{"RS384", CRM_ALG_RSA, "SHA384", 0, 0, 4},
	{"RS512", CRM_ALG_RSA, "SHA512", 0, 0, 5},
	{"PS256", CRM_ALG_RSAPSS, "SHA256", 0, 0, 6},
	{"PS384", CRM_ALG_RSAPSS, "SHA384", 0, 0, 7},
	{"PS512", CRM_ALG_RSAPSS, "SHA512", 0, 0, 8},
	{"ES256", CRM_ALG_ECDSA, "SHA256", NID_X9_62_prime256v1, 32, 9},
	{"ES384", CRM_ALG_ECDSA, "SHA384", NID_secp384r1, 48, 10},
	{"ES512", CRM_ALG_ECDSA, "SHA512", NID_secp521r1, 66, 11},
	{"EdDSA", CRM_ALG_EDDSA, NULL, 0, 0, 12},
	{"Ed25519", CRM_ALG_EDDSA, NULL, 0, 0, 12},
};

/* Digests and HMAC contexts, fetched once per process. */
static EVP_MD *crm_md_cache[3];
static EVP_MAC_CTX *crm_hmac_ctx[3];

static int
md_slot(const char *md_name)
{
	if (strcmp(md_name, "SHA256") == 0)
		return 0;
	if (strcmp(md_name, "SHA384") == 0)
		return 1;
	return 2;
}

const CrmAlg *
crm_alg_lookup(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(crm_algs); i++)
		if (strcmp(crm_algs[i].name, name) == 0)
			return &crm_algs[i];
	return NULL;
}

/*
 * An algorithm argument is echoed in a refusal only when it looks like an algorithm name:
 * at most 32 bytes of letters, digits, '-' and '_'.  Anything else may be a key or token
 * passed in the wrong place, and is not repeated.
 */
bool
crm_name_quotable(const char *name)
{
	const char *p;

	for (p = name; *p; p++)
		if (p - name >= 32 ||
			!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

const CrmAlg *
crm_alg_from_arg(const char *name)
{
	const CrmAlg *alg = crm_alg_lookup(name);

	if (alg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 crm_name_quotable(name) ?
				 errmsg("unrecognized signature algorithm \"%s\"", name) :
				 errmsg("unrecognized signature algorithm"),
				 errhidestmt(true),
				 pg_strcasecmp(name, "none") == 0 ?
				 errdetail("Unsecured (\"none\") tokens and signatures are never accepted or made.") :
				 errhint("Use one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA.")));
	return alg;
}

static const EVP_MD *
crm_md_by_name(const char *md_name)
{
	int			slot = md_slot(md_name);

	if (crm_md_cache[slot] == NULL)
	{
		crm_md_cache[slot] = EVP_MD_fetch(NULL, md_name, NULL);
		if (crm_md_cache[slot] == NULL)
			elog(ERROR, "EVP_MD_fetch(%s) failed", md_name);
	}
	return crm_md_cache[slot];
}

const EVP_MD *
crm_alg_md(const CrmAlg *alg)
{
	return alg->md_name ? crm_md_by_name(alg->md_name) : NULL;
}

/*
 * One HMAC context per digest, keyed anew for every call: setting the digest once saves a
 * provider fetch per call.
 */
static EVP_MAC_CTX *
crm_hmac_context(const EVP_MD *md)
{
	const char *name = EVP_MD_get0_name(md);
	int			slot = md_slot(EVP_MD_is_a(md, "SHA256") ? "SHA256" :
							   EVP_MD_is_a(md, "SHA384") ? "SHA384" : "SHA512");

	if (crm_hmac_ctx[slot] == NULL)
	{
		EVP_MAC   *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *ctx;
		OSSL_PARAM	params[2];

		if (mac == NULL)
			elog(ERROR, "EVP_MAC_fetch(HMAC) failed");
		ctx = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
		if (ctx == NULL)
			elog(ERROR, "EVP_MAC_CTX_new() failed");
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) name, 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_CTX_set_params(ctx, params))
		{
			EVP_MAC_CTX_free(ctx);
			elog(ERROR, "EVP_MAC_CTX_set_params() failed");
		}
		crm_hmac_ctx[slot] = ctx;
	}
	return crm_hmac_ctx[slot];
}

void
crm_hmac(const EVP_MD *md, const unsigned char *key, size_t keylen,
		 const unsigned char *data, size_t datalen,
		 unsigned char *out, unsigned int *outlen)
{
	static const unsigned char empty_key[1] = {0};
	EVP_MAC_CTX *ctx = crm_hmac_context(md);
	size_t		len = 0;

	/* A non-NULL pointer even for an empty key: NULL means "keep the previous key". */
	if (!EVP_MAC_init(ctx, keylen > 0 ? key : empty_key, keylen, NULL) ||
		!EVP_MAC_update(ctx, data, datalen) ||
		!EVP_MAC_final(ctx, out, &len, EVP_MAX_MD_SIZE))
		elog(ERROR, "HMAC computation failed");
	*outlen = (unsigned int) len;
}

int
crm_md_slot(const EVP_MD *md)
{
	return EVP_MD_is_a(md, "SHA256") ? 0 : EVP_MD_is_a(md, "SHA384") ? 1 : 2;
}

void
crm_hmac_keyed(EVP_MAC_CTX **slot, const EVP_MD *md,
			   const unsigned char *key, size_t keylen,
			   const unsigned char *data, size_t datalen,
			   unsigned char *out, unsigned int *outlen)
{
	size_t		len = 0;

	if (*slot == NULL)
	{
		static const unsigned char empty_key[1] = {0};
		EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(crm_hmac_context(md));

		if (ctx == NULL)
			elog(ERROR, "EVP_MAC_CTX_dup() failed");
		if (!EVP_MAC_init(ctx, keylen > 0 ? key : empty_key, keylen, NULL))
		{
			EVP_MAC_CTX_free(ctx);
			elog(ERROR, "HMAC key setup failed");
		}
		*slot = ctx;
	}
	/* A NULL key restarts from the keyed state. */
	else if (!EVP_MAC_init(*slot, NULL, 0, NULL))
		elog(ERROR, "HMAC restart failed");
	if (!EVP_MAC_update(*slot, data, datalen) ||
		!EVP_MAC_final(*slot, out, &len, EVP_MAX_MD_SIZE))
		elog(ERROR, "HMAC computation failed");
	*outlen = (unsigned int) len;
}

/*
 * SHA-256: the extension's one implementation of it, on a digest fetched once per
 * process.
 */
static const EVP_MD *
crm_sha256_md(void)
{
	static const EVP_MD *md = NULL;

	if (md == NULL)
		md = crm_md_by_name("SHA256");
	return md;
}

/* An incremental SHA-256: the OpenSSL context is freed with the memory it lives in. */
struct CrmSha256Stream
{
	EVP_MD_CTX *ctx;
	MemoryContextCallback free_cb;
};

static void
crm_sha256_stream_free(void *arg)
{
	CrmSha256Stream *s = (CrmSha256Stream *) arg;

	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

CrmSha256Stream *
crm_sha256_begin(void)
{
	CrmSha256Stream *s = palloc0(sizeof(CrmSha256Stream));

	s->ctx = EVP_MD_CTX_new();
	if (s->ctx == NULL)
		elog(ERROR, "EVP_MD_CTX_new() failed");
	s->free_cb.func = crm_sha256_stream_free;
	s->free_cb.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->free_cb);
	if (EVP_DigestInit_ex(s->ctx, crm_sha256_md(), NULL) != 1)
		elog(ERROR, "SHA-256 failed");
	return s;
}

void
crm_sha256_update(CrmSha256Stream *s, const void *data, size_t len)
{
	if (EVP_DigestUpdate(s->ctx, data, len) != 1)
		elog(ERROR, "SHA-256 failed");
}

void
crm_sha256_final(CrmSha256Stream *s, unsigned char *out)
{
	unsigned int outlen = 0;

	if (EVP_DigestFinal_ex(s->ctx, out, &outlen) != 1 || outlen != CRM_SHA256_LEN)
		elog(ERROR, "SHA-256 failed");
	/* Freed now rather than with its memory: a caller may hash many blocks in a row. */
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

/*
 * One-shot SHA-256 with one context kept for the process: EVP_Digest() would allocate a
 * context per call, which costs more than hashing a typical audit entry.  Nothing between
 * its init and final can run other code, so the kept context is never used twice at once,
 * and an error between them leaks nothing.
 */
void
crm_sha256(const void *data, size_t len, unsigned char *out)
{
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;

	if (ctx == NULL)
	{
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL)
			elog(ERROR, "EVP_MD_CTX_new() failed");
	}
	if (EVP_DigestInit_ex(ctx, crm_sha256_md(), NULL) != 1 ||
		EVP_DigestUpdate(ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
		outlen != CRM_SHA256_LEN)
		elog(ERROR, "SHA-256 failed");
}

/* The digest for an hmac() algorithm argument: sha256, sha384 or sha512. */
static const EVP_MD *
hmac_md_from_arg(text *algorithm)
{
	char	   *name = text_to_cstring(algorithm);

	if (pg_strcasecmp(name, "sha256") == 0)
		return crm_md_by_name("SHA256");
	if (pg_strcasecmp(name, "sha384") == 0)
		return crm_md_by_name("SHA384");
	if (pg_strcasecmp(name, "sha512") == 0)
		return crm_md_by_name("SHA512");
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 crm_name_quotable(name) ?
			 errmsg("unrecognized HMAC algorithm \"%s\"", name) :
			 errmsg("unrecognized HMAC algorithm"),
			 errhint("Use sha256, sha384 or sha512."),
			 errhidestmt(true)));
	return NULL;				/* keep compiler quiet */
}

static Datum
hmac_common(const char *data, int datalen, const char *key, int keylen, text *algorithm)
{
	const EVP_MD *md = hmac_md_from_arg(algorithm);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;
	bytea	   *result;

	crm_hmac(md, (const unsigned char *) key, keylen,
			 (const unsigned char *) data, datalen, mac, &maclen);
	result = palloc(VARHDRSZ + maclen);
	SET_VARSIZE(result, VARHDRSZ + maclen);
	memcpy(VARDATA(result), mac, maclen);
	return PointerGetDatum(result);
}

/* SQL function: hmac(data bytea, key bytea, algorithm text) returns bytea */
PG_FUNCTION_INFO_V1(crm_hmac_bytea);
Datum
crm_hmac_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	bytea	   *key = PG_GETARG_BYTEA_PP(1);

	return hmac_common(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
					   VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), PG_GETARG_TEXT_PP(2));
}

/* SQL function: hmac(data text, key text, algorithm text) returns bytea */
PG_FUNCTION_INFO_V1(crm_hmac_text);
Datum
crm_hmac_text(PG_FUNCTION_ARGS)
{
	text	   *data = PG_GETARG_TEXT_PP(0);
	text	   *key = PG_GETARG_TEXT_PP(1);

	return hmac_common(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
					   VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), PG_GETARG_TEXT_PP(2));
}

/*
 * SQL function: secure_compare(a bytea, b bytea) returns boolean
 * (also for text).  The time taken depends on the lengths only, never on the contents.
 */
PG_FUNCTION_INFO_V1(crm_secure_compare);
Datum
crm_secure_compare(PG_FUNCTION_ARGS)
{
	bytea	   *a = PG_GETARG_BYTEA_PP(0);
	bytea	   *b = PG_GETARG_BYTEA_PP(1);
	size_t		alen = VARSIZE_ANY_EXHDR(a);
	size_t		blen = VARSIZE_ANY_EXHDR(b);

	if (alen != blen)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(CRYPTO_memcmp(VARDATA_ANY(a), VARDATA_ANY(b), alen) == 0);
}

#define RANDOM_BYTES_MAX (1024 * 1024)

/*
 * Random bytes for keys and nonces drawn from OpenSSL a few kilobytes at a time rather than
 * per call: each draw takes locks and checks for a fork (a system call).  Bytes are wiped
 * from the pool as they are taken.  The pool belongs to the process that filled it: a
 * process that finds another's (it was forked with it) refills it first, so that no two
 * processes ever hand out the same bytes.
 */
#define RANDOM_POOL 4096
static unsigned char random_pool[RANDOM_POOL];
static int	random_left = 0;
static int	random_pid = 0;

void
crm_random_pooled(unsigned char *out, int len)
{
	unsigned char *p;

	Assert(len > 0 && len <= RANDOM_POOL);
	if (random_pid != MyProcPid || random_left < len)
	{
		if (!pg_strong_random(random_pool, RANDOM_POOL))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes")));
		random_left = RANDOM_POOL;
		random_pid = MyProcPid;
	}
	p = random_pool + RANDOM_POOL - random_left;
	memcpy(out, p, len);
	explicit_bzero(p, len);
	random_left -= len;
}

/* SQL function: random_bytes(n int) returns bytea */
PG_FUNCTION_INFO_V1(crm_random_bytes);
Datum
crm_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > RANDOM_BYTES_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of random bytes must be between 1 and %d", RANDOM_BYTES_MAX)));
	result = palloc(VARHDRSZ + n);
	SET_VARSIZE(result, VARHDRSZ + n);
	if (RAND_bytes((unsigned char *) VARDATA(result), n) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_BYTEA_P(result);
}

/* --------------------------------------------------------------------------------------
 * AES-256-GCM (personal values of the audit log, docs/privacy.md)
 * --------------------------------------------------------------------------------------
 */

/*
 * Contexts that keep their key schedule: a statement encrypts the values of many rows, each
 * under its subject's key, and the rows of a few subjects often alternate.  Setting up a
 * context for a key (the AES key schedule, the GHASH tables, the provider's state) costs
 * more than encrypting a short value, so each direction keeps a small table of keyed
 * contexts, placed by the key's id (not by its bytes: where a context sits must not
 * depend on the secret) with a copy of the key to compare in constant time; between two
 * values under one key only the nonce changes.  Keys made one after another have
 * consecutive ids, so the keys of up to 255 subjects that alternate keep their contexts.
 * crm_aes_gcm_forget() clears them all at the end of every transaction.
 */
#define GCM_ENC_SLOTS 256
#define GCM_DEC_SLOTS 16

typedef struct GcmSlot
{
	EVP_CIPHER_CTX *ctx;
	bool		keyed;
	unsigned char key[CRM_GCM_KEY_LEN];
} GcmSlot;

static EVP_CIPHER *crm_gcm_cipher = NULL;
static GcmSlot gcm_enc[GCM_ENC_SLOTS];
static GcmSlot gcm_dec[GCM_DEC_SLOTS];
static bool gcm_any_keyed = false;

static void
gcm_slot_clear(GcmSlot *s)
{
	if (s->keyed)
	{
		/* Frees the provider's state, the key schedule with it, wiped. */
		EVP_CIPHER_CTX_reset(s->ctx);
		OPENSSL_cleanse(s->key, CRM_GCM_KEY_LEN);
		s->keyed = false;
	}
}

/* Whether two keys are equal, in constant time (four words, not byte by byte). */
static inline bool
gcm_key_equal(const unsigned char *a, const unsigned char *b)
{
	uint64		d = 0;

	StaticAssertStmt(CRM_GCM_KEY_LEN == 4 * sizeof(uint64), "a key is four words");
	for (int i = 0; i < CRM_GCM_KEY_LEN; i += sizeof(uint64))
	{
		uint64		x,
					y;

		memcpy(&x, a + i, sizeof(x));
		memcpy(&y, b + i, sizeof(y));
		d |= x ^ y;
	}
	return d == 0;
}

/*
 * The slot of key in slots, initialised for one operation with nonce: re-keyed when it
 * held another key.  False when OpenSSL refuses (the slot is then clear).
 */
static bool
gcm_slot_init(GcmSlot *slots, int nslots, bool enc, const unsigned char *key, int64 key_id,
			  const unsigned char *nonce, GcmSlot **slotp)
{
	/* Slot 0 for the KEK, the others for data keys by id. */
	GcmSlot    *s = &slots[key_id == CRM_GCM_KEK ? 0 : 1 + (uint64) (key_id - 1) % (nslots - 1)];
	bool		ok;

	if (crm_gcm_cipher == NULL)
	{
		crm_gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
		if (crm_gcm_cipher == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("AES-256-GCM is not available from OpenSSL")));
	}
	if (s->ctx == NULL)
	{
		s->ctx = EVP_CIPHER_CTX_new();
		if (s->ctx == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	*slotp = s;
	if (s->keyed && gcm_key_equal(s->key, key))
		ok = (enc ? EVP_EncryptInit_ex2(s->ctx, NULL, NULL, nonce, NULL) :
			  EVP_DecryptInit_ex2(s->ctx, NULL, NULL, nonce, NULL)) == 1;
	else
	{
		/* A context that held another key is keyed again in place (no new state). */
		const EVP_CIPHER *c = s->keyed ? NULL : crm_gcm_cipher;

		ok = (enc ? EVP_EncryptInit_ex2(s->ctx, c, key, nonce, NULL) :
			  EVP_DecryptInit_ex2(s->ctx, c, key, nonce, NULL)) == 1;
		if (ok)
		{
			memcpy(s->key, key, CRM_GCM_KEY_LEN);
			s->keyed = true;
			gcm_any_keyed = true;
		}
	}
	if (!ok)
	{
		s->keyed = true;		/* so that the reset runs */
		gcm_slot_clear(s);
	}
	return ok;
}

/* The tag of the encryption just finished (the parameter directly, not through ctrl). */
static bool
gcm_get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag)
{
	OSSL_PARAM	params[2];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
												  CRM_GCM_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

void
crm_aes_gcm_encrypt(const unsigned char *key, int64 key_id, const unsigned char *nonce,
					const unsigned char *aad, size_t aadlen,
					const unsigned char *pt, size_t len,
					unsigned char *ct, unsigned char *tag)
{
	GcmSlot    *s;
	EVP_CIPHER_CTX *ctx;
	int			n;
	bool		ok;

	if (len > INT_MAX || aadlen > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to encrypt")));
	ok = gcm_slot_init(gcm_enc, GCM_ENC_SLOTS, true, key, key_id, nonce, &s) &&
		(ctx = s->ctx) != NULL &&
		(aadlen == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aadlen) == 1) &&
		(len == 0 || EVP_EncryptUpdate(ctx, ct, &n, pt, (int) len) == 1) &&
		EVP_EncryptFinal_ex(ctx, ct + len, &n) == 1 &&
		gcm_get_tag(ctx, tag);
	if (!ok)
	{
		crm_aes_gcm_forget();
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("AES-256-GCM encryption failed")));
	}
}

bool
crm_aes_gcm_decrypt(const unsigned char *key, int64 key_id, const unsigned char *nonce,
					const unsigned char *aad, size_t aadlen,
					const unsigned char *ct, size_t len,
					const unsigned char *tag, unsigned char *pt)
{
	GcmSlot    *s = NULL;
	EVP_CIPHER_CTX *ctx;
	int			n;
	bool		ok;

	if (len > INT_MAX || aadlen > INT_MAX)
		return false;
	ok = gcm_slot_init(gcm_dec, GCM_DEC_SLOTS, false, key, key_id, nonce, &s) &&
		(ctx = s->ctx) != NULL &&
		(aadlen == 0 || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aadlen) == 1) &&
		(len == 0 || EVP_DecryptUpdate(ctx, pt, &n, ct, (int) len) == 1) &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRM_GCM_TAG_LEN, (void *) tag) == 1 &&
		EVP_DecryptFinal_ex(ctx, pt + len, &n) == 1;
	/* After a refusal (a wrong tag: tampering or another key) the context starts over. */
	if (!ok && s != NULL)
		gcm_slot_clear(s);
	return ok;
}

void
crm_aes_gcm_forget(void)
{
	if (!gcm_any_keyed)
		return;
	for (int i = 0; i < GCM_ENC_SLOTS; i++)
		gcm_slot_clear(&gcm_enc[i]);
	for (int i = 0; i < GCM_DEC_SLOTS; i++)
		gcm_slot_clear(&gcm_dec[i]);
	gcm_any_keyed = false;
}
