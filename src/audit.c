/*
 * audit.c
 *		Tamper-evident audit log: row triggers, application events, sealing into a hash
 *		chain, verification, retention.
 *
 * Every entry carries the SHA-256 of its canonical form (docs/audit.md, "Canonical
 * forms") from the moment it is inserted.  Chaining happens later, in seal_audit_log(),
 * so that concurrent writers never wait for one another: a block holds every entry whose
 * top-level transaction id lies in [txid_lo, txid_hi), where txid_hi is the oldest
 * transaction still running when the sealer looked, so no entry can ever appear behind a
 * sealed block.
 *
 * The row trigger is the hot path.  Per table we cache (by trigger, invalidated through
 * the relcache) the primary key columns and the stored columns as blessed row types, so
 * that a row becomes jsonb without catalog or SPI work; a running trigger pins the
 * description it uses, since user code run while a row image is built (a cast to json)
 * may change the table and fire the trigger again.  Entries are written by
 * audit_write.c, a statement's entries together.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_am.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "tcop/utility.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/datetime.h"

#include "audit.h"
#include "context.h"
#include "json_util.h"
#include "crm_security.h"

const char *const audit_colnames[AL_NATTS] = {
	"id", "txid", "logged_at", "kind", "table_name", "operation", "record_key",
	"old_row", "new_row", "changed_columns", "resource_type", "resource_id", "result",
	"metadata", "actor_type", "actor_id", "tenant_id", "db_user", "request_id",
	"client_addr", "entry_hash"
};

const Oid audit_coltypes[AL_NATTS] = {
	INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
	JSONBOID, JSONBOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID,
	JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INETOID, BYTEAOID
};

#define AUDIT_HASH_LEN 32
#define AUDIT_ENTRY_TAG "crm_security.audit_entry.v1"
#define AUDIT_BLOCK_TAG "crm_security.audit_block.v1"
/* Largest block, in entries; one transaction's entries are never split. */
#define AUDIT_BLOCK_MAX 10000
#define AUDIT_FETCH 1000
/* Advisory lock key shared by seal_audit_log() and purge_audit_log(). */
#define AUDIT_LOCK_KEY INT64CONST(0x63726d5f61756474)	/* "crm_audt" */

/* Limits for log_event() arguments. */
#define AUDIT_MAX_NAME 200
#define AUDIT_MAX_RESOURCE_ID 1024
#define AUDIT_MAX_METADATA (1024 * 1024)
#define AUDIT_MAX_REQUEST_ID 256

/* Setting crm_security.request_id: set by the application for a transaction. */
static char *audit_request_id_guc = NULL;

/* Set only while purge_audit_log() deletes entries. */
static bool audit_purging = false;

/* Objects of the extension, resolved once per backend and reset by invalidation. */
static Oid	audit_log_relid = InvalidOid;
static Oid	audit_seq_relid = InvalidOid;
static Oid	audit_blocks_relid = InvalidOid;
static Oid	audit_purges_relid = InvalidOid;


/* Per-backend, constant: the client address (NULL over a Unix socket). */
static bool audit_client_addr_known = false;
static Datum audit_client_addr = (Datum) 0;

/*
 * The cached description of one audited table, for one audit trigger.  It lives in its
 * own memory context, allocated there too.  A running trigger pins it: user code run
 * while the trigger builds a row image (a cast to json, an output function) may change
 * the table (rename its columns) and write to it, and the nested trigger then finds the
 * description stale and builds a new one; the old one is freed only when the last call
 * using it has ended.
 */
typedef struct AuditRelInfo
{
	Oid			relid;
	bool		valid;			/* false once invalidated: the next call rebuilds */
	bool		retired;		/* no longer in the cache: freed when unpinned */
	int			pins;			/* calls of the trigger using it now */
	MemoryContext cxt;			/* holds this struct and everything it points to */
	char	   *qualname;
	Datum		qualname_text;
	int			nkey;
	AttrNumber *key_attnums;
	int			nrow;
	AttrNumber *row_attnums;
	TupleDesc	row_desc;		/* the stored columns, for UPDATE's changed columns */
	struct AuditCol *key_cols;
	struct AuditCol *row_cols;
	Datum	   *row_names;		/* the stored columns' names as text */
	char	  **row_elems;		/* ... as array_out() writes them in changed_columns */
} AuditRelInfo;

/* How one column becomes a jsonb value; the same result as to_jsonb() gives. */
typedef enum AuditColKind
{
	AC_TEXT,					/* text, varchar: a string of its bytes */
	AC_INT,						/* int2, int4, int8: a number */
	AC_NUMERIC,					/* numeric: a number, NaN and infinities as strings */
	AC_BOOL,
	AC_JSONB,					/* embedded as is */
	AC_DATETIME,				/* date, timestamp, timestamptz: ISO 8601 string */
	AC_OTHER					/* to_jsonb() of the value */
} AuditColKind;

typedef struct AuditCol
{
	AttrNumber	attnum;
	Oid			typid;
	AuditColKind kind;
	JsonbValue	key;			/* the column name as a jsonb key */
	char	   *key_text;		/* ... as jsonb's output writes it, with ": " */
	int			key_text_len;
	FmgrInfo	to_jsonb;		/* AC_OTHER, and NaN/infinite numerics */
	/* AC_DATETIME: the last value and its text (rows of a statement often share it). */
	bool		dt_valid;
	Datum		dt_value;
	pg_tz	   *dt_tz;			/* the session time zone it was written in */
	int			dt_len;
	char		dt_text[MAXDATELEN + 1];
} AuditCol;

/* The cache: the trigger's OID to its table's current description. */
typedef struct AuditRelEntry
{
	Oid			tgoid;			/* hash key */
	AuditRelInfo *info;			/* NULL until built */
} AuditRelEntry;

static HTAB *audit_rel_cache = NULL;
/* Counts relcache invalidations, so that a description built across one is not kept. */
static uint64 audit_rel_inval_count = 0;

static void audit_authid_callback(Datum arg, int cacheid, uint32 hashvalue);
static void audit_object_access(ObjectAccessType access, Oid classId, Oid objectId,
								int subId, void *arg);
static void audit_truncate_utility(PlannedStmt *pstmt, const char *queryString,
								   bool readOnlyTree, ProcessUtilityContext context,
								   ParamListInfo params, QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc);
static object_access_hook_type prev_object_access = NULL;
static ProcessUtility_hook_type prev_truncate_utility = NULL;

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

/* --------------------------------------------------------------------------------------
 * Invalidation and lookups
 * --------------------------------------------------------------------------------------
 */

static void
audit_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == audit_log_relid || relid == audit_seq_relid ||
		relid == audit_blocks_relid || relid == audit_purges_relid)
	{
		audit_log_relid = InvalidOid;
		audit_seq_relid = InvalidOid;
		audit_blocks_relid = InvalidOid;
		audit_purges_relid = InvalidOid;
	}
	audit_write_invalidate(relid);
	audit_rel_inval_count++;
	if (audit_rel_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		AuditRelEntry *ent;

		hash_seq_init(&status, audit_rel_cache);
		while ((ent = hash_seq_search(&status)) != NULL)
		{
			if (ent->info != NULL && (relid == InvalidOid || ent->info->relid == relid))
				ent->info->valid = false;
		}
	}
}

