/*
 * keystore_settings.h
 *		The verification settings kept in the key store (keystore_settings.c): the default
 *		row of crm_security.jwt_settings and the per-key columns of jwt_keys.
 */
#ifndef CRM_KEYSTORE_SETTINGS_H
#define CRM_KEYSTORE_SETTINGS_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "utils/jsonb.h"

#include "jwt.h"

typedef struct KsSettings
{
	char	   *audience;		/* NULL: not set */
	char	   *issuer;			/* default row only; NULL: not set */
	bool		has_leeway;
	double		leeway;			/* seconds */
	int			require_exp;	/* -1: not set, else 0 or 1 */
} KsSettings;

/* Column numbers of the per-key settings in jwt_keys (0 for a column that is missing). */
typedef struct KsSettingsColumns
{
	int			audience;
	int			leeway;
	int			require_exp;
} KsSettingsColumns;

/* Nothing set. */
extern void kss_clear(KsSettings *s);

/* Find the columns (an install of 0.1.0's SQL has none of them). */
extern void kss_columns(TupleDesc desc, KsSettingsColumns *cols);

/* Read one row's settings (strings allocated in the current memory context). */
extern void kss_read_key(TupleTableSlot *slot, const KsSettingsColumns *cols, KsSettings *s);

/*
 * Read the default row of crm_security.jwt_settings into `dflt` (in the current memory
 * context); returns the table's OID, InvalidOid when the table does not exist (0.1.0).
 */
extern Oid	kss_load_default(KsSettings *dflt);

/*
 * Check the claims of a token verified by a key with the settings `key` (bound to an
 * issuer or not) under the default row `dflt` and the settings of the session `guc`
 * (jwt_audience, jwt_issuer, clock_skew, require_exp): the key's value, else the default
 * row's, else the session's for leeway and require_exp; the audience and issuer of the
 * store, and those of the session as well (both must hold, so a session whose settings
 * lag can never accept what the store refuses).  `eff` receives the options used.
 * Raises 28000 (or the reason's code).
 */
extern void kss_check_claims(Jsonb *claims, const KsSettings *key, bool key_has_issuer,
							 const KsSettings *dflt, const JwtVerifyOptions *guc,
							 JwtVerifyOptions *eff);

/*
 * Check the settings columns of a row of jwt_keys (kid given) or of jwt_settings (kid
 * NULL): a non-empty audience, a leeway between 0 and one day; 22023 otherwise.
 */
extern void kss_check_key_row(HeapTuple tup, TupleDesc desc, const char *kid);

#endif							/* CRM_KEYSTORE_SETTINGS_H */
