/*
 * audit_write.c
 *		Writing audit entries into audit_log: batched per statement.
 *
 * A statement that changes many audited rows produces one entry per row.  Writing them
 * one heap_insert() at a time costs a buffer lookup, a page lock and a WAL record per
 * entry; the entries of a statement are instead collected as formed tuples and written
 * together with heap_multi_insert() (one WAL record and one page lock per page), then
 * their index entries are added.  This is what COPY does for its rows.
 *
 * Collected entries must behave as if they had been inserted one by one:
 *
 *	- They are written before anything can look for them: after the statement that
 *	  produced them (ExecutorFinish, utility statements), before any other query starts
 *	  (a query run by a later trigger of the same statement sees them), before a utility
 *	  statement (which might alter audit_log), and at commit or prepare at the latest.
 *	- Each keeps the command id it was produced under, so that its visibility is what a
 *	  direct insert would have had; entries of different command ids are never in one
 *	  batch.
 *	- They belong to the subtransaction that produced them: an abort of it discards them,
 *	  and they are written before it commits.  They can only be written while that
 *	  subtransaction is the current one (heap tuples take the current transaction id);
 *	  an entry produced in a subtransaction opened while entries of its parent wait is
 *	  written directly, and the parent's entries when control returns to it.
 *
 * audit_log is written through heap access directly (the fast path) when it is a plain
 * heap table with plain column indexes and no insert triggers or rules.  Otherwise
 * (partitioned by pg_partman, an expression index added, ...) each entry is inserted
 * through a prepared SPI plan, as the table's owner, without batching.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/brin.h"
#include "access/brin_revmap.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "audit_layout.h"
#include "audit_protect.h"
#include "audit_write.h"

/* Entries written together at most; and the tuple bytes after which a batch is written. */
#define AUDIT_BATCH_MAX 1000
#define AUDIT_BATCH_BYTES (1024 * 1024)

/*
 * Entries always go to the end of audit_log, never into free space found through the
 * free space map: the table's physical order stays the order of writing, which keeps
 * the BRIN index on (txid, id) selective for sealing and lookups, and a write never
 * reads an old page back.  Space freed by purge_audit_log() is therefore not reused
 * (see docs/audit.md, "Retention").
 */
#define AUDIT_INSERT_OPTIONS HEAP_INSERT_SKIP_FSM

/* Indexes of audit_log the fast path maintains at most. */
#define AUDIT_MAX_INDEXES 16

/*
 * What the fast path knows about audit_log, found once per relcache state: whether it
 * applies, and the indexes with their IndexInfo (and the access method's cache in it,
 * e.g. BRIN's descriptor).
 */
static Oid	write_relid = InvalidOid;	/* the audit_log these describe */
static int	write_fast_path = -1;	/* -1 unknown, 0 no, 1 yes */
static bool write_idx_valid = false;
static int	write_nidx = 0;
static Oid	write_idx_oids[AUDIT_MAX_INDEXES];
static IndexInfo *write_idx_info[AUDIT_MAX_INDEXES];
static BlockNumber write_idx_brin_range[AUDIT_MAX_INDEXES];	/* see audit_brin_minmax() */
static MemoryContext write_idx_cxt = NULL;
static SPIPlanPtr write_spi_plan = NULL;
static bool write_spi_plan_stale = false;	/* freed at its next use when not in use */
static int	write_spi_depth = 0;	/* write_spi_plan executions under way */
/* Counts invalidations, so that a check that processed one while running is redone. */
static uint64 write_inval_count = 0;
/* Whether the collected entries' descriptor is audit_log's, as of the last check. */
static bool write_desc_same = false;

/* Entries formed but not yet written. */
typedef struct AuditPending
{
	int			n;
	Size		bytes;
	Oid			relid;
	SubTransactionId subxid;	/* the subtransaction that produced them */
	CommandId	cid;			/* the command they were produced under */
	TupleDesc	desc;			/* the descriptor they were formed with */
	HeapTuple	tuples[AUDIT_BATCH_MAX];
	TupleTableSlot *slots[AUDIT_BATCH_MAX]; /* for heap_multi_insert, made on first use */
	MemoryContext cxt;			/* the tuples */
} AuditPending;

