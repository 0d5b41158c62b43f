/*
 * audit_personal.h
 *		Personal values of audit entries: encrypted under their data subject's key before
 *		the entry is hashed, and read back by auditors (audit_personal.c, docs/privacy.md).
 */
#ifndef CRM_AUDIT_PERSONAL_H
#define CRM_AUDIT_PERSONAL_H

#include "postgres.h"

#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "crypto.h"

struct AuditEntry;
struct AuditRelInfo;

/* The data key an image's personal values are encrypted under, and what binds them. */
typedef struct AuditPersonalKey
{
	int64		entry_id;
	const char *image;			/* "old_row", "new_row" */
	int64		key_id;
	uint8		key[CRM_GCM_KEY_LEN];
} AuditPersonalKey;

/*
 * The key of the subject of the row in slot (entry e's id assigned, its record_key
 * built), for its image named image.  Wipe pk->key with explicit_bzero() after use.
 */
extern void audit_personal_key(struct AuditEntry *e, struct AuditRelInfo *info,
							   TupleTableSlot *slot, const char *image, AuditPersonalKey *pk);

/* Whether name is one of the personal columns of info. */
extern bool audit_personal_column(struct AuditRelInfo *info, const char *name, int len);

/*
 * The metadata of an event with the top-level members named in keys (NULL: every one)
 * encrypted for subject of tenant, bound to entry_id.
 */
extern Jsonb *audit_personal_metadata(Jsonb *md, int64 entry_id, const char *tenant,
									  const char *subject, ArrayType *keys);

#endif							/* CRM_AUDIT_PERSONAL_H */
