/*
 * apikey_hash.h
 *		How API keys are stored (apikey_hash.c): SHA-256, or HMAC-SHA256 with a pepper.
 */
#ifndef CRM_APIKEY_HASH_H
#define CRM_APIKEY_HASH_H

#include "crypto.h"

/* The schemes a stored hash may have been made with (api_key_secrets.hash_scheme). */
typedef enum ApiKeyHashScheme
{
	APIKEY_SCHEME_SHA256,			/* SHA-256 of the key */
	APIKEY_SCHEME_HMAC,				/* HMAC-SHA256 of the key, keyed by the pepper */
	APIKEY_SCHEME_HMAC_PREVIOUS		/* the same with the previous pepper (rotation) */
} ApiKeyHashScheme;

/* The setting crm_security.api_key_pepper and its previous value. */
extern void apikey_hash_init(void);

/* The scheme new keys are stored with: HMAC when a pepper is set, else SHA-256. */
extern ApiKeyHashScheme apikey_current_scheme(void);

/* The name stored in api_key_secrets.hash_scheme ("sha256" or "hmac-sha256"). */
extern const char *apikey_scheme_name(ApiKeyHashScheme scheme);

/*
 * The hash of `key` under `scheme` into out[CRM_SHA256_LEN]; false (out untouched) when the
 * scheme needs a pepper that is not set.
 */
extern bool apikey_hash(const char *key, int len, ApiKeyHashScheme scheme, unsigned char *out);

#endif							/* CRM_APIKEY_HASH_H */
