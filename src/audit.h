/*
 * audit.h
 *		The audit log's row layout, shared by the audit module (audit.c) and its writer
 *		(audit_write.c).
 */
#ifndef CRM_AUDIT_H
#define CRM_AUDIT_H

#include "postgres.h"

#include "utils/relcache.h"

/* Columns of audit_log, in the order of the table and of the canonical form. */
enum
{
	AL_ID,
	AL_TXID,
	AL_LOGGED_AT,
	AL_KIND,
	AL_TABLE_NAME,
	AL_OPERATION,
	AL_RECORD_KEY,
	AL_OLD_ROW,
	AL_NEW_ROW,
	AL_CHANGED_COLUMNS,
	AL_RESOURCE_TYPE,
	AL_RESOURCE_ID,
	AL_RESULT,
	AL_METADATA,
	AL_ACTOR_TYPE,
	AL_ACTOR_ID,
	AL_TENANT_ID,
	AL_DB_USER,
	AL_REQUEST_ID,
	AL_CLIENT_ADDR,
	AL_ENTRY_HASH,
	AL_NATTS
};

extern const char *const audit_colnames[AL_NATTS];
extern const Oid audit_coltypes[AL_NATTS];

/* audit_write.c */
extern void audit_write_init(void);
extern void audit_write_entry(Relation rel, Datum *values, bool *nulls, bool batch);
extern bool audit_write_append(Oid relid, Datum *values, bool *nulls);
extern void audit_write_flush(void);
extern void audit_write_invalidate(Oid relid);

#endif							/* CRM_AUDIT_H */
