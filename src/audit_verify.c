/*
 * audit_verify.c
 *		verify_audit_log() and audit_log_problems(): recompute every entry's keyed hash,
 *		every block hash and link of the chain, check the purge records, and with a digest
 *		kept outside the database, prove that the chain still reaches it.  Verification
 *		goes on after a problem: verify_audit_log() reports the first and counts them all,
 *		audit_log_problems() lists them all.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/tuplestore.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "audit_canonical.h"
#include "audit_chain.h"
#include "audit_layout.h"
#include "crypto.h"

/* A cursor over audit entries with one entry of lookahead. */
typedef struct AuditEntryCursor
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		pos;
	bool		done;
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
} AuditEntryCursor;

static bool
audit_cursor_next(AuditEntryCursor *c)
{
	if (c->done)
		return false;
	if (c->tt == NULL || c->pos >= c->n)
	{
		if (c->tt != NULL)
			SPI_freetuptable(c->tt);
		SPI_cursor_fetch(c->portal, true, AUDIT_FETCH);
		c->tt = SPI_tuptable;
		c->n = SPI_processed;
		c->pos = 0;
		if (c->n == 0)
		{
			c->done = true;
			return false;
		}
	}
	heap_deform_tuple(c->tt->vals[c->pos], c->tt->tupdesc, c->values, c->nulls);
	c->pos++;
	return true;
}

/*
 * Whether the stored entry_hash is the keyed hash of the entry's canonical form.  hash
 * receives what the sealer chained: the stored hash, or the recomputed one when the stored
 * one is not a hash at all.
 */
static bool
audit_entry_ok(AuditEntryCursor *c, uint8 *hash)
{
	bytea	   *stored;
	bool		ok;

	audit_entry_hash(c->values, c->nulls, NULL, NULL, NULL, 0, hash);
	if (c->nulls[AL_ENTRY_HASH])
		return false;
	stored = DatumGetByteaPP(c->values[AL_ENTRY_HASH]);
	if (VARSIZE_ANY_EXHDR(stored) != AUDIT_HASH_LEN)
		return false;
	ok = CRYPTO_memcmp(VARDATA_ANY(stored), hash, AUDIT_HASH_LEN) == 0;
	memcpy(hash, VARDATA_ANY(stored), AUDIT_HASH_LEN);
	return ok;
}

static bool
audit_bytea_eq(Datum d, const uint8 *h)
{
	bytea	   *b = DatumGetByteaPP(d);

	return VARSIZE_ANY_EXHDR(b) == AUDIT_HASH_LEN && memcmp(VARDATA_ANY(b), h, AUDIT_HASH_LEN) == 0;
}

static void
audit_parse_digest(Jsonb *digest, int64 *block_id, uint8 *hash)
{
	JsonbValue	v;
	JsonbValue *id;
	JsonbValue *h;
	char	   *s;
	char	   *end;

	if (!JB_ROOT_IS_OBJECT(digest) || JB_ROOT_IS_SCALAR(digest))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit digest"),
				 errdetail("A digest is a JSON object with \"block_id\" and \"block_hash\", as audit_digest() returns it.")));
	id = getKeyJsonValueFromContainer(&digest->root, "block_id", 8, &v);
	if (id == NULL || id->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit digest"),
				 errdetail("\"block_id\" must be a non-negative integer.")));
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(id->val.numeric)));
	errno = 0;
	*block_id = strtoi64(s, &end, 10);
	if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit digest"),
				 errdetail("\"block_id\" must be a non-negative integer.")));
	h = getKeyJsonValueFromContainer(&digest->root, "block_hash", 10, &v);
	if (h == NULL || h->type != jbvString || h->val.string.len != AUDIT_HASH_LEN * 2 ||
		strspn(pnstrdup(h->val.string.val, h->val.string.len), "0123456789abcdefABCDEF") != AUDIT_HASH_LEN * 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit digest"),
				 errdetail("\"block_hash\" must be 64 hexadecimal digits.")));
	hex_decode(h->val.string.val, AUDIT_HASH_LEN * 2, (char *) hash);
}

