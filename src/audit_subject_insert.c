/*
 * audit_subject_insert.c
 *		The key row of a new data subject, inserted into crm_security.audit_subject_keys
 *		without SQL: the steps of INSERT ... ON CONFLICT (tenant_id, subject) DO NOTHING
 *		(ExecInsert() of PostgreSQL's nodeModifyTable.c), without a plan, an executor
 *		run per row or a role switch.
 *
 * A speculative insertion: the heap tuple is inserted with a speculative token, then its
 * index entries, the unique index on (tenant_id, subject) being the arbiter (a conflict
 * there is noted, not raised).  Without a conflict the insertion is confirmed; with one,
 * the tuple is killed at once ("super-deleted") and the loop starts again with the
 * pre-check, which waits for a concurrent inserter to commit or abort and then finds its
 * row, whose key the caller uses.  Concurrent first writes for one subject therefore
 * agree on one key, as the SQL statement did.  The other unique indexes (the primary key)
 * raise on a duplicate, as in SQL.  The caller has just looked for the row under an MVCC
 * snapshot and missed, so the first attempt skips the pre-check (it would almost always
 * miss as well); the speculative insertion alone decides, as it does in PostgreSQL.
 *
 * The row is what the SQL statement wrote: the key id from the table's sequence (drawn
 * once per row, as a column default is), the tenant, the subject, the wrapped key, and
 * the transaction's start time as created_at; NOT NULL is checked (ExecConstraints).
 * Anything else an INSERT would do (triggers, rules, CHECK constraints, generated columns,
 * forced row security, partial or expression indexes, deferrable or exclusion
 * constraints, other columns, a nondeterministic collation) is not done here: when the
 * table has any of it, the row goes through that SQL statement instead, run as the
 * table's owner.  Writing the table directly needs no privilege on it; SQL access to it
 * stays its owner's alone.
 *
 * What is kept: per backend, the table's indexes with their IndexInfo (speculative
 * insertion data included), rebuilt after a relcache invalidation of the table or an
 * index; per transaction, an EState and a slot.  The relations are opened and closed per
 * row (their locks are kept to the end of the transaction, as the executor keeps them),
 * so that nothing is held across a subtransaction's end.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "crm_security.h"

#include "audit_subject_insert.h"
#include "relcache_callbacks.h"

/* The columns of audit_subject_keys (sql/65_privacy.sql), in order. */
#define SK_NATTS 5
static const struct
{
	const char *name;
	Oid			type;
}			sk_columns[SK_NATTS] =
{
	{"key_id", INT8OID},
	{"tenant_id", TEXTOID},
	{"subject", TEXTOID},
	{"wrapped_key", BYTEAOID},
	{"created_at", TIMESTAMPTZOID}
};

/*
 * Attempts at most: each after a concurrent transaction made the row and another removed
 * it again in between, which takes two commits per attempt.
 */
#define SK_MAX_ATTEMPTS 100

/* Indexes the direct path maintains at most. */
#define SK_MAX_INDEXES 8

/* Per backend: what the direct path knows about the table, valid until invalidated. */
static MemoryContext ins_cxt = NULL;
static int	ins_state = -1;		/* -1 unknown, 0 not direct, 1 direct */
static Oid	ins_relid = InvalidOid;
static Oid	ins_arbiter = InvalidOid;
static int	ins_nidx = 0;
static Oid	ins_idx_oids[SK_MAX_INDEXES];
static IndexInfo *ins_idx_info[SK_MAX_INDEXES];
static List *ins_arbiters = NIL;
static uint64 ins_generation = 0;
static bool ins_callback = false;

/* Per transaction (in its memory): the executor state and the slot of the new row. */
static EState *x_estate = NULL;
static TupleTableSlot *x_slot = NULL;
static uint64 x_generation = 0;

