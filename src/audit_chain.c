/*
 * audit_chain.c
 *		The hash chain: seal_audit_log() links committed entries into blocks,
 *		and audit_digest() gives the newest block to keep outside the database.
 *		Retention is in audit_purge.c, verification in audit_verify.c.
 *
 * Every entry carries the SHA-256 of its canonical form (docs/audit.md, "Canonical
 * forms") from the moment it is inserted.  Chaining happens later, in seal_audit_log(),
 * so that concurrent writers never wait for one another: a block holds every entry whose
 * top-level transaction id lies in [txid_lo, txid_hi), where txid_hi is the oldest
 * transaction still running when the sealer looked, so no entry can ever appear behind a
 * sealed block.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "audit_actor.h"
#include "audit_canonical.h"
#include "audit_chain.h"
#include "audit_entry.h"
#include "audit_protect.h"
#include "audit_rel.h"
#include "crypto.h"

/* Largest block, in entries; one transaction's entries are never split. */
#define AUDIT_BLOCK_MAX 10000

/* --------------------------------------------------------------------------------------
 * Sealing
 * --------------------------------------------------------------------------------------
 */

typedef struct AuditSealState
{
	AuditBlock	b;
	CrmSha256Stream *ctx;		/* of the open block's entries_hash */
	uint8		last_hash[AUDIT_HASH_LEN];	/* hash of the previous block */
	int64		last_id;
	int64		sealed;
	int64		blocks;
} AuditSealState;

static void
audit_seal_open(AuditSealState *st, int64 txid_lo)
{
	memset(&st->b, 0, sizeof(st->b));
	st->b.block_id = st->last_id + 1;
	memcpy(st->b.prev_hash, st->last_hash, AUDIT_HASH_LEN);
	st->b.txid_lo = txid_lo;
	st->ctx = crm_sha256_begin();
}

static void
audit_seal_close(AuditSealState *st, int64 txid_hi)
{
	uint8		bhash[AUDIT_HASH_LEN];
	Datum		args[8];
	Oid			types[8] = {INT8OID, BYTEAOID, INT8OID, INT8OID, INT8OID, BYTEAOID,
	TIMESTAMPTZOID, BYTEAOID};

	crm_sha256_final(st->ctx, st->b.entries_hash);
	st->ctx = NULL;
	st->b.txid_hi = txid_hi;
	st->b.sealed_at = GetCurrentTimestamp();
	audit_block_hash(&st->b, bhash);

	args[0] = Int64GetDatum(st->b.block_id);
	args[1] = PointerGetDatum(audit_bytea(st->b.prev_hash, AUDIT_HASH_LEN));
	args[2] = Int64GetDatum(st->b.txid_lo);
	args[3] = Int64GetDatum(st->b.txid_hi);
	args[4] = Int64GetDatum(st->b.entry_count);
	args[5] = PointerGetDatum(audit_bytea(st->b.entries_hash, AUDIT_HASH_LEN));
	args[6] = TimestampTzGetDatum(st->b.sealed_at);
	args[7] = PointerGetDatum(audit_bytea(bhash, AUDIT_HASH_LEN));
	if (SPI_execute_with_args("INSERT INTO crm_security.audit_blocks (block_id, prev_hash, "
							  "txid_lo, txid_hi, entry_count, entries_hash, sealed_at, block_hash) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							  8, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert audit block");
	st->sealed += st->b.entry_count;
	st->blocks++;
	st->last_id = st->b.block_id;
	memcpy(st->last_hash, bhash, AUDIT_HASH_LEN);
}

void
audit_lock(void)
{
	DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum(AUDIT_LOCK_KEY));
}