/*
 * What verification found.  Every problem is counted and, for audit_log_problems(), kept
 * as a row; the first one is also kept for verify_audit_log()'s columns.
 */
typedef struct AuditVerify
{
	int64		blocks;
	int64		entries;
	int64		problems;
	int64		bad_blocks;		/* blocks with at least one problem */
	int64		bad_entries;	/* problems that name an entry */
	int64		last_bad_block;	/* to count each bad block once */
	bool		have_first;
	int64		first_block;	/* -1: the first problem names no block */
	char	   *first_detail;
	Tuplestorestate *store;		/* audit_log_problems(): one row per problem */
	TupleDesc	store_desc;
} AuditVerify;

/* Record a problem of a block (-1: none) and entry (-1: none). */
static void
pg_attribute_printf(4, 5)
audit_problem(AuditVerify *v, int64 block_id, int64 entry_id, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	v->problems++;
	if (block_id >= 0 && block_id != v->last_bad_block)
	{
		v->bad_blocks++;
		v->last_bad_block = block_id;
	}
	if (entry_id >= 0 || block_id < 0)
		v->bad_entries++;
	if (!v->have_first)
	{
		v->have_first = true;
		v->first_block = block_id;
		v->first_detail = buf.data;
	}
	if (v->store != NULL)
	{
		Datum		values[3];
		bool		nulls[3] = {block_id < 0, entry_id < 0, false};

		values[0] = Int64GetDatum(block_id);
		values[1] = Int64GetDatum(entry_id);
		values[2] = CStringGetTextDatum(buf.data);
		tuplestore_putvalues(v->store, v->store_desc, values, nulls);
		pfree(DatumGetPointer(values[2]));
	}
	if (v->first_detail != buf.data)
		pfree(buf.data);
}

#define ENTRY_ID(c) DatumGetInt64((c)->values[AL_ID])
#define ENTRY_TXID(c) DatumGetInt64((c)->values[AL_TXID])

/*
 * Move to the next entry, reporting one that repeats the id and transaction of the one
 * before it (a copy of an entry inserted again: ids are unique, and in (txid, id) order a
 * copy follows its original).
 */
static bool
audit_verify_next(AuditVerify *v, AuditEntryCursor *c, int64 block_id)
{
	int64		id = ENTRY_ID(c);
	int64		txid = ENTRY_TXID(c);

	if (!audit_cursor_next(c))
		return false;
	if (ENTRY_ID(c) == id && ENTRY_TXID(c) == txid)
		audit_problem(v, block_id, id, "entry %lld appears more than once (entry copied)", (long long) id);
	return true;
}

/* Check the purge records that cover block b (blocks are visited in order). */
static void
audit_verify_purges(AuditVerify *v, List *records, const AuditBlock *b, const uint8 *bhash,
					int64 *sums)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, records)
	{
		AuditPurgeRecord *r = lfirst(lc);

		if (b->block_id >= r->first && b->block_id <= r->through)
		{
			if (b->sealed_at >= r->cutoff)
				audit_problem(v, b->block_id, r->entry_id,
							  "block %lld was purged by purge record %lld but was sealed after its cutoff",
							  (long long) b->block_id, (long long) r->entry_id);
			sums[i] += b->entry_count;
		}
		if (b->block_id == r->through)
		{
			if (memcmp(bhash, r->last_hash, AUDIT_HASH_LEN) != 0)
				audit_problem(v, b->block_id, r->entry_id,
							  "block %lld differs from the block purge record %lld purged",
							  (long long) b->block_id, (long long) r->entry_id);
			if (b->txid_hi > r->txid)
				audit_problem(v, b->block_id, r->entry_id,
							  "purge record %lld names block %lld, sealed after the purge",
							  (long long) r->entry_id, (long long) b->block_id);
			if (sums[i] != r->entries)
				audit_problem(v, b->block_id, r->entry_id,
							  "purge record %lld deleted %lld entries but blocks %lld to %lld held %lld",
							  (long long) r->entry_id, (long long) r->entries, (long long) r->first,
							  (long long) r->through, (long long) sums[i]);
			sums[i] = -1;		/* checked */
		}
		i++;
	}
}