void
audit_init(void)
{
	DefineCustomStringVariable("crm_security.request_id",
							   "Request id recorded in audit entries of this transaction.",
							   "Set by the application, e.g. SET LOCAL crm_security.request_id = '...'; "
							   "a request_id claim of the verified context takes precedence.",
							   &audit_request_id_guc,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
	audit_write_init();
	CacheRegisterSyscacheCallback(AUTHOID, audit_authid_callback, (Datum) 0);
	prev_object_access = object_access_hook;
	object_access_hook = audit_object_access;
	prev_truncate_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_truncate_utility;
}

static Oid
audit_lookup_rel(const char *name)
{
	Oid			nsp = get_namespace_oid("crm_security", false);
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation crm_security.%s is missing", name);
	return relid;
}

static void
audit_resolve_rels(void)
{
	if (OidIsValid(audit_log_relid) && OidIsValid(audit_seq_relid) &&
		OidIsValid(audit_blocks_relid) && OidIsValid(audit_purges_relid))
		return;
	audit_seq_relid = audit_lookup_rel("audit_log_id_seq");
	audit_blocks_relid = audit_lookup_rel("audit_blocks");
	audit_purges_relid = audit_lookup_rel("audit_purges");
	audit_log_relid = audit_lookup_rel("audit_log");
}

/* --------------------------------------------------------------------------------------
 * Canonical forms and hashes
 * --------------------------------------------------------------------------------------
 */

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
static void
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

static void
audit_sha256(const char *data, size_t len, uint8 *out)
{
	/*
	 * The digest is fetched and the context allocated once per process: OpenSSL 3's
	 * implicit fetch in EVP_Digest() costs more than hashing a typical entry.  Both live
	 * as long as the process, so an error between init and final leaks nothing.
	 */
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;

	if (md == NULL)
	{
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (md == NULL)
			elog(ERROR, "EVP_MD_fetch(SHA256) failed");
	}
	if (ctx == NULL)
	{
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL)
			elog(ERROR, "EVP_MD_CTX_new() failed");
	}
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		EVP_DigestUpdate(ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &outlen) != 1 ||
		outlen != AUDIT_HASH_LEN)
		elog(ERROR, "SHA-256 failed");
}

/*
 * The canonical form of an entry: every column but entry_hash.  texts, when not NULL,
 * holds already rendered texts of some columns (see AuditEntry).
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

static void
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
	audit_sha256(audit_canon_buf.data, audit_canon_buf.len, out);
	if (audit_canon_buf.maxlen > 64 * 1024)
	{
		pfree(audit_canon_buf.data);
		audit_canon_buf.data = NULL;
	}
}

typedef struct AuditBlock
{
	int64		block_id;
	uint8		prev_hash[AUDIT_HASH_LEN];
	int64		txid_lo;
	int64		txid_hi;
	int64		entry_count;
	uint8		entries_hash[AUDIT_HASH_LEN];
	TimestampTz sealed_at;
} AuditBlock;

static void
audit_put_rawhex(StringInfo buf, const char *name, const uint8 *h)
{
	char		hex[AUDIT_HASH_LEN * 2 + 1];

	hex_encode((const char *) h, AUDIT_HASH_LEN, hex);
	audit_put_field(buf, name, hex, AUDIT_HASH_LEN * 2);
}

static void
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
	audit_sha256(buf.data, buf.len, out);
	pfree(buf.data);
}

static bytea *
audit_bytea(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* --------------------------------------------------------------------------------------
 * Who and where
 * --------------------------------------------------------------------------------------
 */

static const char *
audit_user_name(Oid roleid)
{
	/* Not cached: a role renamed in another session must be recorded by its new name. */
	char	   *name = GetUserNameFromId(roleid, true);

	return name != NULL ? name : "?";
}

static void
audit_get_client_addr(Datum *value, bool *isnull)
{
	if (!audit_client_addr_known)
	{
		LOCAL_FCINFO(cfcinfo, 0);
		Datum		d;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		/* inet_client_addr() knows the connection; NULL over a Unix socket. */
		InitFunctionCallInfoData(*cfcinfo, NULL, 0, InvalidOid, NULL, NULL);
		d = inet_client_addr(cfcinfo);
		audit_client_addr = cfcinfo->isnull ? (Datum) 0 : d;
		MemoryContextSwitchTo(old);
		audit_client_addr_known = true;
	}
	*value = audit_client_addr;
	*isnull = (audit_client_addr == (Datum) 0);
}

static void
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

/*
 * The who/where columns of the entries.  They depend only on the verified context (its
 * actor type and claims), the roles (session and current user), two settings (the tenant
 * claim's name and crm_security.request_id) and the names of the roles, so they are
 * computed once and reused while all of these stay the same, within one transaction (the
 * values live in its memory).  A change to pg_authid (a role renamed) invalidates them
 * when the invalidation arrives, the moment a lookup by name would see the new name.
 */
#define AUDIT_ACTOR_FIRST AL_ACTOR_TYPE
#define AUDIT_ACTOR_LAST AL_REQUEST_ID
typedef struct AuditActor
{
	bool		valid;
	MemoryContext cxt;			/* everything below; kept across transactions */
	Oid			userid;
	Oid			session_userid;
	const char *atype;			/* ctx_actor_type(), NULL without a context */
	Jsonb	   *claims;			/* a copy of the verified claims when atype is set */
	char	   *tenant_claim;
	char	   *request_id_guc;
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	char	   *canon;			/* their canonical fields, client_addr included */
	int			canon_len;
} AuditActor;

static AuditActor audit_actor;

static void
audit_authid_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	audit_actor.valid = false;
}

static bool
audit_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
audit_actor_current(const char *atype, const Jsonb *claims)
{
	AuditActor *a = &audit_actor;

	if (!a->valid || a->userid != GetUserId() ||
		a->session_userid != GetSessionUserId() ||
		!audit_same_string(a->atype, atype) ||
		!audit_same_string(a->tenant_claim, ctx_tenant_claim) ||
		!audit_same_string(a->request_id_guc, audit_request_id_guc))
		return false;
	if (claims == NULL || a->claims == NULL)
		return claims == a->claims;
	return VARSIZE(claims) == VARSIZE(a->claims) &&
		memcmp(claims, a->claims, VARSIZE(claims)) == 0;
}

/* Compute the who/where columns from the verified context, else from the session. */
static void
audit_compute_actor(AuditEntry *e, const char *atype)
{
	char	   *request_id = NULL;

	if (atype != NULL)
	{
		/* The claim tenant_id() reads (the setting refuses an empty name). */
		audit_set_text(e, AL_ACTOR_TYPE, atype);
		audit_set_text(e, AL_ACTOR_ID, ctx_claim_text("sub"));
		audit_set_text(e, AL_TENANT_ID, ctx_claim_text(ctx_tenant_claim));
		request_id = ctx_claim_text("request_id");
	}
	else
	{
		audit_set_text(e, AL_ACTOR_TYPE, "db_user");
		audit_set_text(e, AL_ACTOR_ID, audit_user_name(GetSessionUserId()));
		audit_set_text(e, AL_TENANT_ID, NULL);
	}
	audit_set_text(e, AL_DB_USER, audit_user_name(GetUserId()));

	if ((request_id == NULL || request_id[0] == '\0') &&
		audit_request_id_guc != NULL && audit_request_id_guc[0] != '\0')
		request_id = audit_request_id_guc;
	if (request_id != NULL && request_id[0] != '\0')
	{
		int			len = strlen(request_id);

		if (len > AUDIT_MAX_REQUEST_ID)
			len = pg_mbcliplen(request_id, len, AUDIT_MAX_REQUEST_ID);
		e->values[AL_REQUEST_ID] = PointerGetDatum(cstring_to_text_with_len(request_id, len));
		e->nulls[AL_REQUEST_ID] = false;
	}
	else
		audit_set_text(e, AL_REQUEST_ID, NULL);
}

