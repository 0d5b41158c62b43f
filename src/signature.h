/*
 * signature.h
 *		Raw JOSE signatures with a parsed key (signature.c).
 */
#ifndef CRM_SIGNATURE_H
#define CRM_SIGNATURE_H

#include "keys.h"

/*
 * Raw signatures.  sig_verify returns false for any wrong or malformed signature;
 * sig_sign returns the signature in JOSE form (ECDSA: r||s) as palloc'd bytes.
 * Both require keys_allows() to hold.
 */
extern bool sig_verify(const CrmKey *key, const CrmAlg *alg,
					   const unsigned char *msg, size_t msglen,
					   const unsigned char *sig, size_t siglen);
extern bytea *sig_sign(const CrmKey *key, const CrmAlg *alg,
					   const unsigned char *msg, size_t msglen);

/* The one key of a set that may sign with alg (28000 when none or several can). */
extern const CrmKey *sig_signing_key(CrmKeySet *set, const CrmAlg *alg);

#endif							/* CRM_SIGNATURE_H */