static void
audit_verify_chain(AuditVerify *v, bool have_digest, int64 digest_id, const uint8 *digest_hash)
{
	Portal		bportal;
	AuditEntryCursor ec;
	bool		have_entry;
	List	   *records;
	int64	   *sums;
	int64		purged_through;
	int64		expect_id = 1;
	int64		prev_hi = 0;
	uint8		prev_hash[AUDIT_HASH_LEN];
	bool		digest_found = false;
	ListCell   *lc;
	int			ri;

	memset(prev_hash, 0, AUDIT_HASH_LEN);

	/* Missing entries are accepted only in blocks that a verified purge record covers. */
	records = audit_purge_records(true);
	purged_through = audit_purged_through(records);
	sums = palloc0(sizeof(int64) * (list_length(records) + 1));

	if (have_digest && digest_id == 0)
	{
		uint8		zero[AUDIT_HASH_LEN];

		memset(zero, 0, AUDIT_HASH_LEN);
		if (memcmp(zero, digest_hash, AUDIT_HASH_LEN) != 0)
			audit_problem(v, 0, -1, "the digest names block 0 with a hash other than the genesis hash");
		digest_found = true;
	}

	memset(&ec, 0, sizeof(ec));
	ec.portal = SPI_cursor_open_with_args(NULL,
										  psprintf("SELECT %s FROM crm_security.audit_log ORDER BY txid, id",
												   audit_layout_column_list()),
										  0, NULL, NULL, NULL, true, CURSOR_OPT_NO_SCROLL);
	have_entry = audit_cursor_next(&ec);

	bportal = SPI_cursor_open_with_args(NULL,
										"SELECT block_id, prev_hash, txid_lo, txid_hi, entry_count, "
										"entries_hash, sealed_at, block_hash FROM crm_security.audit_blocks "
										"ORDER BY block_id",
										0, NULL, NULL, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPITupleTable *bt;
		uint64		nb;

		SPI_cursor_fetch(bportal, true, 100);
		bt = SPI_tuptable;
		nb = SPI_processed;
		if (nb == 0)
			break;
		for (uint64 i = 0; i < nb; i++)
		{
			Datum		bv[8];
			bool		bn[8];
			AuditBlock	b;
			uint8		bhash[AUDIT_HASH_LEN];
			int64		count = 0;
			uint8		ehash[AUDIT_HASH_LEN];
			bool		complete = true;

			heap_deform_tuple(bt->vals[i], bt->tupdesc, bv, bn);
			v->blocks++;
			for (int k = 0; k < 8; k++)
				complete &= !bn[k];
			if (!complete)
			{
				/* Nothing to chain from: the next block is checked against this one's place. */
				audit_problem(v, bn[0] ? expect_id : DatumGetInt64(bv[0]), -1,
							  "block %lld has a null field", (long long) (bn[0] ? expect_id : DatumGetInt64(bv[0])));
				expect_id = (bn[0] ? expect_id : DatumGetInt64(bv[0])) + 1;
				if (!bn[3])
					prev_hi = DatumGetInt64(bv[3]);
				if (!bn[7])
				{
					bytea	   *sh = DatumGetByteaPP(bv[7]);

					if (VARSIZE_ANY_EXHDR(sh) == AUDIT_HASH_LEN)
						memcpy(prev_hash, VARDATA_ANY(sh), AUDIT_HASH_LEN);
				}
				while (have_entry && ENTRY_TXID(&ec) < prev_hi)
				{
					v->entries++;
					have_entry = audit_verify_next(v, &ec, expect_id - 1);
				}
				continue;
			}
			memset(&b, 0, sizeof(b));
			b.block_id = DatumGetInt64(bv[0]);
			if (b.block_id != expect_id)
				audit_problem(v, expect_id, -1, "block %lld is missing (the next block is %lld)",
							  (long long) expect_id, (long long) b.block_id);
			if (!audit_bytea_eq(bv[1], prev_hash))
				audit_problem(v, b.block_id, -1, "block %lld does not link to block %lld (prev_hash differs)",
							  (long long) b.block_id, (long long) (b.block_id - 1));
			{
				bytea	   *ph = DatumGetByteaPP(bv[1]);

				/* Its hash is computed over what it stores: one bad link is reported once. */
				if (VARSIZE_ANY_EXHDR(ph) == AUDIT_HASH_LEN)
					memcpy(b.prev_hash, VARDATA_ANY(ph), AUDIT_HASH_LEN);
			}
			b.txid_lo = DatumGetInt64(bv[2]);
			b.txid_hi = DatumGetInt64(bv[3]);
			b.entry_count = DatumGetInt64(bv[4]);
			{
				bytea	   *eh = DatumGetByteaPP(bv[5]);

				if (VARSIZE_ANY_EXHDR(eh) != AUDIT_HASH_LEN)
					audit_problem(v, b.block_id, -1, "block %lld has a malformed entries hash", (long long) b.block_id);
				else
					memcpy(b.entries_hash, VARDATA_ANY(eh), AUDIT_HASH_LEN);
			}
			b.sealed_at = DatumGetTimestampTz(bv[6]);
			if (b.txid_lo != prev_hi || b.txid_hi <= b.txid_lo)
				audit_problem(v, b.block_id, -1, "block %lld covers transactions [%lld, %lld), expected to start at %lld",
							  (long long) b.block_id, (long long) b.txid_lo, (long long) b.txid_hi,
							  (long long) prev_hi);
			audit_block_hash(&b, bhash);
			if (!audit_bytea_eq(bv[7], bhash))
				audit_problem(v, b.block_id, -1, "block %lld does not match its stored hash (block modified)",
							  (long long) b.block_id);
			audit_verify_purges(v, records, &b, bhash, sums);

			if (b.block_id <= purged_through)
			{
				while (have_entry && ENTRY_TXID(&ec) < b.txid_hi)
				{
					v->entries++;
					audit_problem(v, b.block_id, ENTRY_ID(&ec), "entry %lld lies in purged block %lld",
								  (long long) ENTRY_ID(&ec), (long long) b.block_id);
					have_entry = audit_verify_next(v, &ec, b.block_id);
				}
			}
			else
			{
				uint8		root[AUDIT_HASH_LEN];
				CrmSha256Stream *ctx = crm_sha256_begin();

				while (have_entry && ENTRY_TXID(&ec) < b.txid_hi)
				{
					v->entries++;
					if (!audit_entry_ok(&ec, ehash))
						audit_problem(v, b.block_id, ENTRY_ID(&ec), "entry %lld does not match its hash (entry modified)",
									  (long long) ENTRY_ID(&ec));
					crm_sha256_update(ctx, ehash, AUDIT_HASH_LEN);
					count++;
					have_entry = audit_verify_next(v, &ec, b.block_id);
				}
				crm_sha256_final(ctx, root);
				if (count != b.entry_count)
					audit_problem(v, b.block_id, -1, "block %lld holds %lld entries but was sealed with %lld (entries deleted or inserted)",
								  (long long) b.block_id, (long long) count, (long long) b.entry_count);
				else if (memcmp(root, b.entries_hash, AUDIT_HASH_LEN) != 0)
					audit_problem(v, b.block_id, -1, "the entries of block %lld do not match its sealed hash (entries replaced or reordered)",
								  (long long) b.block_id);
			}
			if (have_digest && b.block_id == digest_id)
			{
				if (memcmp(bhash, digest_hash, AUDIT_HASH_LEN) != 0)
					audit_problem(v, b.block_id, -1, "block %lld differs from the digest", (long long) b.block_id);
				digest_found = true;
			}
			/* Go on from what the block stores, so that one bad block is reported once. */
			{
				bytea	   *sh = DatumGetByteaPP(bv[7]);

				memcpy(prev_hash, VARSIZE_ANY_EXHDR(sh) == AUDIT_HASH_LEN ? (uint8 *) VARDATA_ANY(sh) : bhash,
					   AUDIT_HASH_LEN);
			}
			prev_hi = b.txid_hi;
			expect_id = b.block_id + 1;
		}
		SPI_freetuptable(bt);
	}
	SPI_cursor_close(bportal);

	/* Unsealed entries: each must still match its own keyed hash. */
	while (have_entry)
	{
		uint8		ehash[AUDIT_HASH_LEN];

		v->entries++;
		if (ENTRY_TXID(&ec) < prev_hi)
			audit_problem(v, -1, ENTRY_ID(&ec), "entry %lld lies before the end of the sealed chain",
						  (long long) ENTRY_ID(&ec));
		else if (!audit_entry_ok(&ec, ehash))
			audit_problem(v, -1, ENTRY_ID(&ec), "unsealed entry %lld does not match its hash (entry modified or forged)",
						  (long long) ENTRY_ID(&ec));
		have_entry = audit_verify_next(v, &ec, -1);
	}
	SPI_cursor_close(ec.portal);

	/* A purge record whose last block is gone was not checked above. */
	ri = 0;
	foreach(lc, records)
	{
		AuditPurgeRecord *r = lfirst(lc);

		if (sums[ri++] >= 0)
			audit_problem(v, r->through, r->entry_id, "purge record %lld names block %lld, which is missing",
						  (long long) r->entry_id, (long long) r->through);
	}

	if (have_digest && !digest_found)
		audit_problem(v, expect_id, -1, "the chain ends at block %lld and does not reach the digest's block %lld (blocks removed)",
					  (long long) (expect_id - 1), (long long) digest_id);
}

