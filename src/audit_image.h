/*
 * audit_image.h
 *		Row images of audit entries: a table row as jsonb (audit_image.c).
 */
#ifndef CRM_AUDIT_IMAGE_H
#define CRM_AUDIT_IMAGE_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "commands/trigger.h"

struct AuditEntry;
struct AuditRelInfo;

/* How one column becomes a jsonb value (private to audit_image.c). */
typedef struct AuditCol AuditCol;

/*
 * The conversion plans of the given columns of src, allocated in cxt (current), in jsonb
 * key order.
 */
extern AuditCol *audit_image_cols(TupleDesc src, const AttrNumber *attnums, int n,
								  MemoryContext cxt);

/*
 * The row columns of the entry of a trigger event: record_key, and old_row, new_row and
 * changed_columns as the event has them, each with its canonical text.  info is the
 * table's description, pinned by the caller.  Nothing for TRUNCATE.
 */
extern void audit_row_images(struct AuditEntry *e, TriggerData *td, struct AuditRelInfo *info);

#endif							/* CRM_AUDIT_IMAGE_H */
