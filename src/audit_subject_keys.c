/*
 * audit_subject_keys.c
 *		The data keys of data subjects (crypto-shredding, docs/privacy.md): one random
 *		AES-256 key per (tenant, subject) in crm_security.audit_subject_keys, created on
 *		first use, wrapped under a key-encryption key derived from the entry key, cached for
 *		the transaction; and forget_subject(), which destroys one.
 *
 * The table is owned by the extension's owner and not readable by PUBLIC: the writer and
 * the reader reach it through SQL run as its owner.  A key row holds the key wrapped with
 * AES-256-GCM under the KEK, the tenant and subject as associated data, so a dump of the
 * table is useless without the entry key file, and a wrapped key copied to another
 * subject's row does not unwrap.
 *
 * Concurrent first writes for one subject agree on one key: INSERT ... ON CONFLICT DO
 * NOTHING on the unique (tenant_id, subject) waits for the other inserter, and the loser
 * reads the winner's row.  The cache lives in the transaction's memory and is dropped
 * when a subtransaction aborts (a key inserted there is gone), so no session ever keeps
 * a key past its transaction: once forget_subject() commits, no backend can encrypt or
 * decrypt with the destroyed key again.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "crm_security.h"

#include "audit_entry.h"
#include "audit_key.h"
#include "audit_subject_keys.h"
#include "crypto.h"

#define KEK_LABEL "crm_security.subject_kek.v1"
#define WRAP_AAD "crm_security.subject_key.v1"
#define WRAPPED_LEN (CRM_GCM_NONCE_LEN + CRM_GCM_KEY_LEN + CRM_GCM_TAG_LEN)

/* Cache entries: by (tenant, subject) and by key id, in the transaction's memory. */
typedef struct SubjectKey
{
	int64		key_id;
	uint8		key[CRM_GCM_KEY_LEN];
} SubjectKey;

typedef struct ByName
{
	uint8		name[CRM_SHA256_LEN];	/* hash key: see name_key() */
	SubjectKey	k;
} ByName;

typedef struct ById
{
	int64		key_id;
	bool		found;
	uint8		key[CRM_GCM_KEY_LEN];
} ById;

static HTAB *by_name = NULL;
static HTAB *by_id = NULL;

/* The key table, its unique index on (tenant_id, subject) and its owner, per transaction. */
static Oid	keys_relid = InvalidOid;
static Oid	keys_index = InvalidOid;
static Oid	keys_owner = InvalidOid;
static bool callbacks_registered = false;

static SPIPlanPtr plan_select_t = NULL;	/* tenant_id = $1 */
static SPIPlanPtr plan_select_n = NULL;	/* tenant_id IS NULL */
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_by_id = NULL;

void
audit_subject_keys_reset(void)
{
	/* The tables live in the transaction's memory, freed with it. */
	if (by_name != NULL)
		hash_destroy(by_name);
	if (by_id != NULL)
		hash_destroy(by_id);
	by_name = NULL;
	by_id = NULL;
}

static void
subject_keys_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		/* The memory goes with TopTransactionContext; only the pointers remain. */
		by_name = NULL;
		by_id = NULL;
		keys_relid = InvalidOid;
		crm_aes_gcm_forget();
	}
}

static void
subject_keys_subxact(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		audit_subject_keys_reset();
		crm_aes_gcm_forget();
	}
}

