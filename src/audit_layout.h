/*
 * audit_layout.h
 *		The columns of crm_security.audit_log: their one definition in C.
 *
 * The column list below is the table of sql/60_audit.sql in C: every other list of the
 * columns is derived from it (the AL_ indexes, the names and types the writer and the
 * canonical form use, the column list of the queries that read entries back).  Column
 * AL_x is attribute number AL_x + 1 of the table as the install script creates it.
 * test/pgtap/audit_layout.sql checks that the table and this definition agree.
 */
#ifndef CRM_AUDIT_LAYOUT_H
#define CRM_AUDIT_LAYOUT_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"

/*
 * COL(index, name, type, always_set): always_set columns are filled in by every entry
 * (the table declares them NOT NULL).  In the order of the table and of the canonical
 * form; entry_hash, the hash of the canonical form, comes last.
 */
#define AUDIT_LOG_COLUMNS(COL) \
	COL(AL_ID, "id", INT8OID, true) \
	COL(AL_TXID, "txid", INT8OID, true) \
	COL(AL_LOGGED_AT, "logged_at", TIMESTAMPTZOID, true) \
	COL(AL_KIND, "kind", TEXTOID, true) \
	COL(AL_TABLE_NAME, "table_name", TEXTOID, false) \
	COL(AL_OPERATION, "operation", TEXTOID, true) \
	COL(AL_RECORD_KEY, "record_key", JSONBOID, false) \
	COL(AL_OLD_ROW, "old_row", JSONBOID, false) \
	COL(AL_NEW_ROW, "new_row", JSONBOID, false) \
	COL(AL_CHANGED_COLUMNS, "changed_columns", TEXTARRAYOID, false) \
	COL(AL_RESOURCE_TYPE, "resource_type", TEXTOID, false) \
	COL(AL_RESOURCE_ID, "resource_id", TEXTOID, false) \
	COL(AL_RESULT, "result", TEXTOID, false) \
	COL(AL_METADATA, "metadata", JSONBOID, false) \
	COL(AL_ACTOR_TYPE, "actor_type", TEXTOID, true) \
	COL(AL_ACTOR_ID, "actor_id", TEXTOID, false) \
	COL(AL_TENANT_ID, "tenant_id", TEXTOID, false) \
	COL(AL_DB_USER, "db_user", TEXTOID, true) \
	COL(AL_REQUEST_ID, "request_id", TEXTOID, false) \
	COL(AL_CLIENT_ADDR, "client_addr", INETOID, false) \
	COL(AL_ENTRY_HASH, "entry_hash", BYTEAOID, true)

#define AUDIT_LOG_COLUMN_INDEX(index, name, type, always_set) index,
enum
{
	AUDIT_LOG_COLUMNS(AUDIT_LOG_COLUMN_INDEX)
	AL_NATTS
};
#undef AUDIT_LOG_COLUMN_INDEX

/* Names and types of the columns, by AL_ index. */
extern const char *const audit_colnames[AL_NATTS];
extern const Oid audit_coltypes[AL_NATTS];

/* "id, txid, ..., entry_hash": the columns in order, for a query; built once. */
extern const char *audit_layout_column_list(void);

/*
 * Whether a descriptor is audit_log's as this definition describes it, as far as writing
 * it by heap access relies on: the columns, their types, and no constraint an entry
 * could fail (NOT NULL only on always_set columns, no CHECK but the install script's).
 */
extern bool audit_layout_matches(TupleDesc desc);

#endif							/* CRM_AUDIT_LAYOUT_H */
