/*
 * keystore.h
 *		The trusted key store (table crm_security.jwt_keys), for the claim context.
 */
#ifndef CRM_KEYSTORE_H
#define CRM_KEYSTORE_H

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

struct JwtVerifyOptions;

/* Module initialisation (the relcache callback on jwt_keys), from _PG_init. */
extern void ks_init(void);

/*
 * The version of the key store's rows in this process, after accepting pending
 * invalidations: it changes whenever the rows are reloaded.
 */
extern uint64 ks_current_version(void);

/*
 * Verify a compact JWT against the enabled keys of the store and return its claims; every
 * refusal raises 28000.  When valid_until is not NULL it receives the moment the answer
 * stops holding: the earlier of the token's exp (with the leeway) and the end of the
 * verifying key's window (DT_NOEND when neither exists).  *internal says whether the token
 * is the extension's own (its kid is the internal key's, and only that key verified it,
 * with its own rules: issuer KS_INTERNAL_ISSUER, exp required, no leeway; `opts` then
 * counts only for the time).
 */
extern Jsonb *ks_verify_token(const char *token, int len, const struct JwtVerifyOptions *opts,
							  TimestampTz *valid_until, bool *internal);

/*
 * The extension's own signing key (keystore_internal.c), parsed, with its kid; NULL when
 * the store has none that is enabled.  Owned by the key store: valid until its next reload.
 */
struct CrmKey;
extern const struct CrmKey *ks_internal_signing_key(void);

/* The attribute number of a column of jwt_keys (an error when it is missing). */
extern int	ks_attnum(TupleDesc desc, const char *name);

#endif							/* CRM_KEYSTORE_H */