static AuditPending *pending = NULL;
static bool pending_writing = false;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* --------------------------------------------------------------------------------------
 * The fast path's view of audit_log
 * --------------------------------------------------------------------------------------
 */

void
audit_write_invalidate(Oid relid)
{
	if (relid == InvalidOid || relid == write_relid)
	{
		write_fast_path = -1;
		write_desc_same = false;
		write_idx_valid = false;
		/* Freeing the plan here is unsafe: it is freed at its next use. */
		write_spi_plan_stale = true;
		write_inval_count++;
	}
	for (int i = 0; i < write_nidx; i++)
		if (relid == write_idx_oids[i])
		{
			write_idx_valid = false;
			write_inval_count++;
		}
}

/* Whether audit_log can take entries by heap access: checked once per relcache state. */
static bool
audit_check_fast_path(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *indexes;
	ListCell   *lc;
	bool		ok = true;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relhasrules)
		return false;
	/* No insert trigger but the extension's guard, which the writer's entries pass. */
	if (rel->trigdesc != NULL)
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
			if (TRIGGER_FOR_INSERT(rel->trigdesc->triggers[i].tgtype) &&
				!audit_protect_is_guard(rel, &rel->trigdesc->triggers[i]))
				return false;
	/* The columns and constraints heap access relies on. */
	if (!audit_layout_matches(desc))
		return false;
	indexes = RelationGetIndexList(rel);
	if (list_length(indexes) > AUDIT_MAX_INDEXES)
		ok = false;
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) ||
			!idx->rd_index->indimmediate || !idx->rd_index->indisready ||
			idx->rd_index->indisexclusion)
			ok = false;
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return ok;
}

/* Whether tuples formed with descriptor a are laid out as descriptor b would form them. */
static bool
audit_same_layout(TupleDesc a, TupleDesc b)
{
	if (a->natts != b->natts)
		return false;
	for (int i = 0; i < a->natts; i++)
	{
		Form_pg_attribute x = TupleDescAttr(a, i);
		Form_pg_attribute y = TupleDescAttr(b, i);

		if (x->atttypid != y->atttypid || x->attlen != y->attlen ||
			x->attbyval != y->attbyval || x->attalign != y->attalign ||
			x->attstorage != y->attstorage || x->attisdropped != y->attisdropped)
			return false;
	}
	return true;
}

static bool
audit_fast_path(Relation rel)
{
	if (RelationGetRelid(rel) != write_relid)
	{
		audit_write_invalidate(InvalidOid);
		write_relid = RelationGetRelid(rel);
	}
	while (write_fast_path < 0)
	{
		uint64		count = write_inval_count;
		bool		ok = audit_check_fast_path(rel);

		/* The check opens indexes, which may process an invalidation: then redo it. */
		if (count != write_inval_count)
			continue;
		write_fast_path = ok ? 1 : 0;
		write_desc_same = pending != NULL &&
			audit_same_layout(pending->desc, RelationGetDescr(rel));
	}
	return write_fast_path == 1;
}

/*
 * For a BRIN index whose columns are all 64-bit integers or timestamps under a minmax
 * operator class (the (txid, id) index of audit_log), the pages per range; else 0.
 *
 * A minmax summary is the smallest and largest value of each column, so adding a set
 * of tuples of one range to it gives the same summary as adding only a tuple made of the
 * columns' minimums and one of their maximums: for such an index a batch costs two
 * insertions per page range instead of one per entry.
 */