static void
subject_insert_relcache(Datum arg, Oid relid)
{
	if (ins_state < 0)
		return;
	if (relid == InvalidOid || relid == ins_relid)
		ins_state = -1;
	for (int i = 0; i < ins_nidx && ins_state >= 0; i++)
		if (ins_idx_oids[i] == relid)
			ins_state = -1;
}

void
audit_subject_insert_xact_end(void)
{
	x_estate = NULL;
	x_slot = NULL;
}

/* Whether the table and its arbiter are as this file expects (see the top). */
static bool
direct_table_ok(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_class cls = rel->rd_rel;

	if (cls->relkind != RELKIND_RELATION || cls->relam != HEAP_TABLE_AM_OID ||
		rel->trigdesc != NULL || cls->relhastriggers || cls->relhasrules ||
		(cls->relrowsecurity && cls->relforcerowsecurity))
		return false;
	if (desc->natts != SK_NATTS)
		return false;
	for (int i = 0; i < SK_NATTS; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->atttypid != sk_columns[i].type ||
			strcmp(NameStr(a->attname), sk_columns[i].name) != 0 ||
			a->attgenerated != '\0')
			return false;
		/* Equal in the index is equal byte for byte (see fetch_conflict()). */
		if (OidIsValid(a->attcollation) && !get_collation_isdeterministic(a->attcollation))
			return false;
	}
	if (desc->constr != NULL &&
		(desc->constr->num_check > 0 || desc->constr->has_generated_stored))
		return false;
	return true;
}

static bool
direct_index_ok(Relation idx, Oid arbiter, bool *is_arbiter)
{
	Form_pg_index ind = idx->rd_index;

	*is_arbiter = false;
	if (!ind->indimmediate || RelationGetIndexExpressions(idx) != NIL ||
		RelationGetIndexPredicate(idx) != NIL)
		return false;
	if (RelationGetRelid(idx) != arbiter)
		return true;
	/* The arbiter: UNIQUE NULLS NOT DISTINCT (tenant_id, subject), valid. */
	if (!ind->indisunique || !ind->indnullsnotdistinct || !ind->indisvalid ||
		!ind->indisready || ind->indnkeyatts != 2 ||
		ind->indkey.values[0] != 2 || ind->indkey.values[1] != 3)
		return false;
	*is_arbiter = true;
	return true;
}

/* Learn the table: whether the direct path applies, and its indexes. */
static void
direct_build(Relation rel, Oid arbiter)
{
	List	   *idxs;
	ListCell   *lc;
	bool		ok;
	bool		have_arbiter = false;
	MemoryContext old;

	if (!ins_callback)
	{
		crm_register_relcache_callback(subject_insert_relcache, (Datum) 0);
		ins_callback = true;
	}
	if (ins_cxt == NULL)
		ins_cxt = AllocSetContextCreate(CacheMemoryContext, "crm_security subject key insert",
										ALLOCSET_SMALL_SIZES);
	MemoryContextReset(ins_cxt);
	ins_nidx = 0;
	ins_arbiters = NIL;
	ins_generation++;
	ins_relid = RelationGetRelid(rel);
	ins_arbiter = arbiter;
	/* Valid from here: an invalidation while the indexes are read below resets it. */
	ins_state = 0;

	ok = direct_table_ok(rel);
	idxs = RelationGetIndexList(rel);
	if (list_length(idxs) > SK_MAX_INDEXES)
		ok = false;
	foreach(lc, idxs)
	{
		Relation	idx;
		bool		is_arbiter;

		if (!ok)
			break;
		idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		ok = direct_index_ok(idx, arbiter, &is_arbiter);
		if (ok)
		{
			IndexInfo  *ii;

			old = MemoryContextSwitchTo(ins_cxt);
			ii = BuildIndexInfo(idx);
			if (ii->ii_ExclusionOps != NULL)
				ok = false;
			else if (ii->ii_Unique)
				BuildSpeculativeIndexInfo(idx, ii);
			MemoryContextSwitchTo(old);
			ins_idx_oids[ins_nidx] = RelationGetRelid(idx);
			ins_idx_info[ins_nidx] = ii;
			ins_nidx++;
			have_arbiter |= is_arbiter;
		}
		index_close(idx, NoLock);
	}
	list_free(idxs);
	if (ok && have_arbiter)
	{
		old = MemoryContextSwitchTo(ins_cxt);
		ins_arbiters = list_make1_oid(arbiter);
		MemoryContextSwitchTo(old);
		if (ins_state == 0)
			ins_state = 1;
	}
}

