/*
 * audit_personal.h
 *		Personal values of audit entries: encrypted under their data subject's key before
 *		the entry is hashed, and read back by auditors (audit_personal.c, docs/privacy.md).
 */
#ifndef CRM_AUDIT_PERSONAL_H
#define CRM_AUDIT_PERSONAL_H

#include "postgres.h"

#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/jsonb.h"

struct AuditEntry;
struct AuditRelInfo;

/*
 * Encrypt the personal columns of the row images of e (built by audit_row_images(), its
 * id already assigned) under the data keys of their subjects.
 */
extern void audit_personal_row(struct AuditEntry *e, TriggerData *td,
							   struct AuditRelInfo *info);

/*
 * The metadata of an event with the top-level members named in keys (NULL: every one)
 * encrypted for subject of tenant, bound to entry_id.
 */
extern Jsonb *audit_personal_metadata(Jsonb *md, int64 entry_id, const char *tenant,
									  const char *subject, ArrayType *keys);

#endif							/* CRM_AUDIT_PERSONAL_H */