static void
audit_fill_actor(AuditEntry *e)
{
	AuditActor *a = &audit_actor;
	const char *atype = ctx_actor_type();
	/* Compared per entry, copied only when the actor is computed again. */
	const Jsonb *claims = atype != NULL ? ctx_claims_ref() : NULL;

	if (!audit_actor_current(atype, claims))
	{
		MemoryContext old;

		/*
		 * The previous values stay until the end of the transaction: an entry being
		 * built may still point to them (a cast to json run while building a row image
		 * can write another entry under another role).
		 */
		if (a->cxt != NULL)
			MemoryContextSetParent(a->cxt, TopTransactionContext);
		a->cxt = AllocSetContextCreate(TopMemoryContext, "crm_security audit actor",
									   ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(a->cxt);
		a->valid = false;
		audit_compute_actor(e, atype);
		for (int i = AUDIT_ACTOR_FIRST; i <= AUDIT_ACTOR_LAST; i++)
		{
			a->values[i] = e->values[i];
			a->nulls[i] = e->nulls[i];
		}
		a->userid = GetUserId();
		a->session_userid = GetSessionUserId();
		a->atype = atype != NULL ? pstrdup(atype) : NULL;
		a->claims = NULL;
		if (claims != NULL)
		{
			a->claims = palloc(VARSIZE(claims));
			memcpy(a->claims, claims, VARSIZE(claims));
		}
		a->tenant_claim = ctx_tenant_claim != NULL ? pstrdup(ctx_tenant_claim) : NULL;
		a->request_id_guc = audit_request_id_guc != NULL ? pstrdup(audit_request_id_guc) : NULL;
		audit_get_client_addr(&a->values[AL_CLIENT_ADDR], &a->nulls[AL_CLIENT_ADDR]);
		{
			StringInfoData canon;

			initStringInfo(&canon);
			for (int i = AUDIT_ACTOR_FIRST; i <= AL_CLIENT_ADDR; i++)
				audit_put_value(&canon, i, a->values[i], a->nulls[i]);
			a->canon = canon.data;
			a->canon_len = canon.len;
		}
		MemoryContextSwitchTo(old);
		a->valid = true;
	}
	for (int i = AUDIT_ACTOR_FIRST; i <= AL_CLIENT_ADDR; i++)
	{
		e->values[i] = a->values[i];
		e->nulls[i] = a->nulls[i];
	}
	e->actor_canon = a->canon;
	e->actor_canon_len = a->canon_len;
}

/* --------------------------------------------------------------------------------------
 * Inserting an entry
 * --------------------------------------------------------------------------------------
 */

/*
 * Complete an entry (id, txid, time, hash) and write it; returns its id.  With batch, it
 * may be written with the other entries of its statement (audit_write.c).
 */
static int64
audit_insert_entry(AuditEntry *e, bool batch)
{
	Relation	rel;
	int64		id;
	uint8		hash[AUDIT_HASH_LEN];

	audit_resolve_rels();
	id = nextval_internal(audit_seq_relid, false);
	e->values[AL_ID] = Int64GetDatum(id);
	e->nulls[AL_ID] = false;
	e->values[AL_TXID] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	e->nulls[AL_TXID] = false;
	e->values[AL_LOGGED_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	e->nulls[AL_LOGGED_AT] = false;

	audit_entry_hash(e->values, e->nulls, e->text, e->textlen, e->actor_canon,
					 e->actor_canon_len, hash);
	e->values[AL_ENTRY_HASH] = PointerGetDatum(audit_bytea(hash, AUDIT_HASH_LEN));
	e->nulls[AL_ENTRY_HASH] = false;

	if (!batch || !audit_write_append(audit_log_relid, e->values, e->nulls))
	{
		rel = table_open(audit_log_relid, RowExclusiveLock);
		audit_write_entry(rel, e->values, e->nulls, batch);
		table_close(rel, NoLock);
	}
	return id;
}

static void
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

/* Record an event of the extension itself (enable, disable, purge). */
static int64
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

/* --------------------------------------------------------------------------------------
 * The row trigger
 * --------------------------------------------------------------------------------------
 */

/* Excluded column names from the trigger's single argument, a text[] literal. */
static pg_noinline List *
audit_trigger_excluded(Trigger *trigger)
{
	List	   *names = NIL;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	if (trigger->tgnargs == 0)
		return NIL;
	if (trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit trigger \"%s\" has unexpected arguments", trigger->tgname),
				 errhint("Use crm_security.enable_audit() to create audit triggers.")));
	arr = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, trigger->tgargs[0], TEXTOID, -1));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
		if (!enulls[i])
			names = lappend(names, TextDatumGetCString(elems[i]));
	return names;
}

static TupleDesc
audit_project_desc(TupleDesc src, const AttrNumber *attnums, int n)
{
	TupleDesc	desc = CreateTemplateTupleDesc(n);

	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src, attnums[i] - 1);

		TupleDescInitEntry(desc, i + 1, NameStr(att->attname), att->atttypid,
						   att->atttypmod, att->attndims);
		TupleDescInitEntryCollation(desc, i + 1, att->attcollation);
	}
	return desc;
}

/* jsonb's order of object keys: shorter first, then bytewise. */
static int
audit_cmp_cols(const void *a, const void *b)
{
	const JsonbValue *ka = &((const AuditCol *) a)->key;
	const JsonbValue *kb = &((const AuditCol *) b)->key;

	if (ka->val.string.len != kb->val.string.len)
		return ka->val.string.len < kb->val.string.len ? -1 : 1;
	return memcmp(ka->val.string.val, kb->val.string.val, ka->val.string.len);
}


/* Per-column conversion plans, in the memory context cxt (current). */
static struct AuditCol *
audit_make_cols(TupleDesc src, const AttrNumber *attnums, int n, MemoryContext cxt)
{
	AuditCol   *cols = palloc0(sizeof(AuditCol) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src, attnums[i] - 1);
		AuditCol   *c = &cols[i];
		FuncExpr   *fexpr;

		c->attnum = attnums[i];
		c->typid = att->atttypid;
		c->key.type = jbvString;
		c->key.val.string.val = pstrdup(NameStr(att->attname));
		c->key.val.string.len = strlen(c->key.val.string.val);
		{
			StringInfoData kt;

			initStringInfo(&kt);
			json_append_string(&kt, c->key.val.string.val, c->key.val.string.len);
			appendBinaryStringInfo(&kt, ": ", 2);
			c->key_text = kt.data;
			c->key_text_len = kt.len;
		}
		switch (att->atttypid)
		{
			case TEXTOID:
			case VARCHAROID:
				c->kind = AC_TEXT;
				break;
			case INT2OID:
			case INT4OID:
			case INT8OID:
				c->kind = AC_INT;
				break;
			case NUMERICOID:
				c->kind = AC_NUMERIC;
				break;
			case BOOLOID:
				c->kind = AC_BOOL;
				break;
			case JSONBOID:
				c->kind = AC_JSONB;
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				c->kind = AC_DATETIME;
				break;
			default:
				c->kind = AC_OTHER;
				break;
		}
		/* to_jsonb() learns its argument type from the call expression. */
		fmgr_info_cxt(F_TO_JSONB, &c->to_jsonb, cxt);
		fexpr = makeFuncExpr(F_TO_JSONB, JSONBOID,
							 list_make1(makeNullConst(att->atttypid, att->atttypmod, att->attcollation)),
							 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		fmgr_info_set_expr((Node *) fexpr, &c->to_jsonb);
	}
	/* In jsonb key order, so that building the object finds its keys already sorted. */
	qsort(cols, n, sizeof(AuditCol), audit_cmp_cols);
	return cols;
}

/* A jsonb document as one value: scalars unwrapped (true), containers as binary (false). */
static bool
audit_jsonb_value(Jsonb *jb, JsonbValue *v)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, v))
			elog(ERROR, "could not extract jsonb scalar");
		return true;
	}
	v->type = jbvBinary;
	v->val.binary.data = &jb->root;
	v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
	return false;
}

/*
 * The jsonb object {column: value, ...} of the given columns of a row, and its text
 * (what jsonb's output function gives: the canonical text of the image) appended to out.
 *
 * The columns are already in jsonb key order and their names are unique, so when every
 * value is a scalar the object is built directly from its pairs and its text written
 * from the same values (integers without a round trip through numeric).  A value that
 * is a container (a jsonb object or array, an array, a composite) takes the general
 * path: pushJsonbValue() and JsonbToCString() of the result.
 */