static void
subject_keys_init(void)
{
	HASHCTL		ctl;

	if (!callbacks_registered)
	{
		RegisterXactCallback(subject_keys_xact, NULL);
		RegisterSubXactCallback(subject_keys_subxact, NULL);
		callbacks_registered = true;
	}
	if (by_name != NULL)
		return;
	ctl.hcxt = TopTransactionContext;
	ctl.keysize = sizeof(((ByName *) 0)->name);
	ctl.entrysize = sizeof(ByName);
	by_name = hash_create("crm_security subject keys", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ById);
	by_id = hash_create("crm_security subject keys by id", 64, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * The key-encryption key: HKDF-Expand(entry key, KEK_LABEL, 32), one HMAC block; kept for
 * the life of the backend, as the entry key is.
 */
static uint8 kek_cache[CRM_GCM_KEY_LEN];
static bool kek_cached = false;

static void
subject_kek(uint8 *kek)
{
	static const char info[] = KEK_LABEL "\x01";

	if (!kek_cached)
	{
		audit_key_mac(info, sizeof(info) - 1, kek_cache);
		kek_cached = true;
	}
	memcpy(kek, kek_cache, CRM_GCM_KEY_LEN);
}

/* The associated data of a wrapped key: its tenant and subject, length-prefixed. */
static char *
wrap_aad(const char *tenant, const char *subject, int *len)
{
	StringInfoData s;

	char		num[MAXINT8LEN + 1];
	size_t		sublen = strlen(subject);

	/* WRAP_AAD "\ntenant_id=<len>:<tenant>" (or "~") "\nsubject=<len>:<subject>", by hand. */
	initStringInfo(&s);
	appendBinaryStringInfo(&s, WRAP_AAD "\ntenant_id=", sizeof(WRAP_AAD "\ntenant_id=") - 1);
	if (tenant == NULL)
		appendStringInfoCharMacro(&s, '~');
	else
	{
		size_t		tlen = strlen(tenant);

		appendBinaryStringInfo(&s, num, pg_lltoa((int64) tlen, num));
		appendStringInfoCharMacro(&s, ':');
		appendBinaryStringInfo(&s, tenant, tlen);
	}
	appendBinaryStringInfo(&s, "\nsubject=", 9);
	appendBinaryStringInfo(&s, num, pg_lltoa((int64) sublen, num));
	appendStringInfoCharMacro(&s, ':');
	appendBinaryStringInfo(&s, subject, sublen);
	*len = s.len;
	return s.data;
}

static bool
unwrap_key(const char *tenant, const char *subject, bytea *wrapped, uint8 *key)
{
	uint8		kek[CRM_GCM_KEY_LEN];
	const uint8 *w = (const uint8 *) VARDATA_ANY(wrapped);
	char	   *aad;
	int			aadlen;
	bool		ok;

	if (VARSIZE_ANY_EXHDR(wrapped) != WRAPPED_LEN)
		return false;
	subject_kek(kek);
	aad = wrap_aad(tenant, subject, &aadlen);
	ok = crm_aes_gcm_decrypt(kek, w, (const uint8 *) aad, aadlen,
							 w + CRM_GCM_NONCE_LEN, CRM_GCM_KEY_LEN,
							 w + CRM_GCM_NONCE_LEN + CRM_GCM_KEY_LEN, key);
	explicit_bzero(kek, sizeof(kek));
	return ok;
}

static bytea *
wrap_key(const char *tenant, const char *subject, const uint8 *key)
{
	uint8		kek[CRM_GCM_KEY_LEN];
	bytea	   *out = palloc(VARHDRSZ + WRAPPED_LEN);
	uint8	   *w = (uint8 *) VARDATA(out);
	char	   *aad;
	int			aadlen;

	SET_VARSIZE(out, VARHDRSZ + WRAPPED_LEN);
	if (!pg_strong_random(w, CRM_GCM_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	subject_kek(kek);
	aad = wrap_aad(tenant, subject, &aadlen);
	crm_aes_gcm_encrypt(kek, w, (const uint8 *) aad, aadlen, key, CRM_GCM_KEY_LEN,
						w + CRM_GCM_NONCE_LEN, w + CRM_GCM_NONCE_LEN + CRM_GCM_KEY_LEN);
	explicit_bzero(kek, sizeof(kek));
	return out;
}

static void
unwrap_failed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("a data key of crm_security.audit_subject_keys does not unwrap"),
			 errdetail("The key was wrapped under another entry key, or its row was altered."),
			 errhint("Restore the entry key file of the cluster the keys come from.")));
}

static SPIPlanPtr
keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}

/* Run SQL on the key table as its owner (callers have no privilege on it). */
typedef struct AsOwner
{
	Oid			save_userid;
	int			save_sec;
} AsOwner;

Oid
audit_rel_owner(Oid relid)
{
	return crm_rel_owner(relid);
}

