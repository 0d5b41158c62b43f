/*
 * audit_purge.c
 *		Retention: purge_audit_log() deletes the entries of old sealed blocks and records
 *		the purge in the chain itself, as an audit.purge entry that is hashed under the
 *		entry key and sealed into a later block like any entry.  Verification
 *		(audit_verify.c) accepts missing entries only in the blocks such a record covers.
 *
 * A purge record's metadata:
 *	 {"first_block": F, "purged_through_block": N, "cutoff_us": C, "entries_deleted": D,
 *	  "last_block_hash": "<hex of block N's hash>"}
 * with C the cutoff in microseconds since 1970-01-01 00:00:00 UTC.  Records are
 * cumulative: N is the last block whose entries are gone, whatever purge deleted them, so
 * the newest record alone says how far the log is purged even after a later purge has
 * deleted the blocks that held the earlier records.  The table audit_purges lists the
 * purges for convenience; nothing trusts it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include <openssl/crypto.h>

#include "audit_actor.h"
#include "audit_chain.h"
#include "audit_entry.h"
#include "audit_layout.h"
#include "audit_protect.h"

#define AUDIT_PURGE_ACTION "audit.purge"
#define AUDIT_PURGE_RESOURCE "audit_log"

/* An integer member of a jsonb object; false when absent or not an integer. */
static bool
audit_json_int8(Jsonb *obj, const char *key, int64 *out)
{
	JsonbValue	v;
	JsonbValue *jv = getKeyJsonValueFromContainer(&obj->root, key, strlen(key), &v);
	char	   *s;
	char	   *end;

	if (jv == NULL || jv->type != jbvNumeric)
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(jv->val.numeric)));
	errno = 0;
	*out = strtoi64(s, &end, 10);
	return s[0] != '\0' && *end == '\0' && errno == 0;
}

/* Parse and check one audit.purge entry (values in audit_log's layout); NULL if not one. */
static AuditPurgeRecord *
audit_purge_parse(Datum *values, bool *nulls)
{
	AuditPurgeRecord *r;
	Jsonb	   *md;
	bytea	   *stored;
	uint8		hash[AUDIT_HASH_LEN];
	JsonbValue	v;
	JsonbValue *h;
	int64		cutoff;

	if (nulls[AL_RESOURCE_TYPE] || nulls[AL_METADATA] || nulls[AL_ENTRY_HASH] ||
		strcmp(TextDatumGetCString(values[AL_RESOURCE_TYPE]), AUDIT_PURGE_RESOURCE) != 0)
		return NULL;
	/* Only the extension writes audit.* events, under the entry key. */
	stored = DatumGetByteaPP(values[AL_ENTRY_HASH]);
	audit_entry_hash(values, nulls, NULL, NULL, NULL, 0, hash);
	if (VARSIZE_ANY_EXHDR(stored) != AUDIT_HASH_LEN ||
		CRYPTO_memcmp(VARDATA_ANY(stored), hash, AUDIT_HASH_LEN) != 0)
		return NULL;
	md = DatumGetJsonbP(values[AL_METADATA]);
	if (!JB_ROOT_IS_OBJECT(md) || JB_ROOT_IS_SCALAR(md))
		return NULL;
	r = palloc0(sizeof(AuditPurgeRecord));
	r->entry_id = DatumGetInt64(values[AL_ID]);
	r->txid = DatumGetInt64(values[AL_TXID]);
	if (!audit_json_int8(md, "first_block", &r->first) ||
		!audit_json_int8(md, "purged_through_block", &r->through) ||
		!audit_json_int8(md, "cutoff_us", &cutoff) ||
		!audit_json_int8(md, "entries_deleted", &r->entries) ||
		r->first < 1 || r->through < r->first || r->entries < 0)
		return NULL;
	h = getKeyJsonValueFromContainer(&md->root, "last_block_hash", 15, &v);
	if (h == NULL || h->type != jbvString || h->val.string.len != AUDIT_HASH_LEN * 2 ||
		strspn(pnstrdup(h->val.string.val, h->val.string.len), "0123456789abcdef") != AUDIT_HASH_LEN * 2)
		return NULL;
	hex_decode(h->val.string.val, AUDIT_HASH_LEN * 2, (char *) r->last_hash);
	/* Unix microseconds to PostgreSQL's epoch. */
	r->cutoff = cutoff - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	return r;
}

List *
audit_purge_records(bool read_only)
{
	List	   *records = NIL;
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT %s FROM crm_security.audit_log "
												"WHERE kind OPERATOR(pg_catalog.=) 'event' "
												"AND operation OPERATOR(pg_catalog.=) '" AUDIT_PURGE_ACTION "' "
												"ORDER BY txid, id", audit_layout_column_list()),
									   0, NULL, NULL, NULL, read_only, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, AUDIT_FETCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		values[AL_NATTS];
			bool		nulls[AL_NATTS];
			AuditPurgeRecord *r;

			/* In the SPI procedure's memory (the caller's current context): kept until SPI_finish(). */
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
			r = audit_purge_parse(values, nulls);
			if (r != NULL)
				records = lappend(records, r);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	return records;
}