typedef struct AuditImage
{
	JsonbPair  *pairs;
	int64	   *ints;			/* AC_INT values */
	int		   *off;			/* where each value's text starts in the texts buffer */
	int		   *len;
	bool		scalars;		/* built on the direct path */
} AuditImage;

static Datum
audit_cols_jsonb(const AuditRelInfo *info, AuditCol *cols, int n, TupleTableSlot *slot,
				 StringInfo out, AuditImage *img, const AuditImage *prev, const bool *same)
{
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(n, 1));
	int64	   *ints = palloc(sizeof(int64) * Max(n, 1));
	bool	   *reused = palloc0(sizeof(bool) * Max(n, 1));
	bool		scalars = true;
	Jsonb	   *res;

	/* An UPDATE's new image takes the unchanged values of the old one as they are. */
	if (prev != NULL && !prev->scalars)
		prev = NULL;
	img->pairs = pairs;
	img->ints = ints;
	img->off = palloc(sizeof(int) * Max(n, 1));
	img->len = palloc(sizeof(int) * Max(n, 1));
	slot_getallattrs(slot);
	for (int i = 0; i < n; i++)
	{
		AuditCol   *c = &cols[i];
		Datum		d = slot->tts_values[c->attnum - 1];
		JsonbValue *v = &pairs[i].value;

		pairs[i].key = c->key;
		pairs[i].order = i;
		if (prev != NULL && same[c->attnum - 1])
		{
			*v = prev->pairs[i].value;
			ints[i] = prev->ints[i];
			reused[i] = true;
			continue;
		}
		if (slot->tts_isnull[c->attnum - 1])
		{
			v->type = jbvNull;
			continue;
		}
		switch (c->kind)
		{
			case AC_TEXT:
				{
					text	   *t = DatumGetTextPP(d);

					v->type = jbvString;
					v->val.string.val = VARDATA_ANY(t);
					v->val.string.len = VARSIZE_ANY_EXHDR(t);
					break;
				}
			case AC_INT:
				ints[i] = c->typid == INT2OID ? (int64) DatumGetInt16(d) :
					c->typid == INT4OID ? (int64) DatumGetInt32(d) : DatumGetInt64(d);
				v->type = jbvNumeric;
				v->val.numeric = int64_to_numeric(ints[i]);
				break;
			case AC_NUMERIC:
				{
					Numeric		num = DatumGetNumeric(d);

					if (numeric_is_nan(num) || numeric_is_inf(num))
						scalars &= audit_jsonb_value(DatumGetJsonbP(FunctionCall1(&c->to_jsonb, d)), v);
					else
					{
						v->type = jbvNumeric;
						v->val.numeric = num;
					}
					break;
				}
			case AC_BOOL:
				v->type = jbvBool;
				v->val.boolean = DatumGetBool(d);
				break;
			case AC_JSONB:
				scalars &= audit_jsonb_value(DatumGetJsonbP(d), v);
				break;
			case AC_DATETIME:
				{
					/*
					 * A call nested in this one (user code run by a conversion) uses
					 * its own buffer: the cache may be what an enclosing call's image
					 * points to.
					 */
					if (info->pins > 1)
					{
						char	   *buf = palloc(MAXDATELEN + 1);

						JsonEncodeDateTime(buf, d, c->typid, NULL);
						v->type = jbvString;
						v->val.string.val = buf;
						v->val.string.len = strlen(buf);
						break;
					}
					/* What to_jsonb() does too; the text depends on the time zone. */
					if (!c->dt_valid || c->dt_value != d || c->dt_tz != session_timezone)
					{
						c->dt_valid = false;
						JsonEncodeDateTime(c->dt_text, d, c->typid, NULL);
						c->dt_len = strlen(c->dt_text);
						c->dt_value = d;
						c->dt_tz = session_timezone;
						c->dt_valid = true;
					}
					/*
					 * The cache itself: it changes only for this column's next value, and
					 * an UPDATE's new image reuses the old image's value only when equal.
					 */
					v->type = jbvString;
					v->val.string.val = c->dt_text;
					v->val.string.len = c->dt_len;
					break;
				}
			case AC_OTHER:
				scalars &= audit_jsonb_value(DatumGetJsonbP(FunctionCall1(&c->to_jsonb, d)), v);
				break;
		}
	}

	if (scalars)
	{
		res = json_object_from_pairs(pairs, n);

		appendStringInfoCharMacro(out, '{');
		for (int i = 0; i < n; i++)
		{
			JsonbValue *v = &pairs[i].value;

			if (i > 0)
				appendBinaryStringInfo(out, ", ", 2);
			appendBinaryStringInfo(out, cols[i].key_text, cols[i].key_text_len);
			img->off[i] = out->len;
			if (reused[i])
			{
				/* Enlarge first: the copy comes from the same buffer. */
				enlargeStringInfo(out, prev->len[i]);
				memcpy(out->data + out->len, out->data + prev->off[i], prev->len[i]);
				out->len += prev->len[i];
				out->data[out->len] = '\0';
			}
			else if (v->type == jbvNumeric && cols[i].kind == AC_INT)
			{
				char		tmp[MAXINT8LEN + 1];
				int			len = pg_lltoa(ints[i], tmp);

				appendBinaryStringInfo(out, tmp, len);
			}
			else
				json_append_scalar(out, v);
			img->len[i] = out->len - img->off[i];
		}
		appendStringInfoCharMacro(out, '}');
	}
	else
	{
		JsonbParseState *st = NULL;

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < n; i++)
		{
			pushJsonbValue(&st, WJB_KEY, &pairs[i].key);
			/* A binary value is pushed as the container it holds. */
			pushJsonbValue(&st, WJB_VALUE, &pairs[i].value);
		}
		res = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		(void) JsonbToCString(out, &res->root, VARSIZE(res));
	}
	img->scalars = scalars;
	pfree(reused);
	return JsonbPGetDatum(res);
}

/* Set a jsonb row image of an entry, with its canonical text in texts (from offset). */
static void
audit_set_image(AuditEntry *e, int col, const AuditRelInfo *info, AuditCol *cols, int n,
				TupleTableSlot *slot, StringInfo texts, AuditImage *img, const AuditImage *prev,
				const bool *same)
{
	int			start = texts->len;
	AuditImage	local;

	e->values[col] = audit_cols_jsonb(info, cols, n, slot, texts, img ? img : &local, prev, same);
	e->nulls[col] = false;
	/* Offsets for now: texts may still move as it grows. */
	e->text[col] = (const char *) (uintptr_t) start;
	e->textlen[col] = texts->len - start;
}

/* Turn the offsets of audit_set_image() into pointers, once texts is complete. */
static void
audit_fix_images(AuditEntry *e, StringInfo texts, const int *cols, int ncols)
{
	for (int i = 0; i < ncols; i++)
		e->text[cols[i]] = texts->data + (uintptr_t) e->text[cols[i]];
}

/* Let go of a description pinned by audit_rel_info(); the last user frees a stale one. */
static void
audit_rel_release(AuditRelInfo *info)
{
	Assert(info->pins > 0);
	info->pins--;
	if (info->pins == 0 && info->retired)
		MemoryContextDelete(info->cxt);
}

/* Take a cached description out of the cache: freed now, or by its last user. */
static void
audit_rel_retire(AuditRelEntry *ent)
{
	AuditRelInfo *old = ent->info;

	ent->info = NULL;
	if (old == NULL)
		return;
	old->retired = true;
	if (old->pins == 0)
		MemoryContextDelete(old->cxt);
}

static AuditRelInfo *audit_rel_fill(Relation rel, MemoryContext cxt, Oid pkoid, List *excluded);

