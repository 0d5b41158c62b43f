/*
 * audit_entry.h
 *		One audit entry being assembled, and writing it (audit_entry.c).
 */
#ifndef CRM_AUDIT_ENTRY_H
#define CRM_AUDIT_ENTRY_H

#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "audit_layout.h"

/*
 * Gathered fields of one entry before insertion.  text[i], when set, is the canonical
 * text of values[i] (a jsonb row image rendered while it was built), so that hashing does
 * not render it again; it must be byte for byte what audit_put_value() would produce.
 */
typedef struct AuditEntry
{
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	const char *text[AL_NATTS];
	int			textlen[AL_NATTS];
	/* When set: the canonical fields actor_type .. client_addr, already written. */
	const char *actor_canon;
	int			actor_canon_len;
} AuditEntry;

/* Set a text column of an entry; NULL for SQL null. */
static inline void
audit_set_text(AuditEntry *e, int col, const char *s)
{
	if (s == NULL)
	{
		e->nulls[col] = true;
		e->values[col] = (Datum) 0;
	}
	else
	{
		e->nulls[col] = false;
		e->values[col] = CStringGetTextDatum(s);
	}
}

/* A new entry of a kind ("row", "event") and operation, with its who/where columns. */
extern void audit_entry_init(AuditEntry *e, const char *kind, const char *operation);

/* Give an entry its id now (before its personal values are encrypted for it). */
extern void audit_entry_assign_id(AuditEntry *e);

/*
 * Complete an entry (id, txid, time, hash) and write it; returns its id.  With batch, it
 * may be written with the other entries of its statement (audit_write.c).
 */
extern int64 audit_insert_entry(AuditEntry *e, bool batch);

/* Record an event of the extension itself (enable, disable, purge). */
extern int64 audit_internal_event(const char *action, const char *resource_type,
								  const char *resource_id, Jsonb *metadata);

#endif							/* CRM_AUDIT_ENTRY_H */