static BlockNumber
audit_brin_minmax(Relation rel, Relation idx)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (idx->rd_rel->relam != BRIN_AM_OID)
		return 0;
	for (int k = 0; k < idx->rd_index->indnkeyatts; k++)
	{
		AttrNumber	att = idx->rd_index->indkey.values[k];
		HeapTuple	tup;
		bool		minmax;
		Oid			typid;

		if (att <= 0 || att > desc->natts)
			return 0;
		typid = TupleDescAttr(desc, att - 1)->atttypid;
		if (typid != INT8OID && typid != TIMESTAMPTZOID)
			return 0;
		tup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(idx->rd_opfamily[k]));
		if (!HeapTupleIsValid(tup))
			return 0;
		{
			Form_pg_opfamily opf = (Form_pg_opfamily) GETSTRUCT(tup);

			minmax = opf->opfmethod == BRIN_AM_OID &&
				opf->opfnamespace == PG_CATALOG_NAMESPACE &&
				strcmp(NameStr(opf->opfname),
					   typid == INT8OID ? "integer_minmax_ops" : "datetime_minmax_ops") == 0;
		}
		ReleaseSysCache(tup);
		if (!minmax)
			return 0;
	}
	/*
	 * The pages per range brininsert() uses: the metapage's, not the reloption, which
	 * ALTER INDEX can change without a REINDEX.  The metapage changes only with a new
	 * relfilenode, which invalidates this.
	 */
	{
		BlockNumber ppr;
		BrinRevmap *revmap = brinRevmapInitialize(idx, &ppr, NULL);

		brinRevmapTerminate(revmap);
		return ppr;
	}
}

static void
audit_load_indexes(Relation rel)
{
	List	   *indexes;
	ListCell   *lc;
	MemoryContext old;

	uint64		count = write_inval_count;

	/* Valid only once complete: an error or an invalidation on the way leaves it to redo. */
	write_idx_valid = false;
	if (write_idx_cxt != NULL)
		MemoryContextDelete(write_idx_cxt);
	write_idx_cxt = AllocSetContextCreate(CacheMemoryContext, "crm_security audit_log indexes",
										  ALLOCSET_SMALL_SIZES);
	write_nidx = 0;
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);

		if (write_nidx >= AUDIT_MAX_INDEXES)
			elog(ERROR, "too many indexes on audit_log");
		/* IndexInfo and whatever the access method caches in it live in our context. */
		old = MemoryContextSwitchTo(write_idx_cxt);
		write_idx_info[write_nidx] = BuildIndexInfo(idx);
		MemoryContextSwitchTo(old);
		write_idx_brin_range[write_nidx] = audit_brin_minmax(rel, idx);
		write_idx_oids[write_nidx] = lfirst_oid(lc);
		write_nidx++;
		index_close(idx, NoLock);
	}
	list_free(indexes);
	write_idx_valid = (count == write_inval_count);
}

/* Index entries for tuples just written (plain column indexes only: see the fast path). */
static void
audit_index_tuples(Relation rel, HeapTuple *tuples, ItemPointer *tids, int n)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (!write_idx_valid)
		audit_load_indexes(rel);
	for (int i = 0; i < write_nidx; i++)
	{
		Relation	idx = index_open(write_idx_oids[i], RowExclusiveLock);
		IndexInfo  *ii = write_idx_info[i];
		IndexUniqueCheck check = idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO;

		for (int j = 0; j < n;)
		{
			Datum		ivalues[INDEX_MAX_KEYS];
			bool		inulls[INDEX_MAX_KEYS];
			Datum		maxvalues[INDEX_MAX_KEYS];
			bool		anynull = false;
			int			end = j + 1;

			for (int k = 0; k < ii->ii_NumIndexAttrs; k++)
			{
				AttrNumber	att = ii->ii_IndexAttrNumbers[k];

				if (att <= 0 || att > desc->natts)
					elog(ERROR, "unexpected index column on audit_log");
				ivalues[k] = maxvalues[k] = heap_getattr(tuples[j], att, desc, &inulls[k]);
				anynull |= inulls[k];
			}
			if (write_idx_brin_range[i] > 0 && !anynull)
			{
				BlockNumber range = ItemPointerGetBlockNumber(tids[j]) / write_idx_brin_range[i];

				/* The run of tuples in the same page range: its minimums and maximums. */
				for (; end < n; end++)
				{
					Datum		d[INDEX_MAX_KEYS];
					bool		isnull = false;

					if (ItemPointerGetBlockNumber(tids[end]) / write_idx_brin_range[i] != range)
						break;
					for (int k = 0; k < ii->ii_NumIndexAttrs && !isnull; k++)
						d[k] = heap_getattr(tuples[end], ii->ii_IndexAttrNumbers[k], desc, &isnull);
					if (isnull)
						break;		/* it starts the next run, inserted by itself */
					for (int k = 0; k < ii->ii_NumIndexAttrs; k++)
					{
						if (DatumGetInt64(d[k]) < DatumGetInt64(ivalues[k]))
							ivalues[k] = d[k];
						if (DatumGetInt64(d[k]) > DatumGetInt64(maxvalues[k]))
							maxvalues[k] = d[k];
					}
				}
			}
			index_insert(idx, ivalues, inulls, tids[j], rel, check, false, ii);
			if (end > j + 1)
				index_insert(idx, maxvalues, inulls, tids[end - 1], rel, check, false, ii);
			j = end;
		}
		/* Keep the lock to the end of the transaction, as the executor does. */
		index_close(idx, NoLock);
	}
}