/* Build the description of rel for trigger, in a new memory context. */
static AuditRelInfo *
audit_rel_build(Relation rel, Trigger *trigger)
{
	AuditRelInfo *info;
	MemoryContext cxt;
	MemoryContext old;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			pkoid;
	List	   *excluded;
	ListCell   *lc;

	excluded = audit_trigger_excluded(trigger);
	/* Fail closed: an exclusion that names nothing may be a renamed secret column. */
	foreach(lc, excluded)
	{
		const char *name = lfirst(lc);
		bool		hit = false;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
				hit = true;
		}
		if (!hit)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("excluded column \"%s\" of audited table \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errhint("Run crm_security.enable_audit() again with the current column names.")));
	}

	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audited table \"%s\" has no primary key", RelationGetRelationName(rel))));

	cxt = AllocSetContextCreate(CacheMemoryContext, "crm_security audit table",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		info = audit_rel_fill(rel, cxt, pkoid, excluded);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return info;
}

/* The description itself, in cxt (current). */
static AuditRelInfo *
audit_rel_fill(Relation rel, MemoryContext cxt, Oid pkoid, List *excluded)
{
	AuditRelInfo *info;
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	pkrel;
	ListCell   *lc;

	{
		info = palloc0(sizeof(AuditRelInfo));
		info->cxt = cxt;
		info->relid = RelationGetRelid(rel);

		info->qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel));
		info->qualname_text = CStringGetTextDatum(info->qualname);

		pkrel = index_open(pkoid, AccessShareLock);
		info->nkey = pkrel->rd_index->indnkeyatts;
		info->key_attnums = palloc(sizeof(AttrNumber) * info->nkey);
		for (int i = 0; i < info->nkey; i++)
			info->key_attnums[i] = pkrel->rd_index->indkey.values[i];
		index_close(pkrel, AccessShareLock);

		info->row_attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
		info->nrow = 0;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			bool		skip = att->attisdropped;

			foreach(lc, excluded)
				if (strcmp(NameStr(att->attname), (char *) lfirst(lc)) == 0)
					skip = true;
			if (!skip)
				info->row_attnums[info->nrow++] = att->attnum;
		}
		info->row_desc = audit_project_desc(desc, info->row_attnums, info->nrow);
		info->key_cols = audit_make_cols(desc, info->key_attnums, info->nkey, cxt);
		info->row_cols = audit_make_cols(desc, info->row_attnums, info->nrow, cxt);
		info->row_names = palloc(sizeof(Datum) * Max(info->nrow, 1));
		info->row_elems = palloc(sizeof(char *) * Max(info->nrow, 1));
		for (int i = 0; i < info->nrow; i++)
		{
			Form_pg_attribute att = TupleDescAttr(info->row_desc, i);
			ArrayType  *one;
			char	   *s;

			info->row_names[i] = CStringGetTextDatum(NameStr(att->attname));
			/* array_out() itself says how it quotes this name: "{name}" minus the braces. */
			one = construct_array(&info->row_names[i], 1, TEXTOID, -1, false, TYPALIGN_INT);
			s = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(one));
			if (strlen(s) < 2 || s[0] != '{' || s[strlen(s) - 1] != '}')
				elog(ERROR, "unexpected array output \"%s\"", s);
			info->row_elems[i] = pnstrdup(s + 1, strlen(s) - 2);
		}
	}
	return info;
}

/*
 * The description of the audited table rel for trigger, pinned: the caller must call
 * audit_rel_release() when done with it, error or not.
 */
static AuditRelInfo *
audit_rel_info(Relation rel, Trigger *trigger)
{
	AuditRelEntry *ent;
	AuditRelInfo *info;
	bool		found;
	uint64		count;

	if (audit_rel_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(AuditRelEntry);
		audit_rel_cache = hash_create("crm_security audited tables", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS);
	}
	ent = hash_search(audit_rel_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		ent->info = NULL;
	if (ent->info != NULL && ent->info->valid && ent->info->relid == RelationGetRelid(rel))
	{
		ent->info->pins++;
		return ent->info;
	}
	/* Stale: out of the cache now, freed when no running call uses it any more. */
	audit_rel_retire(ent);

	count = audit_rel_inval_count;
	info = audit_rel_build(rel, trigger);
	/*
	 * Building opens the index, which may process invalidations: a description built
	 * across one serves this call only.  The entry is looked up again, as the cache may
	 * have changed meanwhile.
	 */
	info->pins = 1;
	info->valid = (count == audit_rel_inval_count);
	ent = hash_search(audit_rel_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		ent->info = NULL;
	if (info->valid)
	{
		audit_rel_retire(ent);
		ent->info = info;
	}
	else
		info->retired = true;
	return info;
}

/*
 * The changed_columns of an UPDATE, with its text (array_out()'s) appended to texts, and
 * which stored columns kept their value: same[attnum - 1].
 */
static Datum
audit_changed_columns(AuditRelInfo *info, TupleTableSlot *oldslot, TupleTableSlot *newslot,
					  bool *same, StringInfo texts)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(info->nrow, 1));
	int			n = 0;

	slot_getallattrs(oldslot);
	slot_getallattrs(newslot);
	appendStringInfoCharMacro(texts, '{');
	for (int i = 0; i < info->nrow; i++)
	{
		int			a = info->row_attnums[i] - 1;
		Form_pg_attribute att = TupleDescAttr(info->row_desc, i);
		bool		n1 = oldslot->tts_isnull[a];
		bool		n2 = newslot->tts_isnull[a];

		if (n1 || n2)
			same[a] = (n1 && n2);
		else
			same[a] = datum_image_eq(oldslot->tts_values[a], newslot->tts_values[a],
									 att->attbyval, att->attlen);
		if (!same[a])
		{
			if (n > 0)
				appendStringInfoCharMacro(texts, ',');
			appendStringInfoString(texts, info->row_elems[i]);
			names[n++] = info->row_names[i];
		}
	}
	appendStringInfoCharMacro(texts, '}');
	return PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Build and write the entry of one trigger event, with the pinned description info.
 *
 * User code may run while a row image is built (to_jsonb() of a user type calls its cast
 * to json or its output function).  Whatever it does, the entry is built from info
 * alone, which stays as it was (see AuditRelInfo), and its canonical text and hash are
 * computed afterwards from the very values that are stored: nothing user code changes
 * can make them differ.
 */
static void
audit_row_entry(TriggerData *td, AuditRelInfo *info)
{
	Relation	rel = td->tg_relation;
	TriggerEvent ev = td->tg_event;
	AuditEntry	e;
	StringInfoData texts;

	initStringInfo(&texts);
	if (TRIGGER_FIRED_BY_INSERT(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_NEW_ROW};

		audit_entry_init(&e, "row", "INSERT");
		audit_set_image(&e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL);
		audit_set_image(&e, AL_NEW_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						NULL, NULL, NULL);
		audit_fix_images(&e, &texts, images, lengthof(images));
	}
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_OLD_ROW, AL_NEW_ROW, AL_CHANGED_COLUMNS};
		bool	   *same = palloc(sizeof(bool) * Max(RelationGetDescr(rel)->natts, 1));
		AuditImage	old_img;
		int			start;

		audit_entry_init(&e, "row", "UPDATE");
		start = texts.len;
		e.values[AL_CHANGED_COLUMNS] = audit_changed_columns(info, td->tg_trigslot,
															 td->tg_newslot, same, &texts);
		e.nulls[AL_CHANGED_COLUMNS] = false;
		e.text[AL_CHANGED_COLUMNS] = (const char *) (uintptr_t) start;
		e.textlen[AL_CHANGED_COLUMNS] = texts.len - start;
		audit_set_image(&e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL);
		audit_set_image(&e, AL_OLD_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						&old_img, NULL, NULL);
		audit_set_image(&e, AL_NEW_ROW, info, info->row_cols, info->nrow, td->tg_newslot, &texts,
						NULL, &old_img, same);
		audit_fix_images(&e, &texts, images, lengthof(images));
	}
	else if (TRIGGER_FIRED_BY_DELETE(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_OLD_ROW};

		audit_entry_init(&e, "row", "DELETE");
		audit_set_image(&e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL);
		audit_set_image(&e, AL_OLD_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						NULL, NULL, NULL);
		audit_fix_images(&e, &texts, images, lengthof(images));
	}
	else
		audit_entry_init(&e, "row", "TRUNCATE");

	e.values[AL_TABLE_NAME] = info->qualname_text;
	e.nulls[AL_TABLE_NAME] = false;
	audit_insert_entry(&e, true);
}

