/*
 * keys_jwk.h
 *		JWK and JWKS: reading and writing (keys_jwk.c).
 */
#ifndef CRM_KEYS_JWK_H
#define CRM_KEYS_JWK_H

#include "utils/jsonb.h"

#include "keys.h"

/*
 * Parse a JWK or a JWKS into a new set in its own memory context below `parent`.  Invalid
 * keys raise SQLSTATE 28000 with a detail; unusable members of a JWKS are skipped (the
 * first one's reason is kept in skipped_detail).  Free with keys_free_set().
 *
 * `with_private`: whether the private members of asymmetric JWKs (d, p, q, dp, dq, qi) are
 * read.  Without, a private JWK gives its public key only: its private members are checked
 * for type and size, never decoded or checked for consistency (which costs what verification
 * does not need).  HMAC secrets (oct "k") are always read.
 */
extern CrmKeySet *keys_parse_jsonb(Jsonb *jwk, bool with_private, MemoryContext parent);

/*
 * The JWK of a parsed key: its public members only, or with the private ones
 * (`with_private`; an HMAC secret has only private members, and raises 22023 without).
 * `alg` and `kid` are added when not NULL, and "use" is "sig".
 */
extern Jsonb *keys_jwk_from_key(const CrmKey *key, bool with_private, const char *alg,
								const char *kid);

/* The JWK {"kty":"oct","k":...} of an HMAC secret. */
extern Jsonb *keys_jwk_oct(const unsigned char *secret, int len);

#endif							/* CRM_KEYS_JWK_H */