int64
audit_purged_through(List *records)
{
	int64		through = 0;
	ListCell   *lc;

	foreach(lc, records)
		through = Max(through, ((AuditPurgeRecord *) lfirst(lc))->through);
	return through;
}

/* SQL function: purge_audit_log(older_than interval) returns bigint */
PG_FUNCTION_INFO_V1(audit_purge);
Datum
audit_purge(PG_FUNCTION_ARGS)
{
	Interval   *older_than = PG_GETARG_INTERVAL_P(0);
	Interval	zero;
	TimestampTz cutoff;
	int64		prev;
	int64		through = 0;
	int64		txid_hi = 0;
	char		last_hex[AUDIT_HASH_LEN * 2 + 1];
	int64		deleted;
	bool		isnull;
	Datum		args[4];
	Oid			types[4];
	char	   *md;

	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(older_than),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention interval cannot be negative")));
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													 IntervalPGetDatum(older_than)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_lock();
	prev = audit_purged_through(audit_purge_records(false));

	/*
	 * The blocks after the last purge, oldest first, as long as they were sealed before
	 * the cutoff and hold no entry written at or after it (an entry is always written
	 * before the block that seals it, so the second test only matters if the clock went
	 * back).
	 */
	args[0] = Int64GetDatum(prev);
	args[1] = TimestampTzGetDatum(cutoff);
	types[0] = INT8OID;
	types[1] = TIMESTAMPTZOID;
	if (SPI_execute_with_args("SELECT b.block_id, b.txid_lo, b.txid_hi, pg_catalog.encode(b.block_hash, 'hex') "
							  "FROM crm_security.audit_blocks b "
							  "WHERE b.block_id OPERATOR(pg_catalog.>) $1 ORDER BY b.block_id",
							  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read audit blocks");
	{
		SPITupleTable *tt = SPI_tuptable;
		uint64		n = SPI_processed;
		int64		expect = prev + 1;

		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			int64		id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			int64		lo = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
			int64		hi = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
			char	   *hex = SPI_getvalue(tup, tt->tupdesc, 4);
			Datum		bargs[3];
			Oid			btypes[3] = {INT8OID, TIMESTAMPTZOID, INT8OID};

			if (id != expect || hex == NULL || strlen(hex) != AUDIT_HASH_LEN * 2)
				break;
			bargs[0] = Int64GetDatum(id);
			bargs[1] = TimestampTzGetDatum(cutoff);
			bargs[2] = Int64GetDatum(lo);
			if (SPI_execute_with_args("SELECT (SELECT sealed_at OPERATOR(pg_catalog.<) $2 FROM crm_security.audit_blocks "
									  "WHERE block_id OPERATOR(pg_catalog.=) $1) AND NOT EXISTS "
									  "(SELECT FROM crm_security.audit_log l, crm_security.audit_blocks b "
									  "WHERE b.block_id OPERATOR(pg_catalog.=) $1 AND l.txid OPERATOR(pg_catalog.>=) $3 "
									  "AND l.txid OPERATOR(pg_catalog.<) b.txid_hi AND l.logged_at OPERATOR(pg_catalog.>=) $2)",
									  3, btypes, bargs, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "could not read audit blocks");
			if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) || isnull)
				break;
			through = id;
			txid_hi = hi;
			strlcpy(last_hex, hex, sizeof(last_hex));
			expect = id + 1;
		}
	}
	if (through == 0)
	{
		SPI_finish();
		PG_RETURN_INT64(0);
	}
	deleted = (int64) audit_protect_purge_entries(txid_hi);

	/* The convenience list; verification reads the purge record below instead. */
	args[0] = Int64GetDatum(through);
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[2] = Int64GetDatum(deleted);
	args[3] = CStringGetTextDatum(audit_user_name(GetSessionUserId()));
	types[0] = INT8OID;
	types[1] = TIMESTAMPTZOID;
	types[2] = INT8OID;
	types[3] = TEXTOID;
	if (SPI_execute_with_args("INSERT INTO crm_security.audit_purges (purged_through_block, "
							  "purged_at, entries_deleted, purged_by) VALUES ($1, $2, $3, $4)",
							  4, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the purge");
	SPI_finish();

	md = psprintf("{\"first_block\": " INT64_FORMAT ", \"purged_through_block\": " INT64_FORMAT
				  ", \"cutoff_us\": " INT64_FORMAT ", \"entries_deleted\": " INT64_FORMAT
				  ", \"last_block_hash\": \"%s\"}",
				  prev + 1, through,
				  (int64) (cutoff + ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)),
				  deleted, last_hex);
	audit_internal_event(AUDIT_PURGE_ACTION, AUDIT_PURGE_RESOURCE, NULL,
						 DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(md))));
	PG_RETURN_INT64(deleted);
}