/* SQL function: audit_trigger() returns trigger */
PG_FUNCTION_INFO_V1(audit_trigger);
Datum
audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	AuditRelInfo *volatile info;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trigger() must be called as a trigger")));
	ev = td->tg_event;
	rel = td->tg_relation;
	if (!TRIGGER_FIRED_AFTER(ev) ||
		(TRIGGER_FIRED_BY_TRUNCATE(ev) ? !TRIGGER_FIRED_FOR_STATEMENT(ev) : !TRIGGER_FIRED_FOR_ROW(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trigger() must fire AFTER each row, or AFTER TRUNCATE for each statement"),
				 errhint("Use crm_security.enable_audit() to create audit triggers.")));

	info = audit_rel_info(rel, td->tg_trigger);
	PG_TRY();
	{
		audit_row_entry(td, info);
	}
	PG_FINALLY();
	{
		audit_rel_release(info);
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}

/* --------------------------------------------------------------------------------------
 * Append-only protection
 * --------------------------------------------------------------------------------------
 */

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
		audit_resolve_rels();
		if (RelationGetRelid(td->tg_relation) == audit_blocks_relid)
		{
			audit_check_block_insert(td);
			return PointerGetDatum(td->tg_trigtuple);
		}
	}

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) && audit_purging)
	{
		audit_resolve_rels();
		if (RelationGetRelid(td->tg_relation) == audit_log_relid)
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

/* --------------------------------------------------------------------------------------
 * enable_audit, disable_audit
 * --------------------------------------------------------------------------------------
 */

static int
audit_cmp_names(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a), (char *) lfirst(b));
}

/* Open a table that may be audited, or raise. */
static Relation
audit_open_target(Datum reloid)
{
	Relation	rel;
	Oid			relid = DatumGetObjectId(reloid);
	char		relkind;

	/* Check ownership before taking a lock that would block the table's writers. */
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), get_rel_name(relid));

	rel = try_relation_open(relid, ShareRowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		char	   *name = pstrdup(RelationGetRelationName(rel));

		relation_close(rel, ShareRowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name)));
	}
	audit_resolve_rels();
	if (relid == audit_log_relid || relid == audit_blocks_relid || relid == audit_purges_relid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot audit the audit log itself")));
	return rel;
}

static char *
audit_qualname(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* The tgargs bytes of an existing trigger of ours, or NULL when there is none. */
static char *
audit_existing_trigger(Oid relid, const char *tgname, bool *exists)
{
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(tgname)};
	Oid			types[2] = {OIDOID, TEXTOID};
	int			rc;

	/* Every operator qualified: this runs under the caller's search_path. */
	rc = SPI_execute_with_args("SELECT pg_catalog.encode(tgargs, 'hex') FROM pg_catalog.pg_trigger "
							   "WHERE tgrelid OPERATOR(pg_catalog.=) $1 "
							   "AND tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name "
							   "AND tgfoid OPERATOR(pg_catalog.=) "
							   "'crm_security.audit_trigger()'::pg_catalog.regprocedure::pg_catalog.oid",
							   2, types, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	*exists = (SPI_processed == 1);
	if (!*exists)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * The TRUNCATE trigger on every partition of a partitioned table (all levels), with the
 * argument arg_literal (want_hex as tgargs); without arg_literal, dropped from them.
 * PostgreSQL clones the row trigger to partitions, but not statement triggers, and
 * TRUNCATE of a partition fires only the partition's own.  Runs under SPI.
 */
static void
audit_partition_triggers(Oid relid, const char *arg_literal, const char *want_hex)
{
	List	   *parts;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;
	parts = find_all_inheritors(relid, ShareRowExclusiveLock, NULL);
	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);
		char		kind = get_rel_relkind(part);
		bool		exists;
		char	   *have;
		char	   *qn;
		StringInfoData q;

		if (part == relid || (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE))
			continue;
		have = audit_existing_trigger(part, "crm_audit_truncate", &exists);
		if (arg_literal == NULL ? !exists :
			(exists && have != NULL && strcmp(have, want_hex) == 0))
			continue;
		qn = quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
										get_rel_name(part));
		initStringInfo(&q);
		if (exists)
			appendStringInfo(&q, "DROP TRIGGER crm_audit_truncate ON %s; ", qn);
		if (arg_literal != NULL)
			appendStringInfo(&q,
							 "CREATE TRIGGER crm_audit_truncate AFTER TRUNCATE ON %s "
							 "FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_trigger(%s)",
							 qn, quote_literal_cstr(arg_literal));
		if (SPI_execute(q.data, false, 0) < 0)
			elog(ERROR, "could not change the audit trigger of a partition");
	}
}

