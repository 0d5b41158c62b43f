/*
 * audit_canonical.c
 *		The canonical forms of audit entries and blocks, as docs/audit.md ("Canonical
 *		forms") defines them, their hashes (crm_sha256() of crypto.c), and
 *		audit_canonical_entry(), which shows an entry's form to outside verifiers.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit_canonical.h"
#include "audit_key.h"
#include "audit_layout.h"
#include "crypto.h"

#define AUDIT_ENTRY_TAG "crm_security.audit_entry.v1"
#define AUDIT_BLOCK_TAG "crm_security.audit_block.v1"

static int64
audit_unix_micros(TimestampTz ts)
{
	return (int64) ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

/* One field of a canonical form, written with a single enlargement of buf. */
static void
audit_put_field(StringInfo buf, const char *name, const char *data, int len)
{
	int			namelen = strlen(name);
	char		tmp[MAXINT8LEN + 1];
	int			n = 0;
	char	   *p;

	if (data != NULL)
	{
		n = pg_lltoa(len, tmp);
		tmp[n++] = ':';
	}
	enlargeStringInfo(buf, namelen + 3 + n + (data != NULL ? len : 0));
	p = buf->data + buf->len;
	*p++ = '\n';
	memcpy(p, name, namelen);
	p += namelen;
	*p++ = '=';
	if (data == NULL)
		*p++ = '~';
	else
	{
		memcpy(p, tmp, n);
		p += n;
		memcpy(p, data, len);
		p += len;
	}
	buf->len = p - buf->data;
	*p = '\0';
}

static void
audit_put_int8(StringInfo buf, const char *name, int64 v)
{
	char		tmp[MAXINT8LEN + 1];
	int			len = pg_lltoa(v, tmp);

	audit_put_field(buf, name, tmp, len);
}

/* The text form of one audit_log column value, as docs/audit.md defines it. */
void
audit_put_value(StringInfo buf, int col, Datum value, bool isnull)
{
	const char *name = audit_colnames[col];

	if (isnull)
	{
		audit_put_field(buf, name, NULL, 0);
		return;
	}
	switch (audit_coltypes[col])
	{
		case INT8OID:
			audit_put_int8(buf, name, DatumGetInt64(value));
			break;
		case TIMESTAMPTZOID:
			audit_put_int8(buf, name, audit_unix_micros(DatumGetTimestampTz(value)));
			break;
		case TEXTOID:
			{
				text	   *t = DatumGetTextPP(value);

				audit_put_field(buf, name, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);
				StringInfoData s;

				initStringInfo(&s);
				JsonbToCString(&s, &jb->root, VARSIZE(jb));
				audit_put_field(buf, name, s.data, s.len);
				pfree(s.data);
				break;
			}
		case TEXTARRAYOID:
			{
				/* Kept for the process, so that array_out() keeps its type lookup. */
				static FmgrInfo array_out_fn;
				char	   *s;

				if (array_out_fn.fn_oid == InvalidOid)
					fmgr_info_cxt(F_ARRAY_OUT, &array_out_fn, TopMemoryContext);
				s = OutputFunctionCall(&array_out_fn, value);
				audit_put_field(buf, name, s, strlen(s));
				pfree(s);
				break;
			}
		case INETOID:
			{
				char	   *s = DatumGetCString(DirectFunctionCall1(inet_out, value));

				audit_put_field(buf, name, s, strlen(s));
				pfree(s);
				break;
			}
		default:
			elog(ERROR, "unexpected audit column type %u", audit_coltypes[col]);
	}
}

/*
 * The canonical form of an entry: every column but entry_hash.  texts, when not NULL,
 * holds already rendered texts of some columns (see AuditEntry, audit_entry.h).
 */
static void
audit_entry_canonical(StringInfo buf, const Datum *values, const bool *nulls,
					  const char *const *texts, const int *textlens,
					  const char *actor_canon, int actor_canon_len)
{
	appendStringInfoString(buf, AUDIT_ENTRY_TAG);
	for (int i = 0; i < AL_ENTRY_HASH; i++)
	{
		if (i == AL_ACTOR_TYPE && actor_canon != NULL)
		{
			StaticAssertStmt(AL_CLIENT_ADDR + 1 == AL_ENTRY_HASH,
							 "the actor fields end the canonical form");
			appendBinaryStringInfo(buf, actor_canon, actor_canon_len);
			break;
		}
		if (texts != NULL && texts[i] != NULL && !nulls[i])
			audit_put_field(buf, audit_colnames[i], texts[i], textlens[i]);
		else
			audit_put_value(buf, i, values[i], nulls[i]);
	}
}

/*
 * The canonical form is built in one buffer kept for the process (nothing between its
 * reset and the hash runs user code, so it is never used twice at once); a buffer grown
 * by a huge entry is given back.
 */
static StringInfoData audit_canon_buf;

void
audit_entry_hash(const Datum *values, const bool *nulls, const char *const *texts,
				 const int *textlens, const char *actor_canon, int actor_canon_len, uint8 *out)
{
	if (audit_canon_buf.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&audit_canon_buf);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&audit_canon_buf);
	audit_entry_canonical(&audit_canon_buf, values, nulls, texts, textlens, actor_canon,
						  actor_canon_len);
	audit_key_mac(audit_canon_buf.data, audit_canon_buf.len, out);
	if (audit_canon_buf.maxlen > 64 * 1024)
	{
		pfree(audit_canon_buf.data);
		audit_canon_buf.data = NULL;
	}
}

static void
audit_put_rawhex(StringInfo buf, const char *name, const uint8 *h)
{
	char		hex[AUDIT_HASH_LEN * 2 + 1];

	hex_encode((const char *) h, AUDIT_HASH_LEN, hex);
	audit_put_field(buf, name, hex, AUDIT_HASH_LEN * 2);
}

void
audit_block_hash(const AuditBlock *b, uint8 *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, AUDIT_BLOCK_TAG);
	audit_put_int8(&buf, "block_id", b->block_id);
	audit_put_rawhex(&buf, "prev_hash", b->prev_hash);
	audit_put_int8(&buf, "txid_lo", b->txid_lo);
	audit_put_int8(&buf, "txid_hi", b->txid_hi);
	audit_put_int8(&buf, "entry_count", b->entry_count);
	audit_put_rawhex(&buf, "entries_hash", b->entries_hash);
	audit_put_int8(&buf, "sealed_at", audit_unix_micros(b->sealed_at));
	crm_sha256(buf.data, buf.len, out);
	pfree(buf.data);
}

bytea *
audit_bytea(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* SQL function: audit_canonical_entry(entry_id bigint) returns bytea */
PG_FUNCTION_INFO_V1(audit_canonical_entry);
Datum
audit_canonical_entry(PG_FUNCTION_ARGS)
{
	Datum		arg = PG_GETARG_DATUM(0);
	Oid			type = INT8OID;
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	StringInfoData buf;
	bytea	   *result = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(psprintf("SELECT %s FROM crm_security.audit_log WHERE id OPERATOR(pg_catalog.=) $1",
									   audit_layout_column_list()),
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the audit log");
	if (SPI_processed == 1)
	{
		heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, nulls);
		initStringInfo(&buf);
		audit_entry_canonical(&buf, values, nulls, NULL, NULL, NULL, 0);
		result = SPI_palloc(VARHDRSZ + buf.len);
		SET_VARSIZE(result, VARHDRSZ + buf.len);
		memcpy(VARDATA(result), buf.data, buf.len);
	}
	SPI_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(result);
}