/* One formed entry, by heap access (cheaper than heap_multi_insert() for one tuple). */
static void
audit_insert_tuple(Relation rel, HeapTuple tup, CommandId cid)
{
	ItemPointer tid = &tup->t_self;

	heap_insert(rel, tup, cid, AUDIT_INSERT_OPTIONS, NULL);
	audit_index_tuples(rel, &tup, &tid, 1);
}

/* One entry, now, by heap access. */
static void
audit_insert_heap(Relation rel, Datum *values, bool *nulls)
{
	HeapTuple	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);

	audit_insert_tuple(rel, tup, GetCurrentCommandId(true));
	heap_freetuple(tup);
}

/* One entry, now, through SQL, as the owner of audit_log. */
static void
audit_insert_spi(Relation rel, Datum *values, bool *nulls)
{
	char		spinulls[AL_NATTS];
	Oid			save_userid;
	int			save_sec;
	Oid			owner = rel->rd_rel->relowner;

	for (int i = 0; i < AL_NATTS; i++)
		spinulls[i] = nulls[i] ? 'n' : ' ';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (write_spi_plan != NULL && write_spi_plan_stale && write_spi_depth == 0)
	{
		SPI_freeplan(write_spi_plan);
		write_spi_plan = NULL;
	}
	if (write_spi_plan == NULL)
	{
		StringInfoData q;
		SPIPlanPtr	plan;

		initStringInfo(&q);
		appendStringInfo(&q, "INSERT INTO crm_security.audit_log (%s) VALUES (",
						 audit_layout_column_list());
		for (int i = 0; i < AL_NATTS; i++)
			appendStringInfo(&q, "%s$%d", i ? ", " : "", i + 1);
		appendStringInfoChar(&q, ')');
		plan = SPI_prepare(q.data, AL_NATTS, (Oid *) audit_coltypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		write_spi_plan = plan;
		write_spi_plan_stale = false;
	}

	/* The writer has no INSERT privilege on audit_log: the insert runs as its owner. */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	write_spi_depth++;
	PG_TRY();
	{
		if (SPI_execute_plan(write_spi_plan, values, spinulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert audit entry");
	}
	PG_FINALLY();
	{
		write_spi_depth--;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	SPI_finish();
}

/* --------------------------------------------------------------------------------------
 * Batches
 * --------------------------------------------------------------------------------------
 */

static void
audit_pending_create(Relation rel)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	pending = palloc0(sizeof(AuditPending));
	pending->cxt = AllocSetContextCreate(TopMemoryContext, "crm_security audit entries",
										 ALLOCSET_DEFAULT_SIZES);
	pending->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	MemoryContextSwitchTo(old);
	write_desc_same = true;
}

/* Forget the collected entries (their subtransaction aborted). */
static void
audit_write_discard(void)
{
	if (pending == NULL || pending->n == 0)
		return;
	for (int i = 0; i < pending->n; i++)
		ExecClearTuple(pending->slots[i]);
	pending->n = 0;
	pending->bytes = 0;
	MemoryContextReset(pending->cxt);
}

/* Whether the collected entries can be written now. */
static bool
audit_pending_writable(void)
{
	return pending != NULL && pending->n > 0 && !pending_writing &&
		pending->subxid == GetCurrentSubTransactionId() && !IsInParallelMode();
}

/* Write the collected entries. */
static void
audit_write_pending(void)
{
	Relation	rel;
	int			n = pending->n;
	ItemPointer tids[AUDIT_BATCH_MAX];

	/* What runs below must not write them a second time (SPI starts the executor). */
	pending_writing = true;
	rel = table_open(pending->relid, RowExclusiveLock);
	if (audit_fast_path(rel) && write_desc_same)
	{
		if (n == 1)
			audit_insert_tuple(rel, pending->tuples[0], pending->cid);	/* a single-row statement */
		else
		{
			heap_multi_insert(rel, pending->slots, n, pending->cid, AUDIT_INSERT_OPTIONS, NULL);
			for (int i = 0; i < n; i++)
				tids[i] = &pending->slots[i]->tts_tid;
			audit_index_tuples(rel, pending->tuples, tids, n);
		}
	}
	else
	{
		/*
		 * audit_log changed under the collected entries (a utility statement run where
		 * they could not be written first): insert them one by one through SQL.
		 */
		Datum		values[AL_NATTS];
		bool		nulls[AL_NATTS];

		if (pending->desc->natts != AL_NATTS)
			elog(ERROR, "audit_log changed while audit entries were pending");
		for (int i = 0; i < n; i++)
		{
			heap_deform_tuple(pending->tuples[i], pending->desc, values, nulls);
			audit_insert_spi(rel, values, nulls);
		}
	}
	table_close(rel, NoLock);
	pending_writing = false;
	audit_write_discard();
}

/*
 * Write the entries collected in the current subtransaction, if any.  Called by the
 * hooks and callbacks below (a query reading audit_log finds them written by the
 * ExecutorStart hook) and before an entry goes through SQL.
 */
static void
audit_write_flush(void)
{
	if (audit_pending_writable())
		audit_write_pending();
}

/* Form the entry into the batch; write the batch when full, or at once without batch. */
static void
audit_pending_add(Datum *values, bool *nulls, bool batch)
{
	MemoryContext old = MemoryContextSwitchTo(pending->cxt);
	HeapTuple	tup = heap_form_tuple(pending->desc, values, nulls);

	MemoryContextSwitchTo(old);
	/*
	 * Slots are made as batches first need them (a backend writing single rows keeps one)
	 * and kept.  Heap tuple slots only carry the tuples: their descriptor is never used.
	 */
	if (pending->slots[pending->n] == NULL)
	{
		old = MemoryContextSwitchTo(TopMemoryContext);
		pending->slots[pending->n] = MakeSingleTupleTableSlot(pending->desc, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(old);
	}
	/* The slot owns the tuple, so that heap_multi_insert() does not copy it again. */
	ExecStoreHeapTuple(tup, pending->slots[pending->n], true);
	pending->tuples[pending->n] = tup;
	pending->n++;
	pending->bytes += tup->t_len;
	if (!batch || pending->n >= AUDIT_BATCH_MAX || pending->bytes >= AUDIT_BATCH_BYTES)
		audit_write_pending();
}

/*
 * Write one entry.  rel is audit_log, opened by the caller; values and nulls are its
 * columns.  With batch, the entry may wait for the end of its statement (see the top of
 * the file); without, it is written before this returns, after the entries waiting
 * before it.
 */
void
audit_write_entry(Relation rel, Datum *values, bool *nulls, bool batch)
{
	SubTransactionId subxid = GetCurrentSubTransactionId();
	CommandId	cid;

	if (!audit_fast_path(rel))
	{
		audit_write_flush();
		audit_insert_spi(rel, values, nulls);
		return;
	}
	cid = GetCurrentCommandId(true);
	if (pending != NULL && (pending_writing ||
							(pending->n > 0 && (pending->subxid != subxid ||
												pending->relid != RelationGetRelid(rel)))))
	{
		/*
		 * Entries of an enclosing subtransaction are waiting, or the batch is being
		 * written (user code run by index insertion): this one cannot join them.
		 */
		audit_insert_heap(rel, values, nulls);
		return;
	}
	if (pending != NULL && pending->n > 0 && (pending->cid != cid || !write_desc_same))
		audit_write_pending();
	if (pending == NULL)
		audit_pending_create(rel);
	else if (!write_desc_same)
	{
		MemoryContext dold;

		/* audit_log's columns changed (the batch is empty): new slots, new descriptor. */
		for (int i = 0; i < AUDIT_BATCH_MAX; i++)
			if (pending->slots[i] != NULL)
			{
				ExecDropSingleTupleTableSlot(pending->slots[i]);
				pending->slots[i] = NULL;
			}
		FreeTupleDesc(pending->desc);
		dold = MemoryContextSwitchTo(TopMemoryContext);
		pending->desc = CreateTupleDescCopy(RelationGetDescr(rel));
		MemoryContextSwitchTo(dold);
		write_desc_same = true;
	}

	pending->relid = RelationGetRelid(rel);
	pending->subxid = subxid;
	pending->cid = cid;
	audit_pending_add(values, nulls, batch);
}

/*
 * Add an entry to the batch of the current subtransaction, if there is one it can join
 * (same audit_log, same command, nothing changed since): the common case of a statement's
 * second and later entries, which needs no access to audit_log at all (the first entry's
 * writer holds the lock).  Returns false when the entry must go through
 * audit_write_entry() instead.
 */
bool
audit_write_append(Oid relid, Datum *values, bool *nulls)
{
	if (pending == NULL || pending->n == 0 || pending_writing ||
		pending->relid != relid || write_relid != relid ||
		write_fast_path != 1 || !write_desc_same ||
		pending->subxid != GetCurrentSubTransactionId() ||
		pending->cid != GetCurrentCommandId(false))
		return false;
	/* As audit_write_entry() does: the command has written. */
	(void) GetCurrentCommandId(true);
	audit_pending_add(values, nulls, true);
	return true;
}

/* --------------------------------------------------------------------------------------
 * When collected entries are written or discarded
 * --------------------------------------------------------------------------------------
 */

static void
audit_executor_start(QueryDesc *queryDesc, int eflags)
{
	audit_write_flush();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
audit_executor_finish(QueryDesc *queryDesc)
{
	if (prev_executor_finish)
		prev_executor_finish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	audit_write_flush();
}

static void
audit_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	audit_write_flush();
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
							 dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								dest, qc);
	/* COPY FROM and TRUNCATE fire triggers outside the executor. */
	audit_write_flush();
}

static void
audit_write_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			audit_write_flush();
			/* Never commit without them: refusing the commit is the only safe way. */
			if (pending != NULL && pending->n > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("audit entries of this transaction could not be written")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_writing = false;
			audit_write_discard();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			/* Only possible if something formed entries after PRE_COMMIT: too late. */
			if (pending != NULL && pending->n > 0)
			{
				elog(WARNING, "%d audit entries formed after the commit began were not written",
					 pending->n);
				audit_write_discard();
			}
			break;
		default:
			break;
	}
}

static void
audit_write_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	if (pending == NULL || pending->n == 0 || pending->subxid != mySubid)
		return;
	if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
		audit_write_flush();
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* Not written before the commit (it could not be): now the parent's entries. */
		pending->subxid = parentSubid;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* Also after an error while writing them: they are written only in mySubid. */
		pending_writing = false;
		audit_write_discard();
	}
}

void
audit_write_install_hooks(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = audit_executor_finish;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_process_utility;
	RegisterXactCallback(audit_write_xact_callback, NULL);
	RegisterSubXactCallback(audit_write_subxact_callback, NULL);
}