/* Whether the direct path applies to rel, learning it first when needed. */
static bool
direct_ready(Relation rel, Oid arbiter)
{
	/* An invalidation while the table is learnt makes it learn again. */
	for (int i = 0; i < 3 && (ins_state < 0 || ins_relid != RelationGetRelid(rel) ||
							  ins_arbiter != arbiter); i++)
		direct_build(rel, arbiter);
	return ins_state == 1 && ins_relid == RelationGetRelid(rel) && ins_arbiter == arbiter;
}

/* The transaction's executor state and slot, made at its first new key. */
static EState *
xact_estate(Relation rel)
{
	if (x_estate == NULL || x_slot == NULL || x_generation != ins_generation)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		if (x_estate == NULL)
			x_estate = CreateExecutorState();
		/* A descriptor of its own (not reference-counted): the slot holds no resource. */
		x_slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(rel)),
										  &TTSOpsVirtual);
		x_generation = ins_generation;
		MemoryContextSwitchTo(old);
	}
	return x_estate;
}

static void
fill_slot(TupleTableSlot *slot, Datum *values, bool *nulls)
{
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * SK_NATTS);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * SK_NATTS);
	ExecStoreVirtualTuple(slot);
}

static bool
text_is(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/*
 * The row found in the way at tid: its key id and wrapped key, if it still holds
 * (tenant, subject).  False when it is gone (deleted and committed since the pre-check):
 * the caller tries again.  Under REPEATABLE READ or SERIALIZABLE a row this transaction
 * cannot see is a serialization failure, as for INSERT ... ON CONFLICT DO NOTHING.
 */
static bool
fetch_conflict(Relation rel, ItemPointer tid, const char *tenant, const char *subject,
			   int64 *key_id, bytea **wrapped, MemoryContext caller)
{
	SnapshotData dirty;
	TupleTableSlot *found = table_slot_create(rel, NULL);
	bool		ok = false;
	bool		isnull;
	Datum		d;

	InitDirtySnapshot(dirty);
	if (table_tuple_fetch_row_version(rel, tid, &dirty, found))
	{
		d = slot_getattr(found, 2, &isnull);
		ok = tenant == NULL ? isnull : (!isnull && text_is(d, tenant));
		d = slot_getattr(found, 3, &isnull);
		ok = ok && !isnull && text_is(d, subject);
	}
	if (ok && IsolationUsesXactSnapshot() &&
		!table_tuple_satisfies_snapshot(rel, found, GetTransactionSnapshot()))
	{
		TransactionId xmin;

		xmin = DatumGetTransactionId(slot_getsysattr(found, MinTransactionIdAttributeNumber,
													 &isnull));
		/* A row of this transaction that its snapshot does not show is no conflict. */
		if (!TransactionIdIsCurrentTransactionId(xmin))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create the data key of a data subject"),
					 errdetail("A concurrent transaction created it after this transaction's snapshot was taken."),
					 errhint("Retry the transaction.")));
	}
	if (ok)
	{
		*key_id = DatumGetInt64(slot_getattr(found, 1, &isnull));
		d = slot_getattr(found, 4, &isnull);
		*wrapped = isnull ? NULL : (bytea *) MemoryContextAlloc(caller, VARSIZE_ANY(DatumGetPointer(d)));
		if (!isnull)
			memcpy(*wrapped, DatumGetPointer(d), VARSIZE_ANY(DatumGetPointer(d)));
	}
	ExecDropSingleTupleTableSlot(found);
	return ok;
}