/* The newest block: id, hash and txid_hi; id 0 and a zero hash when there is none. */
static void
audit_last_block(int64 *id, uint8 *hash, int64 *txid_hi)
{
	*id = 0;
	*txid_hi = 0;
	memset(hash, 0, AUDIT_HASH_LEN);
	if (SPI_execute("SELECT block_id, block_hash, txid_hi FROM crm_security.audit_blocks "
					"ORDER BY block_id DESC LIMIT 1", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read audit blocks");
	if (SPI_processed == 1)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bytea	   *h;

		*id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		h = DatumGetByteaPP(SPI_getbinval(tup, desc, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(h) == AUDIT_HASH_LEN)
			memcpy(hash, VARDATA_ANY(h), AUDIT_HASH_LEN);
		*txid_hi = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	}
}

/*
 * Summarize the page ranges of audit_log's BRIN index that are not yet: a range is
 * summarized when it is full (autosummarize) by autovacuum, whose next run may be a while
 * away, and until then every lookup by id or txid (audit_personal_data(), sealing,
 * verification) reads all the unsummarized pages.  Every seal_audit_log() call does it
 * (sealing reads those pages anyway), only when the lock is free at once: a VACUUM of
 * audit_log holds it, and does the same.
 */
static void
audit_summarize_ranges(void)
{
	Oid			log = audit_relids()->log;
	Oid			idx = get_relname_relid("audit_log_txid_id_brin", get_rel_namespace(log));

	if (!OidIsValid(idx) || !ConditionalLockRelationOid(log, ShareUpdateExclusiveLock))
		return;
	(void) DirectFunctionCall1(brin_summarize_new_values, ObjectIdGetDatum(idx));
}

/* SQL function: seal_audit_log() returns bigint */
PG_FUNCTION_INFO_V1(audit_seal);
Datum
audit_seal(PG_FUNCTION_ARGS)
{
	AuditSealState st;
	int64		lo;
	int64		horizon;
	bool		isnull;
	Portal		portal;
	Datum		args[2];
	Oid			types[2] = {INT8OID, INT8OID};
	int64		cur_txid = -1;
	bool		open = false;

	/*
	 * Under REPEATABLE READ the snapshot predates the advisory lock, so the newest block
	 * could be invisible and the chain would fork.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("audit log sealing requires the READ COMMITTED isolation level")));

	memset(&st, 0, sizeof(st));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_lock();
	/* Each query below runs with a new snapshot taken after the lock was granted. */
	audit_last_block(&st.last_id, st.last_hash, &lo);

	/*
	 * Every transaction older than the oldest one still running has ended, and what it
	 * committed is visible to any later snapshot: its entries can be sealed, and no new
	 * entry can ever appear below this horizon.
	 */
	if (SPI_execute("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the transaction horizon");
	horizon = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (horizon <= lo)
	{
		SPI_finish();
		audit_summarize_ranges();
		PG_RETURN_INT64(0);
	}

	args[0] = Int64GetDatum(lo);
	args[1] = Int64GetDatum(horizon);
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT txid, entry_hash FROM crm_security.audit_log "
									   "WHERE txid OPERATOR(pg_catalog.>=) $1 AND txid OPERATOR(pg_catalog.<) $2 "
									   "ORDER BY txid, id",
									   2, types, args, NULL, false, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;

		/* audit_seal_close() runs queries: keep this batch in locals. */
		SPI_cursor_fetch(portal, true, AUDIT_FETCH);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			int64		txid = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			bytea	   *h = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));

			if (!open)
			{
				audit_seal_open(&st, lo);
				open = true;
			}
			else if (st.b.entry_count >= AUDIT_BLOCK_MAX && txid != cur_txid)
			{
				audit_seal_close(&st, txid);
				audit_seal_open(&st, txid);
			}
			crm_sha256_update(st.ctx, VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h));
			st.b.entry_count++;
			cur_txid = txid;
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	if (open)
		audit_seal_close(&st, horizon);
	SPI_finish();
	audit_summarize_ranges();
	PG_RETURN_INT64(st.sealed);
}

/* SQL function: audit_digest() returns jsonb */
PG_FUNCTION_INFO_V1(audit_digest);
Datum
audit_digest(PG_FUNCTION_ARGS)
{
	Datum		result;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT COALESCE((SELECT pg_catalog.jsonb_build_object("
					"'block_id', block_id, 'block_hash', pg_catalog.encode(block_hash, 'hex'), "
					"'txid_hi', txid_hi, 'sealed_at', sealed_at) "
					"FROM crm_security.audit_blocks ORDER BY block_id DESC LIMIT 1), "
					"pg_catalog.jsonb_build_object('block_id', 0, 'block_hash', pg_catalog.repeat('0', 64)))",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read audit blocks");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
