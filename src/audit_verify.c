/*
 * audit_verify.c
 *		verify_audit_log(): recompute every entry hash, block hash and link of the chain,
 *		and with a digest kept outside the database, prove that the chain still reaches it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
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

/* Whether the stored entry_hash is the hash of the entry's canonical form. */
static bool
audit_entry_ok(AuditEntryCursor *c, uint8 *hash)
{
	bytea	   *stored;

	audit_entry_hash(c->values, c->nulls, NULL, NULL, NULL, 0, hash);
	if (c->nulls[AL_ENTRY_HASH])
		return false;
	stored = DatumGetByteaPP(c->values[AL_ENTRY_HASH]);
	return VARSIZE_ANY_EXHDR(stored) == AUDIT_HASH_LEN &&
		memcmp(VARDATA_ANY(stored), hash, AUDIT_HASH_LEN) == 0;
}

typedef struct AuditVerifyResult
{
	bool		ok;
	int64		blocks;
	int64		entries;
	int64		bad_block;		/* -1: none */
	char	   *detail;
} AuditVerifyResult;

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

#define AUDIT_BAD(blk, ...) \
	do { r->ok = false; r->bad_block = (blk); r->detail = psprintf(__VA_ARGS__); goto done; } while (0)

static void
audit_verify_chain(AuditVerifyResult *r, bool have_digest, int64 digest_id, const uint8 *digest_hash)
{
	Portal		bportal = NULL;
	AuditEntryCursor ec;
	bool		have_entry;
	int64		purged_through = 0;
	int64		expect_id = 1;
	int64		prev_hi = 0;
	uint8		prev_hash[AUDIT_HASH_LEN];
	bool		digest_found = false;

	memset(prev_hash, 0, AUDIT_HASH_LEN);
	memset(&ec, 0, sizeof(ec));
	r->ok = true;
	r->blocks = r->entries = 0;
	r->bad_block = -1;
	r->detail = NULL;

	purged_through = audit_purged_through(true);

	if (have_digest && digest_id == 0)
	{
		uint8		zero[AUDIT_HASH_LEN];

		memset(zero, 0, AUDIT_HASH_LEN);
		if (memcmp(zero, digest_hash, AUDIT_HASH_LEN) != 0)
			AUDIT_BAD(0, "the digest names block 0 with a hash other than the genesis hash");
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

			heap_deform_tuple(bt->vals[i], bt->tupdesc, bv, bn);
			for (int k = 0; k < 8; k++)
				if (bn[k])
					AUDIT_BAD(bn[0] ? expect_id : DatumGetInt64(bv[0]),
							  "block %lld has a null field", (long long) expect_id);
			memset(&b, 0, sizeof(b));
			b.block_id = DatumGetInt64(bv[0]);
			r->blocks++;
			if (b.block_id != expect_id)
				AUDIT_BAD(expect_id, "block %lld is missing (the next block is %lld)",
						  (long long) expect_id, (long long) b.block_id);
			if (!audit_bytea_eq(bv[1], prev_hash))
				AUDIT_BAD(b.block_id, "block %lld does not link to block %lld (prev_hash differs)",
						  (long long) b.block_id, (long long) (b.block_id - 1));
			memcpy(b.prev_hash, prev_hash, AUDIT_HASH_LEN);
			b.txid_lo = DatumGetInt64(bv[2]);
			b.txid_hi = DatumGetInt64(bv[3]);
			b.entry_count = DatumGetInt64(bv[4]);
			{
				bytea	   *eh = DatumGetByteaPP(bv[5]);

				if (VARSIZE_ANY_EXHDR(eh) != AUDIT_HASH_LEN)
					AUDIT_BAD(b.block_id, "block %lld has a malformed entries hash", (long long) b.block_id);
				memcpy(b.entries_hash, VARDATA_ANY(eh), AUDIT_HASH_LEN);
			}
			b.sealed_at = DatumGetTimestampTz(bv[6]);
			if (b.txid_lo != prev_hi || b.txid_hi <= b.txid_lo)
				AUDIT_BAD(b.block_id, "block %lld covers transactions [%lld, %lld), expected to start at %lld",
						  (long long) b.block_id, (long long) b.txid_lo, (long long) b.txid_hi,
						  (long long) prev_hi);
			audit_block_hash(&b, bhash);
			if (!audit_bytea_eq(bv[7], bhash))
				AUDIT_BAD(b.block_id, "block %lld does not match its stored hash (block modified)",
						  (long long) b.block_id);

			if (b.block_id <= purged_through)
			{
				if (have_entry && DatumGetInt64(ec.values[AL_TXID]) < b.txid_hi)
					AUDIT_BAD(b.block_id, "entry %lld lies in purged block %lld",
							  (long long) DatumGetInt64(ec.values[AL_ID]), (long long) b.block_id);
			}
			else
			{
				uint8		root[AUDIT_HASH_LEN];
				CrmSha256Stream *ctx = crm_sha256_begin();

				while (have_entry && DatumGetInt64(ec.values[AL_TXID]) < b.txid_hi)
				{
					r->entries++;
					if (!audit_entry_ok(&ec, ehash))
						AUDIT_BAD(b.block_id, "entry %lld does not match its hash (entry modified)",
								  (long long) DatumGetInt64(ec.values[AL_ID]));
					crm_sha256_update(ctx, ehash, AUDIT_HASH_LEN);
					count++;
					have_entry = audit_cursor_next(&ec);
				}
				crm_sha256_final(ctx, root);
				if (count != b.entry_count)
					AUDIT_BAD(b.block_id, "block %lld holds %lld entries but was sealed with %lld (entries deleted or inserted)",
							  (long long) b.block_id, (long long) count, (long long) b.entry_count);
				if (memcmp(root, b.entries_hash, AUDIT_HASH_LEN) != 0)
					AUDIT_BAD(b.block_id, "the entries of block %lld do not match its sealed hash (entries replaced or reordered)",
							  (long long) b.block_id);
			}
			if (have_digest && b.block_id == digest_id)
			{
				if (memcmp(bhash, digest_hash, AUDIT_HASH_LEN) != 0)
					AUDIT_BAD(b.block_id, "block %lld differs from the digest", (long long) b.block_id);
				digest_found = true;
			}
			memcpy(prev_hash, bhash, AUDIT_HASH_LEN);
			prev_hi = b.txid_hi;
			expect_id = b.block_id + 1;
		}
		SPI_freetuptable(bt);
	}
	SPI_cursor_close(bportal);
	bportal = NULL;

	/* Unsealed entries: each must still match its own hash. */
	while (have_entry)
	{
		uint8		ehash[AUDIT_HASH_LEN];

		r->entries++;
		if (!audit_entry_ok(&ec, ehash))
			AUDIT_BAD(-1, "unsealed entry %lld does not match its hash (entry modified)",
					  (long long) DatumGetInt64(ec.values[AL_ID]));
		have_entry = audit_cursor_next(&ec);
	}

	if (have_digest && !digest_found)
		AUDIT_BAD(expect_id, "the chain ends at block %lld and does not reach the digest's block %lld (blocks removed)",
				  (long long) (expect_id - 1), (long long) digest_id);
	r->detail = psprintf("%lld blocks and %lld entries verified%s",
						 (long long) r->blocks, (long long) r->entries,
						 have_digest ? "; the chain reaches the digest" : "");
