/*
 * keystore_internal.h
 *		The extension's own signing key in the key store (keystore_internal.c): the key that
 *		signs API-key contexts and service tokens.
 */
#ifndef CRM_KEYSTORE_INTERNAL_H
#define CRM_KEYSTORE_INTERNAL_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/*
 * The reserved key ID and issuer of the internal key.  No other row of jwt_keys may use
 * either (the row check refuses them), and a token verified by any other key that claims
 * this issuer is refused.
 */
#define KS_INTERNAL_KID		"crm_security.internal"
#define KS_INTERNAL_ISSUER	"crm_security:internal"
#define KS_INTERNAL_ALG		"HS256"

/* Whether a row with this kid and issuer (either may be NULL) uses a reserved name. */
extern bool ks_internal_reserved(const char *kid, const char *issuer);

/* Whether the internal key is being written by this module right now (the row check). */
extern bool ks_internal_writing(void);

/*
 * Make sure the internal key exists: create it (48 random bytes, HS256) when the key store
 * has none, as the owner of jwt_keys, in the current transaction.  Concurrent creators
 * wait for each other; one key results.
 */
extern void ks_internal_ensure(void);

/*
 * Sign `claims` with the internal key (created first when missing): a compact JWS with
 * the reserved kid.  The claims carry iss = KS_INTERNAL_ISSUER and an exp.
 */
extern text *ks_internal_sign(Jsonb *claims);

/* Append ,"name":<Unix time with milliseconds> to a JSON object being written. */
extern void ks_internal_append_time(StringInfo buf, const char *name, TimestampTz t);

#endif							/* CRM_KEYSTORE_INTERNAL_H */