/* Verify under SPI; the caller gives v->store when it wants every problem. */
static void
audit_verify_run(AuditVerify *v, FunctionCallInfo fcinfo)
{
	bool		have_digest = !PG_ARGISNULL(0);
	int64		digest_id = 0;
	uint8		digest_hash[AUDIT_HASH_LEN];

	v->first_block = -1;
	v->last_bad_block = -1;
	if (have_digest)
		audit_parse_digest(PG_GETARG_JSONB_P(0), &digest_id, digest_hash);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_verify_chain(v, have_digest, digest_id, digest_hash);
	/* Copy the first problem out of the SPI memory context before SPI_finish() frees it. */
	if (v->have_first)
	{
		char	   *d = SPI_palloc(strlen(v->first_detail) + 1);

		strcpy(d, v->first_detail);
		v->first_detail = d;
	}
	SPI_finish();
}

/* SQL function: verify_audit_log(digest jsonb) returns table(ok, blocks_checked, entries_checked, first_bad_block, detail) */
PG_FUNCTION_INFO_V1(audit_verify);
Datum
audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	AuditVerify v;
	char	   *detail;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&v, 0, sizeof(v));
	audit_verify_run(&v, fcinfo);

	if (!v.have_first)
		detail = psprintf("%lld blocks and %lld entries verified%s",
						  (long long) v.blocks, (long long) v.entries,
						  PG_ARGISNULL(0) ? "" : "; the chain reaches the digest");
	else
		detail = psprintf("%s; %lld problem%s in all (%lld bad block%s, %lld bad entr%s): see audit_log_problems()",
						  v.first_detail, (long long) v.problems, v.problems == 1 ? "" : "s",
						  (long long) v.bad_blocks, v.bad_blocks == 1 ? "" : "s",
						  (long long) v.bad_entries, v.bad_entries == 1 ? "y" : "ies");
	values[0] = BoolGetDatum(!v.have_first);
	values[1] = Int64GetDatum(v.blocks);
	values[2] = Int64GetDatum(v.entries);
	if (!v.have_first || v.first_block < 0)
		nulls[3] = true;
	else
		values[3] = Int64GetDatum(v.first_block);
	values[4] = CStringGetTextDatum(detail);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* SQL function: audit_log_problems(digest jsonb) returns setof (block_id, entry_id, problem) */
PG_FUNCTION_INFO_V1(audit_log_problems);
Datum
audit_log_problems(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditVerify v;

	InitMaterializedSRF(fcinfo, 0);
	memset(&v, 0, sizeof(v));
	v.store = rsinfo->setResult;
	v.store_desc = rsinfo->setDesc;
	audit_verify_run(&v, fcinfo);
	return (Datum) 0;
}