done:
	if (bportal != NULL)
		SPI_cursor_close(bportal);
	if (ec.portal != NULL)
		SPI_cursor_close(ec.portal);
	return;
}

/* SQL function: verify_audit_log(digest jsonb) returns table(ok, blocks_checked, entries_checked, first_bad_block, detail) */
PG_FUNCTION_INFO_V1(audit_verify);
Datum
audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	AuditVerifyResult r;
	bool		have_digest = !PG_ARGISNULL(0);
	int64		digest_id = 0;
	uint8		digest_hash[AUDIT_HASH_LEN];
	char	   *detail;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (have_digest)
		audit_parse_digest(PG_GETARG_JSONB_P(0), &digest_id, digest_hash);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_verify_chain(&r, have_digest, digest_id, digest_hash);
	/* Copy the detail out of the SPI memory context before SPI_finish() frees it. */
	detail = SPI_palloc(strlen(r.detail) + 1);
	strcpy(detail, r.detail);
	SPI_finish();

	values[0] = BoolGetDatum(r.ok);
	values[1] = Int64GetDatum(r.blocks);
	values[2] = Int64GetDatum(r.entries);
	if (r.bad_block < 0)
		nulls[3] = true;
	else
		values[3] = Int64GetDatum(r.bad_block);
	values[4] = CStringGetTextDatum(detail);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
