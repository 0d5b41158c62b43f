/*
 * audit_entry.c
 *		Assembling an audit entry and completing it: its id, transaction, time and hash,
 *		then handing it to the writer (audit_write.c).
 */
#include "postgres.h"

#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "utils/timestamp.h"

#include "audit_actor.h"
#include "audit_canonical.h"
#include "audit_entry.h"
#include "audit_rel.h"
#include "audit_write.h"

int64
audit_insert_entry(AuditEntry *e, bool batch)
{
	const AuditRelids *rels = audit_relids();
	Relation	rel;
	int64		id;
	uint8		hash[AUDIT_HASH_LEN];

	/* An entry with personal values has its id already: they are bound to it. */
	if (e->nulls[AL_ID])
		audit_entry_assign_id(e);
	id = DatumGetInt64(e->values[AL_ID]);
	e->values[AL_TXID] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	e->nulls[AL_TXID] = false;
	e->values[AL_LOGGED_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	e->nulls[AL_LOGGED_AT] = false;

	audit_entry_hash(e->values, e->nulls, e->text, e->textlen, e->actor_canon,
					 e->actor_canon_len, hash);
	e->values[AL_ENTRY_HASH] = PointerGetDatum(audit_bytea(hash, AUDIT_HASH_LEN));
	e->nulls[AL_ENTRY_HASH] = false;

	if (!batch || !audit_write_append(rels->log, e->values, e->nulls))
	{
		rel = table_open(rels->log, RowExclusiveLock);
		audit_write_entry(rel, e->values, e->nulls, batch);
		table_close(rel, NoLock);
	}
	return id;
}

void
audit_entry_assign_id(AuditEntry *e)
{
	e->values[AL_ID] = Int64GetDatum(nextval_internal(audit_relids()->seq, false));
	e->nulls[AL_ID] = false;
}

void
audit_entry_init(AuditEntry *e, const char *kind, const char *operation)
{
	for (int i = 0; i < AL_NATTS; i++)
	{
		e->values[i] = (Datum) 0;
		e->nulls[i] = true;
		e->text[i] = NULL;
		e->textlen[i] = 0;
	}
	e->actor_canon = NULL;
	e->actor_canon_len = 0;
	audit_set_text(e, AL_KIND, kind);
	audit_set_text(e, AL_OPERATION, operation);
	audit_fill_actor(e);
}

int64
audit_internal_event(const char *action, const char *resource_type, const char *resource_id,
					 Jsonb *metadata)
{
	AuditEntry	e;

	audit_entry_init(&e, "event", action);
	audit_set_text(&e, AL_RESOURCE_TYPE, resource_type);
	audit_set_text(&e, AL_RESOURCE_ID, resource_id);
	audit_set_text(&e, AL_RESULT, "success");
	if (metadata != NULL)
	{
		e.values[AL_METADATA] = JsonbPGetDatum(metadata);
		e.nulls[AL_METADATA] = false;
	}
	return audit_insert_entry(&e, false);
}
