/*
 * audit_protect.c
 *		Append-only protection: the trigger audit_protect() on audit_log, audit_blocks and
 *		audit_purges refuses UPDATE, DELETE and TRUNCATE for every role, checks where an
 *		inserted block ends, and lets through only the deletion purge_audit_log() makes.
 *		On audit_log it also refuses every inserted row whose keyed hash does not verify
 *		under the entry key: only the extension's writer (or a restore of entries made
 *		under the same key) can add an entry.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include <openssl/crypto.h>

#include "audit_canonical.h"
#include "audit_layout.h"
#include "audit_protect.h"
#include "audit_rel.h"

/* Set only while audit_protect_purge_entries() deletes entries. */
static bool audit_purging = false;

uint64
audit_protect_purge_entries(int64 txid_hi)
{
	Datum		arg = Int64GetDatum(txid_hi);
	Oid			type = INT8OID;

	audit_purging = true;
	PG_TRY();
	{
		if (SPI_execute_with_args("DELETE FROM crm_security.audit_log WHERE txid OPERATOR(pg_catalog.<) $1",
								  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete audit entries");
	}
	PG_FINALLY();
	{
		audit_purging = false;
	}
	PG_END_TRY();
	return SPI_processed;
}

/*
 * A block inserted into audit_blocks must end at a transaction this cluster has already
 * reached.  Sealing always meets this (a block ends at the oldest running transaction); a
 * restore into a cluster whose transaction counter is behind the source's does not, and
 * would go wrong later: the entries written there from then on would carry transaction
 * ids inside the restored blocks' ranges, and verification would report every sealed
 * block they fall into.  Refuse the block at the restore instead.
 */
static void
audit_check_block_insert(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			id_att = SPI_fnumber(desc, "block_id");
	int			hi_att = SPI_fnumber(desc, "txid_hi");
	bool		isnull;
	Datum		hi;
	int64		next_txid = (int64) U64FromFullTransactionId(ReadNextFullTransactionId());

	if (id_att <= 0 || hi_att <= 0)
		elog(ERROR, "audit_blocks has no block_id or txid_hi column");
	hi = heap_getattr(td->tg_trigtuple, hi_att, desc, &isnull);
	if (!isnull && DatumGetInt64(hi) > next_txid)
	{
		Datum		id = heap_getattr(td->tg_trigtuple, id_att, desc, &isnull);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit block %lld covers transactions this cluster has not reached",
						isnull ? -1LL : (long long) DatumGetInt64(id)),
				 errdetail("The block ends at transaction %lld and the next transaction id is %lld: "
						   "entries written from now on would fall into the range of a sealed block.",
						   (long long) DatumGetInt64(hi), (long long) next_txid),
				 errhint("Restore the audit log into a cluster whose transaction counter is past the source's: "
						 "advance the new cluster's epoch with pg_resetwal --epoch before restoring "
						 "(see \"Dump and restore\" in docs/audit.md).")));
	}
}

bool
audit_protect_is_guard(Relation rel, const Trigger *trigger)
{
	char	   *name;
	bool		ok;

	if (!TRIGGER_FOR_ROW(trigger->tgtype) || !TRIGGER_FOR_BEFORE(trigger->tgtype) ||
		get_func_namespace(trigger->tgfoid) != RelationGetNamespace(rel))
		return false;
	name = get_func_name(trigger->tgfoid);
	ok = name != NULL && strcmp(name, "audit_protect") == 0;
	if (name != NULL)
		pfree(name);
	return ok;
}

/*
 * A row inserted into audit_log (or one of its partitions) is accepted only when its
 * entry_hash is the keyed hash of its canonical form.  The writer's entries always are;
 * an entry copied from a dump of a cluster with the same entry key is too; anything
 * made up in SQL, even with a correct plain SHA-256, is not.  Columns are found by name,
 * so that a partition with another column order is checked the same way.
 */
static void
audit_check_entry_insert(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	uint8		hash[AUDIT_HASH_LEN];
	bool		ok = true;

	for (int i = 0; i < AL_NATTS; i++)
	{
		int			att = SPI_fnumber(desc, audit_colnames[i]);

		/* A column missing or of another type (the table was altered): not an entry. */
		if (att <= 0 || TupleDescAttr(desc, att - 1)->atttypid != audit_coltypes[i])
		{
			ok = false;
			values[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		values[i] = heap_getattr(td->tg_trigtuple, att, desc, &nulls[i]);
	}
	if (ok && !nulls[AL_ENTRY_HASH])
	{
		bytea	   *stored = DatumGetByteaPP(values[AL_ENTRY_HASH]);

		audit_entry_hash(values, nulls, NULL, NULL, NULL, 0, hash);
		ok = VARSIZE_ANY_EXHDR(stored) == AUDIT_HASH_LEN &&
			CRYPTO_memcmp(VARDATA_ANY(stored), hash, AUDIT_HASH_LEN) == 0;
	}
	else
		ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot insert into \"%s\"", RelationGetRelationName(td->tg_relation)),
				 errdetail("Audit entries are written only by the extension, for every role including superusers; "
						   "a copied entry is accepted only when its keyed hash verifies under this cluster's entry key."),
				 errhint("To restore a dump into another cluster, copy the source's entry key file first "
						 "(see \"Dump and restore\" in docs/audit.md).")));
}

/* SQL function: audit_protect() returns trigger */
PG_FUNCTION_INFO_V1(audit_protect);
Datum
audit_protect(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_protect() must be called as a trigger")));

	/* Blocks are appended (by sealing, or by a restore): check where they end. */
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) && TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		if (RelationGetRelid(td->tg_relation) == audit_relids()->blocks)
		{
			audit_check_block_insert(td);
			return PointerGetDatum(td->tg_trigtuple);
		}
		if (RelationGetRelid(td->tg_relation) != audit_relids()->purges)
		{
			audit_check_entry_insert(td);
			return PointerGetDatum(td->tg_trigtuple);
		}
	}

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) && audit_purging)
	{
		if (RelationGetRelid(td->tg_relation) == audit_relids()->log)
			return TRIGGER_FIRED_FOR_ROW(td->tg_event) ?
				PointerGetDatum(td->tg_trigtuple) : PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		what = "update";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		what = "delete from";
	else if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		what = "truncate";
	else
		what = "change";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s \"%s\"", what, RelationGetRelationName(td->tg_relation)),
			 errdetail("The audit log is append-only, for every role including superusers."),
			 errhint("Entries are deleted only by crm_security.purge_audit_log().")));
	PG_RETURN_NULL();
}
