/*
 * audit_subject_insert.h
 *		The key row of a new data subject, inserted without SQL (audit_subject_insert.c).
 */
#ifndef CRM_AUDIT_SUBJECT_INSERT_H
#define CRM_AUDIT_SUBJECT_INSERT_H

#include "postgres.h"

/*
 * Insert the row (key id from the sequence seqid, tenant, subject, wrapped_new, now) into
 * the key table relid as INSERT ... ON CONFLICT (tenant_id, subject) DO NOTHING would
 * (arbiter: the unique index on (tenant_id, subject)): true, *key_id its id.  Or find the
 * row that holds (tenant, subject) already, made by a concurrent transaction: false,
 * *key_id and *wrapped (allocated in the caller's memory context, NULL when the row has
 * none) are its.  tenant may be NULL.
 */
extern bool audit_subject_insert(Oid relid, Oid seqid, Oid arbiter,
								 const char *tenant, const char *subject,
								 bytea *wrapped_new, int64 *key_id, bytea **wrapped);

/* The transaction ended: forget its executor state (freed with its memory). */
extern void audit_subject_insert_xact_end(void);

#endif							/* CRM_AUDIT_SUBJECT_INSERT_H */