/* SQL function: enable_audit(tbl regclass, exclude_columns text[]) returns void */
PG_FUNCTION_INFO_V1(audit_enable);
Datum
audit_enable(PG_FUNCTION_ARGS)
{
	Relation	rel;
	TupleDesc	desc;
	List	   *excluded = NIL;
	char	   *qualname;
	char	   *arg_literal;
	char	   *want_hex;
	char	   *have_row;
	char	   *have_trunc;
	bool		row_exists;
	bool		trunc_exists;
	Oid			pkoid;
	ListCell   *lc;
	StringInfoData q;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table to audit cannot be null")));
	rel = audit_open_target(PG_GETARG_DATUM(0));
	desc = RelationGetDescr(rel);

	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("Audit entries identify records by their primary key."),
				 errhint("Add a primary key, then enable auditing.")));

	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *enulls;
		int			n;
		Relation	pkrel = index_open(pkoid, AccessShareLock);

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("excluded columns must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *name;
			AttrNumber	attnum = InvalidAttrNumber;

			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("excluded column names cannot be null")));
			name = TextDatumGetCString(elems[i]);
			for (int a = 0; a < desc->natts; a++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, a);

				if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
					attnum = att->attnum;
			}
			if (attnum == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								name, RelationGetRelationName(rel))));
			for (int k = 0; k < pkrel->rd_index->indnkeyatts; k++)
				if (pkrel->rd_index->indkey.values[k] == attnum)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("cannot exclude primary key column \"%s\"", name),
							 errdetail("Audit entries identify records by their primary key.")));
			{
				bool		dup = false;

				foreach(lc, excluded)
					if (strcmp(lfirst(lc), name) == 0)
						dup = true;
				if (!dup)
					excluded = lappend(excluded, name);
			}
		}
		index_close(pkrel, AccessShareLock);
	}
	list_sort(excluded, audit_cmp_names);

	/* The trigger argument: one text[] literal of the sorted names. */
	{
		int			n = list_length(excluded);
		Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
		int			i = 0;

		foreach(lc, excluded)
			elems[i++] = CStringGetTextDatum(lfirst(lc));
		arg_literal = OidOutputFunctionCall(F_ARRAY_OUT,
											PointerGetDatum(construct_array(elems, n, TEXTOID, -1,
																			false, TYPALIGN_INT)));
		want_hex = palloc(strlen(arg_literal) * 2 + 3);
		hex_encode(arg_literal, strlen(arg_literal), want_hex);
		/* tgargs ends each argument with a zero byte */
		strcpy(want_hex + strlen(arg_literal) * 2, "00");
	}

	qualname = audit_qualname(rel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	have_row = audit_existing_trigger(RelationGetRelid(rel), "crm_audit_row", &row_exists);
	have_trunc = audit_existing_trigger(RelationGetRelid(rel), "crm_audit_truncate", &trunc_exists);
	if (row_exists && trunc_exists && have_row && have_trunc &&
		strcmp(have_row, want_hex) == 0 && strcmp(have_trunc, want_hex) == 0)
	{
		/* Already audited exactly so: only partitions added since may lack a trigger. */
		audit_partition_triggers(RelationGetRelid(rel), arg_literal, want_hex);
		SPI_finish();
		relation_close(rel, NoLock);
		PG_RETURN_VOID();
	}

	initStringInfo(&q);
	if (row_exists)
		appendStringInfo(&q, "DROP TRIGGER crm_audit_row ON %s; ", qualname);
	if (trunc_exists)
		appendStringInfo(&q, "DROP TRIGGER crm_audit_truncate ON %s; ", qualname);
	appendStringInfo(&q,
					 "CREATE TRIGGER crm_audit_row AFTER INSERT OR UPDATE OR DELETE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION crm_security.audit_trigger(%s); "
					 "CREATE TRIGGER crm_audit_truncate AFTER TRUNCATE ON %s "
					 "FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_trigger(%s)",
					 qualname, quote_literal_cstr(arg_literal),
					 qualname, quote_literal_cstr(arg_literal));
	if (SPI_execute(q.data, false, 0) < 0)
		elog(ERROR, "could not create audit triggers");
	audit_partition_triggers(RelationGetRelid(rel), arg_literal, want_hex);
	SPI_finish();

	{
		JsonbParseState *st = NULL;
		JsonbValue	k, v;
		JsonbValue *res;

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "exclude_columns";
		k.val.string.len = strlen("exclude_columns");
		pushJsonbValue(&st, WJB_KEY, &k);
		pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
		foreach(lc, excluded)
		{
			v.type = jbvString;
			v.val.string.val = lfirst(lc);
			v.val.string.len = strlen(lfirst(lc));
			pushJsonbValue(&st, WJB_ELEM, &v);
		}
		pushJsonbValue(&st, WJB_END_ARRAY, NULL);
		res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		audit_internal_event("audit.enable", "table", qualname, JsonbValueToJsonb(res));
	}
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* SQL function: disable_audit(tbl regclass) returns void */
PG_FUNCTION_INFO_V1(audit_disable);
Datum
audit_disable(PG_FUNCTION_ARGS)
{
	Relation	rel;
	char	   *qualname;
	bool		row_exists;
	bool		trunc_exists;
	StringInfoData q;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table cannot be null")));
	rel = audit_open_target(PG_GETARG_DATUM(0));
	qualname = audit_qualname(rel);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) audit_existing_trigger(RelationGetRelid(rel), "crm_audit_row", &row_exists);
	(void) audit_existing_trigger(RelationGetRelid(rel), "crm_audit_truncate", &trunc_exists);
	if (row_exists || trunc_exists)
	{
		initStringInfo(&q);
		if (row_exists)
			appendStringInfo(&q, "DROP TRIGGER crm_audit_row ON %s; ", qualname);
		if (trunc_exists)
			appendStringInfo(&q, "DROP TRIGGER crm_audit_truncate ON %s", qualname);
		if (SPI_execute(q.data, false, 0) < 0)
			elog(ERROR, "could not drop audit triggers");
	}
	audit_partition_triggers(RelationGetRelid(rel), NULL, NULL);
	SPI_finish();
	if (row_exists || trunc_exists)
		audit_internal_event("audit.disable", "table", qualname, NULL);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* --------------------------------------------------------------------------------------
 * TRUNCATE of audited relations without a TRUNCATE trigger of their own
 * --------------------------------------------------------------------------------------
 *
 * A partition created or attached after enable_audit() has the row trigger (PostgreSQL
 * clones it) but not the TRUNCATE trigger, so truncating it, directly or through its
 * parent, would go unrecorded.  PostgreSQL tells the object access hook of every relation
 * a TRUNCATE is about to truncate (partitions, ONLY, CASCADE included); the relations
 * of the statement are collected there, and once it has succeeded, each one that has an
 * audit row trigger that fires and no audit TRUNCATE trigger gets its entry.
 */
static bool audit_truncate_collecting = false;
static List *audit_truncated = NIL;

static void
audit_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
					void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_TRUNCATE && classId == RelationRelationId && audit_truncate_collecting)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		audit_truncated = list_append_unique_oid(audit_truncated, objectId);
		MemoryContextSwitchTo(old);
	}
}

/* Whether a trigger fires under the current session_replication_role. */
static bool
audit_trigger_fires(const Trigger *t)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return t->tgenabled == TRIGGER_FIRES_ON_REPLICA || t->tgenabled == TRIGGER_FIRES_ALWAYS;
	return t->tgenabled == TRIGGER_FIRES_ON_ORIGIN || t->tgenabled == TRIGGER_FIRES_ALWAYS;
}

/* Record the truncation of the relations in relids that no trigger of ours recorded. */
static void
audit_record_truncations(List *relids)
{
	Oid			nsp;
	Oid			fn;
	ListCell   *lc;

	if (relids == NIL)
		return;
	nsp = get_namespace_oid("crm_security", true);
	if (!OidIsValid(nsp))
		return;
	fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum("audit_trigger"),
						 PointerGetDatum(buildoidvector(NULL, 0)), ObjectIdGetDatum(nsp));
	if (!OidIsValid(fn))
		return;
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		LOCKTAG		tag;
		Relation	rel;
		bool		row = false;
		bool		trunc = false;

		/*
		 * Truncated relations are locked: one the name lookup saw but did not truncate
		 * (renamed meanwhile) is not.
		 */
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
		if (!LockHeldByMe(&tag, AccessExclusiveLock))
			continue;
		rel = try_relation_open(relid, NoLock);
		if (rel == NULL)
			continue;
		if (rel->trigdesc != NULL)
		{
			for (int i = 0; i < rel->trigdesc->numtriggers; i++)
			{
				const Trigger *t = &rel->trigdesc->triggers[i];

				if (t->tgfoid != fn)
					continue;
				if (TRIGGER_FOR_TRUNCATE(t->tgtype))
					trunc = true;	/* it records the truncation (or was disabled) */
				else if (TRIGGER_FOR_ROW(t->tgtype) && audit_trigger_fires(t))
					row = true;
			}
		}
		if (row && !trunc)
		{
			AuditEntry	e;

			audit_entry_init(&e, "row", "TRUNCATE");
			audit_set_text(&e, AL_TABLE_NAME, audit_qualname(rel));
			audit_insert_entry(&e, false);
		}
		relation_close(rel, NoLock);
	}
}

static void
audit_truncate_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	List	   *volatile saved_list;
	volatile bool saved_collecting;

	if (!IsA(pstmt->utilityStmt, TruncateStmt))
	{
		if (prev_truncate_utility)
			prev_truncate_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								  dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
		return;
	}
	/* A TRUNCATE run by a trigger of this one collects its own relations. */
	saved_list = audit_truncated;
	saved_collecting = audit_truncate_collecting;
	audit_truncated = NIL;
	audit_truncate_collecting = true;
	PG_TRY();
	{
		if (prev_truncate_utility)
			prev_truncate_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								  dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
		audit_truncate_collecting = false;
		audit_record_truncations(audit_truncated);
	}
	PG_FINALLY();
	{
		audit_truncated = saved_list;
		audit_truncate_collecting = saved_collecting;
	}
	PG_END_TRY();
}

/* --------------------------------------------------------------------------------------
 * log_event
 * --------------------------------------------------------------------------------------
 */

static char *
audit_text_arg(FunctionCallInfo fcinfo, int argno, const char *what, int maxlen, bool required)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("audit event %s cannot be null", what)));
		return NULL;
	}
	t = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(t);
	if (required && len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event %s cannot be empty", what)));
	if (len > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event %s is too long", what),
				 errdetail("The limit is %d bytes; it has %d.", maxlen, len)));
	return text_to_cstring(t);
}