static void
keys_lookup(void)
{
	Oid			nsp;

	if (OidIsValid(keys_relid))
		return;
	nsp = get_namespace_oid("crm_security", false);
	keys_index = get_relname_relid("audit_subject_keys_subject_key", nsp);
	keys_owner = audit_rel_owner(get_relname_relid("audit_subject_keys", nsp));
	keys_relid = get_relname_relid("audit_subject_keys", nsp);
	if (!OidIsValid(keys_relid) || !OidIsValid(keys_index))
	{
		keys_relid = InvalidOid;
		elog(ERROR, "relation crm_security.audit_subject_keys or its unique index is missing");
	}
}

static void
as_owner_begin(AsOwner *s)
{
	keys_lookup();
	GetUserIdAndSecContext(&s->save_userid, &s->save_sec);
	SetUserIdAndSecContext(keys_owner, s->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

static void
as_owner_end(AsOwner *s)
{
	SetUserIdAndSecContext(s->save_userid, s->save_sec);
}

static void
check_subject(const char *subject)
{
	size_t		len = strlen(subject);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id cannot be empty")));
	if (len > AUDIT_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id is too long"),
				 errdetail("The limit is %d bytes.", AUDIT_SUBJECT_MAX)));
}

/* The hash key of (tenant, subject): SHA-256 of their unambiguous encoding. */
static void
name_key(uint8 *out, const char *tenant, const char *subject)
{
	char	   *aad;
	int			len;

	aad = wrap_aad(tenant, subject, &len);
	crm_sha256(aad, len, out);
	pfree(aad);
}

/* Look the key up (SPI connected, as owner); false when there is none. */
static bool
select_key(const char *tenant, const char *subject, SubjectKey *out)
{
	Datum		args[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	SPIPlanPtr	p;
	bool		isnull;
	int64		id;
	bytea	   *w;

	if (tenant != NULL)
	{
		p = keep_plan(&plan_select_t,
					  "SELECT key_id, wrapped_key FROM crm_security.audit_subject_keys "
					  "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND subject OPERATOR(pg_catalog.=) $2",
					  2, types);
		args[0] = CStringGetTextDatum(tenant);
		args[1] = CStringGetTextDatum(subject);
	}
	else
	{
		p = keep_plan(&plan_select_n,
					  "SELECT key_id, wrapped_key FROM crm_security.audit_subject_keys "
					  "WHERE tenant_id IS NULL AND subject OPERATOR(pg_catalog.=) $1",
					  1, types);
		args[0] = CStringGetTextDatum(subject);
	}
	if (SPI_execute_plan(p, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm_security.audit_subject_keys");
	if (SPI_processed == 0)
		return false;
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	w = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull || !unwrap_key(tenant, subject, w, out->key))
		unwrap_failed();
	out->key_id = id;
	return true;
}

/*
 * The cheap path of a lookup: one probe of the unique index on (tenant_id, subject), no SQL
 * (no plan, no executor, no role switch: the extension reads its own table).  Under the
 * snapshot a statement would take, so it sees what a SELECT run here would.  False when
 * there is no key yet; the caller then creates it through SQL (INSERT ... ON CONFLICT).
 */
static bool
probe_key(const char *tenant, const char *subject, SubjectKey *out)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData sk[2];
	Snapshot	snap;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		found = false;

	keys_lookup();
	rel = table_open(keys_relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	/* Attributes: key_id 1, tenant_id 2, subject 3, wrapped_key 4 (sql/65_privacy.sql). */
	if (tenant != NULL)
		ScanKeyInit(&sk[0], 2, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(tenant));
	else
		ScanKeyEntryInitialize(&sk[0], SK_ISNULL | SK_SEARCHNULL, 2, InvalidStrategy,
							   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	sk[0].sk_collation = TupleDescAttr(desc, 1)->attcollation;
	ScanKeyInit(&sk[1], 3, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(subject));
	sk[1].sk_collation = TupleDescAttr(desc, 2)->attcollation;
	snap = RegisterSnapshot(GetTransactionSnapshot());
	scan = systable_beginscan(rel, keys_index, true, snap, 2, sk);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		w;

		out->key_id = DatumGetInt64(heap_getattr(tup, 1, desc, &isnull));
		w = heap_getattr(tup, 4, desc, &isnull);
		if (isnull || !unwrap_key(tenant, subject, DatumGetByteaPP(w), out->key))
			unwrap_failed();
		found = true;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/* Create the key (or read the one a concurrent transaction made first) through SQL. */
static void
create_key(const char *tenant, const char *subject, SubjectKey *kp)
{
	SubjectKey	k;
	AsOwner		own;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	as_owner_begin(&own);
	PG_TRY();
	{
		Datum		args[3];
		char		nulls[3] = {tenant ? ' ' : 'n', ' ', ' '};
		Oid			types[3] = {TEXTOID, TEXTOID, BYTEAOID};
		SPIPlanPtr	p;
		bool		isnull;

		if (!pg_strong_random(k.key, CRM_GCM_KEY_LEN))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes")));
		p = keep_plan(&plan_insert,
					  "INSERT INTO crm_security.audit_subject_keys (tenant_id, subject, wrapped_key) "
					  "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING key_id",
					  3, types);
		args[0] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
		args[1] = CStringGetTextDatum(subject);
		args[2] = PointerGetDatum(wrap_key(tenant, subject, k.key));
		if (SPI_execute_plan(p, args, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not write crm_security.audit_subject_keys");
		if (SPI_processed == 1)
			k.key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
		/* Another transaction made it first (and committed): use that one. */
		else if (!select_key(tenant, subject, &k))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create the data key of a data subject"),
					 errdetail("A concurrent transaction created and removed it."),
					 errhint("Retry the transaction.")));
	}
	PG_FINALLY();
	{
		as_owner_end(&own);
	}
	PG_END_TRY();
	SPI_finish();
	*kp = k;
	explicit_bzero(&k, sizeof(k));
}

int64
audit_subject_key(const char *tenant, const char *subject, uint8 *key)
{
	uint8		name[CRM_SHA256_LEN];
	ByName	   *ent;
	bool		found;
	SubjectKey	k;

	check_subject(subject);
	subject_keys_init();
	name_key(name, tenant, subject);
	ent = hash_search(by_name, name, HASH_FIND, NULL);
	if (ent != NULL)
	{
		memcpy(key, ent->k.key, CRM_GCM_KEY_LEN);
		return ent->k.key_id;
	}

	if (!probe_key(tenant, subject, &k))
		create_key(tenant, subject, &k);

	ent = hash_search(by_name, name, HASH_ENTER, &found);
	ent->k = k;
	{
		ById	   *b = hash_search(by_id, &k.key_id, HASH_ENTER, &found);

		b->found = true;
		memcpy(b->key, k.key, CRM_GCM_KEY_LEN);
	}
	memcpy(key, k.key, CRM_GCM_KEY_LEN);
	explicit_bzero(&k, sizeof(k));
	return ent->k.key_id;
}

bool
audit_subject_key_by_id(int64 key_id, uint8 *key)
{
	ById	   *ent;
	bool		found;
	volatile bool have = false;
	AsOwner		own;
	uint8		k[CRM_GCM_KEY_LEN];

	subject_keys_init();
	ent = hash_search(by_id, &key_id, HASH_FIND, NULL);
	if (ent != NULL)
	{
		if (ent->found)
			memcpy(key, ent->key, CRM_GCM_KEY_LEN);
		return ent->found;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	as_owner_begin(&own);
	PG_TRY();
	{
		Oid			types[1] = {INT8OID};
		Datum		args[1] = {Int64GetDatum(key_id)};
		SPIPlanPtr	p;

		p = keep_plan(&plan_by_id,
					  "SELECT tenant_id, subject, wrapped_key FROM crm_security.audit_subject_keys "
					  "WHERE key_id OPERATOR(pg_catalog.=) $1",
					  1, types);
		if (SPI_execute_plan(p, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read crm_security.audit_subject_keys");
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *tenant = SPI_getvalue(tup, desc, 1);
			char	   *subject = SPI_getvalue(tup, desc, 2);
			bool		isnull;
			Datum		w = SPI_getbinval(tup, desc, 3, &isnull);

			if (isnull || subject == NULL ||
				!unwrap_key(tenant, subject, DatumGetByteaPP(w), k))
				unwrap_failed();
			have = true;
		}
	}
	PG_FINALLY();
	{
		as_owner_end(&own);
	}
	PG_END_TRY();
	SPI_finish();
	ent = hash_search(by_id, &key_id, HASH_ENTER, &found);
	ent->found = have;
	if (have)
	{
		memcpy(ent->key, k, CRM_GCM_KEY_LEN);
		memcpy(key, k, CRM_GCM_KEY_LEN);
	}
	explicit_bzero(k, sizeof(k));
	return have;
}

/* How many entries hold values under key_id (SPI connected, as owner). */
static int64
count_entries(int64 key_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	char		pat[64];

	/* Every envelope of the key begins so (docs/privacy.md, "Envelope"). */
	snprintf(pat, sizeof(pat), "\"crm1." INT64_FORMAT ".", key_id);
	args[0] = CStringGetTextDatum(pat);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM crm_security.audit_log "
							  "WHERE pg_catalog.strpos(old_row::pg_catalog.text, $1) OPERATOR(pg_catalog.>) 0 "
							  "OR pg_catalog.strpos(new_row::pg_catalog.text, $1) OPERATOR(pg_catalog.>) 0 "
							  "OR pg_catalog.strpos(metadata::pg_catalog.text, $1) OPERATOR(pg_catalog.>) 0",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm_security.audit_log");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* SQL function: forget_subject(tenant_id text, subject text) returns bigint */
PG_FUNCTION_INFO_V1(audit_forget_subject);
Datum
audit_forget_subject(PG_FUNCTION_ARGS)
{
	char	   *tenant = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *subject;
	volatile int64 entries = 0;
	volatile int64 keys = 0;
	AsOwner		own;
	JsonbParseState *st = NULL;
	JsonbValue	k,
				v;

	PreventCommandIfReadOnly("forget_subject()");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id cannot be null")));
	subject = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_subject(subject);
	if (tenant != NULL && strlen(tenant) > AUDIT_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id is too long"),
				 errdetail("The limit is %d bytes.", AUDIT_SUBJECT_MAX)));

	/* Nothing of this transaction may keep the key. */
	audit_subject_keys_reset();
	crm_aes_gcm_forget();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	as_owner_begin(&own);
	PG_TRY();
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		args[2];
		uint64		n;

		args[0] = tenant ? CStringGetTextDatum(tenant) : CStringGetTextDatum(subject);
		args[1] = CStringGetTextDatum(subject);
		if (SPI_execute_with_args(tenant != NULL ?
								  "DELETE FROM crm_security.audit_subject_keys "
								  "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND subject OPERATOR(pg_catalog.=) $2 "
								  "RETURNING key_id" :
								  "DELETE FROM crm_security.audit_subject_keys "
								  "WHERE tenant_id IS NULL AND subject OPERATOR(pg_catalog.=) $1 "
								  "RETURNING key_id",
								  tenant ? 2 : 1, types, args, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not delete from crm_security.audit_subject_keys");
		n = SPI_processed;
		keys = (int64) n;
		if (n > 0)
		{
			int64	   *ids = palloc(sizeof(int64) * n);
			bool		isnull;

			for (uint64 i = 0; i < n; i++)
				ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
			for (uint64 i = 0; i < n; i++)
				entries += count_entries(ids[i]);
		}
	}
	PG_FINALLY();
	{
		as_owner_end(&own);
	}
	PG_END_TRY();
	SPI_finish();
	audit_subject_keys_reset();

	/* The event names the subject and the tenant, nothing of their data. */
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "entries";
	k.val.string.len = 7;
	pushJsonbValue(&st, WJB_KEY, &k);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(entries);
	pushJsonbValue(&st, WJB_VALUE, &v);
	k.val.string.val = "keys_destroyed";
	k.val.string.len = 14;
	pushJsonbValue(&st, WJB_KEY, &k);
	v.val.numeric = int64_to_numeric(keys);
	pushJsonbValue(&st, WJB_VALUE, &v);
	k.val.string.val = "subject_tenant_id";
	k.val.string.len = 17;
	pushJsonbValue(&st, WJB_KEY, &k);
	if (tenant != NULL)
	{
		v.type = jbvString;
		v.val.string.val = tenant;
		v.val.string.len = strlen(tenant);
	}
	else
		v.type = jbvNull;
	pushJsonbValue(&st, WJB_VALUE, &v);
	audit_internal_event("audit.forget", "subject", subject,
						 JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
	PG_RETURN_INT64(entries);
}