/* SPI: the row inserted through SQL, as the table's owner (callers have no privilege). */
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_select_t = NULL; /* tenant_id = $1 */
static SPIPlanPtr plan_select_n = NULL; /* tenant_id IS NULL */

/* The row of (tenant, subject) through SQL (SPI connected, as owner); false if none. */
static bool
select_sql(const char *tenant, const char *subject, int64 *key_id, bytea **wrapped)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	SPIPlanPtr	p;
	bool		isnull;
	Datum		w;

	if (tenant != NULL)
	{
		p = crm_keep_plan(&plan_select_t,
					  "SELECT key_id, wrapped_key FROM crm_security.audit_subject_keys "
					  "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND subject OPERATOR(pg_catalog.=) $2",
					  2, types);
		args[0] = CStringGetTextDatum(tenant);
		args[1] = CStringGetTextDatum(subject);
	}
	else
	{
		p = crm_keep_plan(&plan_select_n,
					  "SELECT key_id, wrapped_key FROM crm_security.audit_subject_keys "
					  "WHERE tenant_id IS NULL AND subject OPERATOR(pg_catalog.=) $1",
					  1, types);
		args[0] = CStringGetTextDatum(subject);
	}
	if (SPI_execute_plan(p, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm_security.audit_subject_keys");
	if (SPI_processed == 0)
		return false;
	*key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	/* In the caller's memory (SPI_palloc), which SPI_finish() leaves. */
	*wrapped = isnull ? NULL : SPI_palloc(VARSIZE_ANY(DatumGetPointer(w)));
	if (!isnull)
		memcpy(*wrapped, DatumGetPointer(w), VARSIZE_ANY(DatumGetPointer(w)));
	return true;
}

/*
 * INSERT ... ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING key_id, as the table's
 * owner, for a table the direct path does not apply to; then the winner's row if there
 * was a conflict.
 */
static bool
insert_sql_as(Oid owner, const char *tenant, const char *subject, bytea *wrapped_new,
		   int64 *key_id, bytea **wrapped)
{
	Oid			save_userid;
	int			save_sec;
	volatile bool inserted = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		Datum		args[3];
		char		nulls[3] = {tenant ? ' ' : 'n', ' ', ' '};
		Oid			types[3] = {TEXTOID, TEXTOID, BYTEAOID};
		SPIPlanPtr	p;
		bool		isnull;

		p = crm_keep_plan(&plan_insert,
					  "INSERT INTO crm_security.audit_subject_keys (tenant_id, subject, wrapped_key) "
					  "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING key_id",
					  3, types);
		args[0] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
		args[1] = CStringGetTextDatum(subject);
		args[2] = PointerGetDatum(wrapped_new);
		if (SPI_execute_plan(p, args, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not write crm_security.audit_subject_keys");
		if (SPI_processed == 1)
		{
			*key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
			inserted = true;
		}
		/* Another transaction made it first (and committed): use that one. */
		else if (!select_sql(tenant, subject, key_id, wrapped))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create the data key of a data subject"),
					 errdetail("A concurrent transaction created and removed it."),
					 errhint("Retry the transaction.")));
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	SPI_finish();
	return inserted;
}

static bool
insert_through_sql(Relation rel, const char *tenant, const char *subject, bytea *wrapped_new,
				   int64 *key_id, bytea **wrapped)
{
	Oid			owner = rel->rd_rel->relowner;

	table_close(rel, NoLock);
	return insert_sql_as(owner, tenant, subject, wrapped_new, key_id, wrapped);
}

bool
audit_subject_insert(Oid relid, Oid seqid, Oid arbiter, const char *tenant,
					 const char *subject, bytea *wrapped_new, int64 *key_id, bytea **wrapped)
{
	MemoryContext caller = CurrentMemoryContext;
	Relation	rel;
	Relation	idxrels[SK_MAX_INDEXES];
	ResultRelInfo rri;
	EState	   *estate;
	TupleTableSlot *slot;
	Datum		values[SK_NATTS];
	bool		nulls[SK_NATTS] = {false, tenant == NULL, false, false, false};
	bool		precheck = false;
	bool		inserted;

	rel = table_open(relid, RowExclusiveLock);
	/* After the lock: it accepted the invalidations of whatever changed the table. */
	if (!direct_ready(rel, arbiter))
		return insert_through_sql(rel, tenant, subject, wrapped_new, key_id, wrapped);
	/* The key id first, as a column default is: locking the sequence may invalidate. */
	values[0] = Int64GetDatum(nextval_internal(seqid, false));
	for (;;)
	{
		uint64		gen;

		if (!direct_ready(rel, arbiter))
			return insert_through_sql(rel, tenant, subject, wrapped_new, key_id, wrapped);
		gen = ins_generation;
		for (int i = 0; i < ins_nidx; i++)
			idxrels[i] = index_open(ins_idx_oids[i], RowExclusiveLock);
		if (ins_state == 1 && ins_generation == gen)
			break;
		/* An invalidation came with an index's lock: learn the table again. */
		for (int i = 0; i < ins_nidx; i++)
			index_close(idxrels[i], NoLock);
	}
	estate = xact_estate(rel);
	slot = x_slot;
	ResetPerTupleExprContext(estate);
	MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));

	InitResultRelInfo(&rri, rel, 0, NULL, 0);
	rri.ri_NumIndices = ins_nidx;
	rri.ri_IndexRelationDescs = idxrels;
	rri.ri_IndexRelationInfo = ins_idx_info;
	rri.ri_onConflictArbiterIndexes = ins_arbiters;

	values[1] = tenant != NULL ? CStringGetTextDatum(tenant) : (Datum) 0;
	values[2] = CStringGetTextDatum(subject);
	values[3] = PointerGetDatum(wrapped_new);
	/* The other default: created_at is now(). */
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	fill_slot(slot, values, nulls);
	if (RelationGetDescr(rel)->constr != NULL)
		ExecConstraints(&rri, slot, estate);

	for (int attempt = 0;; attempt++)
	{
		ItemPointerData conflict;
		bool		spec_conflict = false;
		uint32		token;
		List	   *recheck;

		CHECK_FOR_INTERRUPTS();
		if (attempt >= SK_MAX_ATTEMPTS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create the data key of a data subject"),
					 errdetail("Concurrent transactions kept creating and removing it."),
					 errhint("Retry the transaction.")));
		if (precheck &&
			!ExecCheckIndexConstraints(&rri, slot, estate, &conflict, ins_arbiters))
		{
			/* A committed row (or one of this transaction) holds the subject. */
			if (fetch_conflict(rel, &conflict, tenant, subject, key_id, wrapped, caller))
			{
				inserted = false;
				break;
			}
			continue;
		}

		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(rel, slot, GetCurrentCommandId(true), 0, NULL, token);
		recheck = ExecInsertIndexTuples(&rri, slot, estate, false, true, &spec_conflict,
										ins_arbiters);
		table_tuple_complete_speculative(rel, slot, token, !spec_conflict);
		/* Waiters on the token now see the row confirmed (or gone). */
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		list_free(recheck);
		if (!spec_conflict)
		{
			*key_id = DatumGetInt64(values[0]);
			inserted = true;
			break;
		}
		/* Another row got there first, committed or not: look again, waiting for it. */
		precheck = true;
		fill_slot(slot, values, nulls);
	}

	ExecClearTuple(slot);
	for (int i = 0; i < ins_nidx; i++)
		index_close(idxrels[i], NoLock);
	table_close(rel, NoLock);
	MemoryContextSwitchTo(caller);
	return inserted;
}