/* SQL function: log_event(action text, resource_type text, resource_id text, result text, metadata jsonb) returns bigint */
PG_FUNCTION_INFO_V1(audit_log_event);
Datum
audit_log_event(PG_FUNCTION_ARGS)
{
	AuditEntry	e;
	char	   *action;
	char	   *rtype;
	char	   *rid;
	char	   *result;

	/* The entry is written below the executor, which would otherwise check this. */
	PreventCommandIfReadOnly("log_event()");
	action = audit_text_arg(fcinfo, 0, "action", AUDIT_MAX_NAME, true);
	rtype = audit_text_arg(fcinfo, 1, "resource type", AUDIT_MAX_NAME, false);
	rid = audit_text_arg(fcinfo, 2, "resource id", AUDIT_MAX_RESOURCE_ID, false);
	result = audit_text_arg(fcinfo, 3, "result", AUDIT_MAX_NAME, false);

	audit_entry_init(&e, "event", action);
	audit_set_text(&e, AL_RESOURCE_TYPE, rtype);
	audit_set_text(&e, AL_RESOURCE_ID, rid);
	audit_set_text(&e, AL_RESULT, result);
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *md = PG_GETARG_JSONB_P(4);

		if (VARSIZE(md) > AUDIT_MAX_METADATA)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("audit event metadata is too large"),
					 errdetail("The limit is %d bytes.", AUDIT_MAX_METADATA)));
		e.values[AL_METADATA] = JsonbPGetDatum(md);
		e.nulls[AL_METADATA] = false;
	}
	PG_RETURN_INT64(audit_insert_entry(&e, false));
}

/* --------------------------------------------------------------------------------------
 * Sealing
 * --------------------------------------------------------------------------------------
 */

typedef struct AuditSealState
{
	AuditBlock	b;
	pg_cryptohash_ctx *ctx;
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
	st->ctx = pg_cryptohash_create(PG_SHA256);
	if (st->ctx == NULL || pg_cryptohash_init(st->ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s", pg_cryptohash_error(st->ctx));
}

static void
audit_seal_close(AuditSealState *st, int64 txid_hi)
{
	uint8		bhash[AUDIT_HASH_LEN];
	Datum		args[8];
	Oid			types[8] = {INT8OID, BYTEAOID, INT8OID, INT8OID, INT8OID, BYTEAOID,
	TIMESTAMPTZOID, BYTEAOID};

	if (pg_cryptohash_final(st->ctx, st->b.entries_hash, AUDIT_HASH_LEN) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(st->ctx));
	pg_cryptohash_free(st->ctx);
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

static void
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
			if (pg_cryptohash_update(st.ctx, (uint8 *) VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h)) < 0)
				elog(ERROR, "could not update SHA-256: %s", pg_cryptohash_error(st.ctx));
			st.b.entry_count++;
			cur_txid = txid;
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	if (open)
		audit_seal_close(&st, horizon);
	SPI_finish();
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

/* --------------------------------------------------------------------------------------
 * Verification
 * --------------------------------------------------------------------------------------
 */

#define AUDIT_ENTRY_COLUMNS \
	"id, txid, logged_at, kind, table_name, operation, record_key, old_row, new_row, " \
	"changed_columns, resource_type, resource_id, result, metadata, actor_type, actor_id, " \
	"tenant_id, db_user, request_id, client_addr, entry_hash"

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
audit_bytea_eq(Datum d, bool isnull, const uint8 *h)
{
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
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
	bool		isnull;
	int64		purged_through = 0;
	int64		expect_id = 1;
	int64		prev_hi = 0;
	uint8		prev_hash[AUDIT_HASH_LEN];
	bool		digest_found = false;
	pg_cryptohash_ctx *ctx = NULL;

	memset(prev_hash, 0, AUDIT_HASH_LEN);
	memset(&ec, 0, sizeof(ec));
	r->ok = true;
	r->blocks = r->entries = 0;
	r->bad_block = -1;
	r->detail = NULL;

	if (SPI_execute("SELECT COALESCE(pg_catalog.max(purged_through_block), 0) FROM crm_security.audit_purges",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read audit purges");
	purged_through = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

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
										  "SELECT " AUDIT_ENTRY_COLUMNS " FROM crm_security.audit_log "
										  "ORDER BY txid, id",
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
			if (!audit_bytea_eq(bv[1], false, prev_hash))
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
			if (!audit_bytea_eq(bv[7], false, bhash))
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

				ctx = pg_cryptohash_create(PG_SHA256);
				if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
					elog(ERROR, "could not initialize SHA-256");
				while (have_entry && DatumGetInt64(ec.values[AL_TXID]) < b.txid_hi)
				{
					r->entries++;
					if (!audit_entry_ok(&ec, ehash))
						AUDIT_BAD(b.block_id, "entry %lld does not match its hash (entry modified)",
								  (long long) DatumGetInt64(ec.values[AL_ID]));
					if (pg_cryptohash_update(ctx, ehash, AUDIT_HASH_LEN) < 0)
						elog(ERROR, "could not update SHA-256");
					count++;
					have_entry = audit_cursor_next(&ec);
				}
				if (pg_cryptohash_final(ctx, root, AUDIT_HASH_LEN) < 0)
					elog(ERROR, "could not finish SHA-256");
				pg_cryptohash_free(ctx);
				ctx = NULL;
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
	if (ctx != NULL)
		pg_cryptohash_free(ctx);
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
	if (SPI_execute_with_args("SELECT " AUDIT_ENTRY_COLUMNS " FROM crm_security.audit_log WHERE id OPERATOR(pg_catalog.=) $1",
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

/* --------------------------------------------------------------------------------------
 * Retention
 * --------------------------------------------------------------------------------------
 */

/* SQL function: purge_audit_log(older_than interval) returns bigint */
PG_FUNCTION_INFO_V1(audit_purge);
Datum
audit_purge(PG_FUNCTION_ARGS)
{
	Interval   *older_than = PG_GETARG_INTERVAL_P(0);
	Interval	zero;
	TimestampTz cutoff;
	int64		purged_through;
	int64		through;
	int64		txid_hi;
	int64		deleted;
	bool		isnull;
	Datum		args[4];
	Oid			types[4];

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
	if (SPI_execute("SELECT COALESCE(pg_catalog.max(purged_through_block), 0) FROM crm_security.audit_purges",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read audit purges");
	purged_through = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* The longest run of blocks after the last purge that were all sealed before the cutoff. */
	args[0] = Int64GetDatum(purged_through);
	args[1] = TimestampTzGetDatum(cutoff);
	types[0] = INT8OID;
	types[1] = TIMESTAMPTZOID;
	if (SPI_execute_with_args("SELECT b.block_id, b.txid_hi FROM crm_security.audit_blocks b "
							  "WHERE b.block_id OPERATOR(pg_catalog.>) $1 AND b.block_id OPERATOR(pg_catalog.<) "
							  "COALESCE((SELECT pg_catalog.min(block_id) FROM crm_security.audit_blocks "
							  "WHERE block_id OPERATOR(pg_catalog.>) $1 AND sealed_at OPERATOR(pg_catalog.>=) $2), "
							  "9223372036854775807) ORDER BY b.block_id DESC LIMIT 1",
							  2, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read audit blocks");
	if (SPI_processed == 0)
	{
		SPI_finish();
		PG_RETURN_INT64(0);
	}
	through = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	txid_hi = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	args[0] = Int64GetDatum(txid_hi);
	types[0] = INT8OID;
	audit_purging = true;
	PG_TRY();
	{
		if (SPI_execute_with_args("DELETE FROM crm_security.audit_log WHERE txid OPERATOR(pg_catalog.<) $1",
								  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete audit entries");
	}
	PG_FINALLY();
	{
		audit_purging = false;
	}
	PG_END_TRY();
	deleted = (int64) SPI_processed;

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

	{
		char	   *md = psprintf("{\"purged_through_block\": " INT64_FORMAT ", \"entries_deleted\": " INT64_FORMAT "}",
								  through, deleted);

		audit_internal_event("audit.purge", "audit_log", NULL,
							 DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(md))));
	}
	PG_RETURN_INT64(deleted);
}
