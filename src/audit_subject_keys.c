/*
 * audit_subject_keys.c
 *		The data keys of data subjects (crypto-shredding, docs/privacy.md): one random
 *		AES-256 key per (tenant, subject) in crm_security.audit_subject_keys, created on
 *		first use, wrapped under a key-encryption key derived from the entry key, cached for
 *		the transaction (forget_subject(), which destroys one, is in audit_forget.c).
 *
 * The table is owned by the extension's owner and not readable by PUBLIC: the extension
 * reads and writes it itself, never through its callers' privileges.  A key is found by
 * one probe of the unique index on (tenant_id, subject), without SQL; a new one is
 * inserted without SQL as well (audit_subject_insert.c), and read back by id through SQL
 * run as the table's owner.  A key row holds the key wrapped with AES-256-GCM under the
 * KEK, the tenant and subject as associated data, so a dump of the table is useless
 * without the entry key file, and a wrapped key copied to another subject's row does not
 * unwrap.
 *
 * Concurrent first writes for one subject agree on one key: the insertion is speculative,
 * as INSERT ... ON CONFLICT DO NOTHING on the unique (tenant_id, subject) is; it waits for
 * the other inserter, and the loser reads the winner's row.  The caches live in the
 * transaction's memory and is dropped when a subtransaction aborts (a key inserted there
 * is gone), so no session ever keeps a key past its transaction: once forget_subject()
 * commits, no backend can encrypt or decrypt with the destroyed key again.
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
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "crm_security.h"

#include "audit_key.h"
#include "audit_subject_insert.h"
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

/*
 * The key of a by-name entry: (tenant, subject) encoded by name_ref(), compared in full,
 * and its hash under a seed drawn once per backend (so that nobody can choose subject ids
 * whose hashes collide).  In an entry, name points to a copy in the cache's memory.
 */
typedef struct NameRef
{
	uint64		hash;
	const char *name;
	int			len;
} NameRef;

typedef struct ByName
{
	NameRef		ref;			/* hash key */
	bool		ready;			/* k is set */
	SubjectKey	k;
} ByName;

typedef struct ById
{
	int64		key_id;
	bool		found;
	uint8		key[CRM_GCM_KEY_LEN];
} ById;

static HTAB *by_name = NULL;
static MemoryContext by_name_cxt = NULL;	/* by_name and the names of its entries */
static Size by_name_bytes = 0;	/* the names the entries of by_name hold */
static HTAB *by_id = NULL;
static uint64 subject_keys_resets = 0;	/* counts the times they were dropped */

/* The key table, its unique index on (tenant_id, subject) and its owner, per transaction. */
static Oid	keys_relid = InvalidOid;
static Oid	keys_index = InvalidOid;
static Oid	keys_seq = InvalidOid;
static Oid	keys_owner = InvalidOid;
static bool callbacks_registered = false;

static SPIPlanPtr plan_by_id = NULL;

/*
 * The caches hold at most this many keys each: a transaction that writes or reads the
 * values of more subjects (an import of a million contacts) starts each cache afresh when
 * it is full, so that its memory stays bounded; a subject met again costs one probe.
 */
#define SUBJECT_KEYS_CACHED 65536
/* ... and by_name at most this many bytes of names (subject ids may be 1 kB long). */
#define SUBJECT_NAMES_CACHED (8 * 1024 * 1024)

/* Wipe the keys of a cache, which is about to be freed. */
static void
wipe_cache(HTAB *t, Size entrysize)
{
	HASH_SEQ_STATUS st;
	void	   *e;

	if (t == NULL)
		return;
	hash_seq_init(&st, t);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		/* Subject ids can be personal data too. */
		if (t == by_name)
			explicit_bzero((char *) ((ByName *) e)->ref.name, ((ByName *) e)->ref.len);
		explicit_bzero(e, entrysize);
	}
	if (t == by_name)
		by_name_bytes = 0;
}

static void
destroy_cache(HTAB **t, Size entrysize)
{
	if (*t == NULL)
		return;
	wipe_cache(*t, entrysize);
	hash_destroy(*t);
	if (*t == by_name)
	{
		MemoryContextDelete(by_name_cxt);
		by_name_cxt = NULL;
	}
	*t = NULL;
	/* An entry a caller holds is gone (see audit_subject_key()). */
	subject_keys_resets++;
}

void
audit_subject_keys_reset(void)
{
	destroy_cache(&by_name, sizeof(ByName));
	destroy_cache(&by_id, sizeof(ById));
	subject_keys_resets++;
}

static void
subject_keys_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		/* The memory goes with TopTransactionContext; the keys are wiped first. */
		wipe_cache(by_name, sizeof(ByName));
		wipe_cache(by_id, sizeof(ById));
		by_name = NULL;
		by_name_cxt = NULL;
		by_id = NULL;
		subject_keys_resets++;
		keys_relid = InvalidOid;
		audit_subject_insert_xact_end();
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

static uint32
name_hash(const void *key, Size keysize)
{
	return (uint32) ((const NameRef *) key)->hash;
}

static int
name_match(const void *a, const void *b, Size keysize)
{
	const NameRef *x = (const NameRef *) a;
	const NameRef *y = (const NameRef *) b;

	return x->hash == y->hash && x->len == y->len &&
		memcmp(x->name, y->name, x->len) == 0 ? 0 : 1;
}

/*
 * The by-name key of (tenant, subject), encoded unambiguously into buf ("~" for no tenant,
 * else the tenant's length, a colon and the tenant; then a newline and the subject): both
 * were checked, so it fits.
 */
#define NAME_BUF (2 * AUDIT_SUBJECT_MAX + MAXINT8LEN + 4)

static void
name_ref(const char *tenant, const char *subject, char *buf, NameRef *ref)
{
	static uint64 seed = 0;
	static bool seeded = false;
	char	   *p = buf;
	size_t		sublen = strlen(subject);

	if (!seeded)
	{
		crm_random_pooled((unsigned char *) &seed, sizeof(seed));
		seeded = true;
	}
	if (tenant == NULL)
		*p++ = '~';
	else
	{
		size_t		tlen = strlen(tenant);

		p += pg_lltoa((int64) tlen, p);
		*p++ = ':';
		memcpy(p, tenant, tlen);
		p += tlen;
	}
	*p++ = '\n';
	memcpy(p, subject, sublen);
	p += sublen;
	ref->name = buf;
	ref->len = p - buf;
	ref->hash = hash_bytes_extended((const unsigned char *) buf, ref->len, seed);
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
	/* Either full: that one starts afresh. */
	if (by_name != NULL && (hash_get_num_entries(by_name) >= SUBJECT_KEYS_CACHED ||
							by_name_bytes >= SUBJECT_NAMES_CACHED))
		destroy_cache(&by_name, sizeof(ByName));
	if (by_id != NULL && hash_get_num_entries(by_id) >= SUBJECT_KEYS_CACHED)
		destroy_cache(&by_id, sizeof(ById));
	ctl.hcxt = TopTransactionContext;
	if (by_name == NULL)
	{
		/* Its own memory, with the names, so that starting afresh frees them. */
		by_name_cxt = AllocSetContextCreate(TopTransactionContext, "crm_security subject keys",
											ALLOCSET_DEFAULT_SIZES);
		ctl.hcxt = by_name_cxt;
		ctl.keysize = sizeof(NameRef);
		ctl.entrysize = sizeof(ByName);
		ctl.hash = name_hash;
		ctl.match = name_match;
		by_name = hash_create("crm_security subject keys", 64, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		by_name_bytes = 0;
		ctl.hcxt = TopTransactionContext;
	}
	if (by_id == NULL)
	{
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(ById);
		by_id = hash_create("crm_security subject keys by id", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
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

/*
 * AES-256-GCM under the KEK: crypto.c keeps the context keyed (only the nonce changes
 * between two wrappings) until the end of the transaction.
 */

/* Unwrap a data key into key; false when it does not unwrap under this aad. */
static bool
unwrap_key(const char *aad, int aadlen, bytea *wrapped, uint8 *key)
{
	const uint8 *w = (const uint8 *) VARDATA_ANY(wrapped);
	uint8		kek[CRM_GCM_KEY_LEN];
	bool		ok;

	if (VARSIZE_ANY_EXHDR(wrapped) != WRAPPED_LEN)
		return false;
	subject_kek(kek);
	ok = crm_aes_gcm_decrypt(kek, CRM_GCM_KEK, w, (const uint8 *) aad, aadlen, w + CRM_GCM_NONCE_LEN,
							 CRM_GCM_KEY_LEN, w + CRM_GCM_NONCE_LEN + CRM_GCM_KEY_LEN, key);
	explicit_bzero(kek, sizeof(kek));
	if (!ok)
		explicit_bzero(key, CRM_GCM_KEY_LEN);
	return ok;
}

/* Wrap a data key: nonce, ciphertext, tag, with aad (its tenant and subject). */
static bytea *
wrap_key(const char *aad, int aadlen, const uint8 *key)
{
	bytea	   *out = palloc(VARHDRSZ + WRAPPED_LEN);
	uint8	   *w = (uint8 *) VARDATA(out);
	uint8		kek[CRM_GCM_KEY_LEN];

	SET_VARSIZE(out, VARHDRSZ + WRAPPED_LEN);
	crm_random_pooled(w, CRM_GCM_NONCE_LEN);
	subject_kek(kek);
	crm_aes_gcm_encrypt(kek, CRM_GCM_KEK, w, (const uint8 *) aad, aadlen, key, CRM_GCM_KEY_LEN,
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


static void
keys_lookup(void)
{
	Oid			nsp;

	if (OidIsValid(keys_relid))
		return;
	nsp = get_namespace_oid("crm_security", false);
	keys_index = get_relname_relid("audit_subject_keys_subject_key", nsp);
	keys_seq = get_relname_relid("audit_subject_keys_id_seq", nsp);
	keys_owner = crm_rel_owner(get_relname_relid("audit_subject_keys", nsp));
	keys_relid = get_relname_relid("audit_subject_keys", nsp);
	if (!OidIsValid(keys_relid) || !OidIsValid(keys_index) || !OidIsValid(keys_seq))
	{
		keys_relid = InvalidOid;
		elog(ERROR, "relation crm_security.audit_subject_keys or its unique index is missing");
	}
}

void
audit_keys_as_owner_begin(AuditKeysAsOwner *s)
{
	keys_lookup();
	GetUserIdAndSecContext(&s->save_userid, &s->save_sec);
	SetUserIdAndSecContext(keys_owner, s->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
audit_keys_as_owner_end(AuditKeysAsOwner *s)
{
	SetUserIdAndSecContext(s->save_userid, s->save_sec);
}

void
audit_check_subject(const char *subject, const char *tenant)
{
	size_t		len;

	if (subject == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id cannot be null")));
	len = strlen(subject);

	if (tenant != NULL && strlen(tenant) > AUDIT_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id is too long"),
				 errdetail("The limit is %d bytes.", AUDIT_SUBJECT_MAX)));

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

/*
 * The cheap path of a lookup: one probe of the unique index on (tenant_id, subject), no SQL
 * (no plan, no executor, no role switch: the extension reads its own table).  Under the
 * snapshot a statement would take, so it sees what a SELECT run here would.  False when
 * there is no key yet; the caller then creates it (create_key()).
 *
 * The relations stay locked to the end of the transaction, as a statement leaves them:
 * the next probe finds its locks held.  The snapshot is registered only when no statement
 * is running: otherwise the running statement's snapshot, registered, keeps this
 * backend's xmin at or below the new one's for the few microseconds of the probe, and
 * nothing in the probe takes another snapshot.
 */
static bool
probe_key(const char *tenant, const char *subject, const char *aad, int aadlen,
		  SubjectKey *out)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData sk[2];
	Snapshot	snap;
	bool		registered;
	bool		found = false;
	int64		key_id = 0;
	bool		wrapped_ok = false;
	uint8		wrapped[VARHDRSZ + WRAPPED_LEN];

	keys_lookup();
	rel = table_open(keys_relid, AccessShareLock);
	idx = index_open(keys_index, AccessShareLock);
	/* Index columns: tenant_id 1, subject 2; table: key_id 1, wrapped_key 4. */
	if (tenant != NULL)
		ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(tenant));
	else
		ScanKeyEntryInitialize(&sk[0], SK_ISNULL | SK_SEARCHNULL, 1, InvalidStrategy,
							   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	sk[0].sk_collation = idx->rd_indcollation[0];
	ScanKeyInit(&sk[1], 2, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(subject));
	sk[1].sk_collation = idx->rd_indcollation[1];

	snap = GetTransactionSnapshot();
	registered = !ActiveSnapshotSet();
	if (registered)
		snap = RegisterSnapshot(snap);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snap, 2, 0);
	index_rescan(scan, sk, 2, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		w;

		found = true;
		key_id = DatumGetInt64(slot_getattr(slot, 1, &isnull));
		w = slot_getattr(slot, 4, &isnull);
		/* Copied out: nothing that can fail runs while the buffer is pinned. */
		if (!isnull && VARSIZE_ANY_EXHDR(DatumGetPointer(w)) == WRAPPED_LEN)
		{
			SET_VARSIZE(wrapped, VARHDRSZ + WRAPPED_LEN);
			memcpy(VARDATA(wrapped), VARDATA_ANY(DatumGetPointer(w)), WRAPPED_LEN);
			wrapped_ok = true;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	if (registered)
		UnregisterSnapshot(snap);
	index_close(idx, NoLock);
	table_close(rel, NoLock);

	if (found)
	{
		if (!wrapped_ok || !unwrap_key(aad, aadlen, (bytea *) wrapped, out->key))
			unwrap_failed();
		out->key_id = key_id;
	}
	explicit_bzero(wrapped, sizeof(wrapped));
	return found;
}

/*
 * Create the key of (tenant, subject), or read the one another transaction made first
 * (true when it was made here): the row is inserted without SQL (audit_subject_insert.c),
 * or through SQL when the table has what the direct path does not do.
 */
static bool
create_key(const char *tenant, const char *subject, const char *aad, int aadlen,
		   SubjectKey *kp)
{
	SubjectKey	k;
	bytea	   *wrapped;
	bytea	   *theirs = NULL;
	bool		made;

	crm_random_pooled(k.key, CRM_GCM_KEY_LEN);
	wrapped = wrap_key(aad, aadlen, k.key);
	keys_lookup();
	made = audit_subject_insert(keys_relid, keys_seq, keys_index, tenant, subject,
								wrapped, &k.key_id, &theirs);
	if (!made)
	{
		/* Another transaction made it first: its key. */
		if (theirs == NULL || !unwrap_key(aad, aadlen, theirs, k.key))
			unwrap_failed();
		pfree(theirs);
	}
	pfree(wrapped);
	*kp = k;
	explicit_bzero(&k, sizeof(k));
	return made;
}

/*
 * Subjects that are not cached tend to be all new (an import of new contacts) or all known
 * (a re-import, updates): after NEW_STREAK keys in a row had to be made, a lookup goes
 * straight to the insertion, whose own look at the unique index finds a key that exists,
 * so that a new subject costs one descent of that index instead of two; the first key
 * found that way (at the price of a key made and wrapped for nothing, and of the
 * insertion's dead row) ends the streak.
 */
#define NEW_STREAK 8
static int	new_streak = 0;

static void
find_or_create_key(const char *tenant, const char *subject, const char *aad, int aadlen,
				   SubjectKey *k)
{
	if (new_streak < NEW_STREAK && probe_key(tenant, subject, aad, aadlen, k))
		new_streak = 0;
	else if (create_key(tenant, subject, aad, aadlen, k))
		new_streak = Min(new_streak + 1, NEW_STREAK);
	else
		new_streak = 0;
}

/* The by-name entry of ref, made (with a copy of its name) if there is none. */
static ByName *
name_entry(NameRef *ref)
{
	bool		found;
	ByName	   *ent = hash_search(by_name, ref, HASH_ENTER, &found);
	char	   *name;

	if (found)
		return ent;
	/* The entry points to the caller's buffer until it has its copy, or is gone. */
	name = MemoryContextAllocExtended(by_name_cxt, ref->len, MCXT_ALLOC_NO_OOM);
	if (name == NULL)
	{
		(void) hash_search(by_name, ref, HASH_REMOVE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	memcpy(name, ref->name, ref->len);
	ent->ref.name = name;
	ent->ready = false;
	by_name_bytes += ref->len;
	return ent;
}

int64
audit_subject_key(const char *tenant, const char *subject, uint8 *key)
{
	char		buf[NAME_BUF];
	NameRef		ref;
	char	   *aad;
	int			aadlen;
	uint64		resets;
	ByName	   *ent;
	SubjectKey	k;

	audit_check_subject(subject, tenant);
	subject_keys_init();
	name_ref(tenant, subject, buf, &ref);
	/*
	 * The entry is made at once, and marked ready only once its key is known, so that an
	 * error below leaves an entry that is looked up again next time.  Keys are not entered
	 * in by_id: a writer seldom reads what it wrote, and audit_subject_key_by_id() finds
	 * them.
	 */
	ent = name_entry(&ref);
	if (ent->ready)
	{
		explicit_bzero(buf, ref.len);
		memcpy(key, ent->k.key, CRM_GCM_KEY_LEN);
		return ent->k.key_id;
	}
	resets = subject_keys_resets;

	aad = wrap_aad(tenant, subject, &aadlen);
	find_or_create_key(tenant, subject, aad, aadlen, &k);
	pfree(aad);

	/* SQL run by the fallback insert can reset the tables (a subtransaction's abort). */
	if (resets != subject_keys_resets)
	{
		subject_keys_init();
		ent = name_entry(&ref);
	}
	explicit_bzero(buf, ref.len);
	ent->k = k;
	ent->ready = true;
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
	AuditKeysAsOwner own;
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
	audit_keys_as_owner_begin(&own);
	PG_TRY();
	{
		Oid			types[1] = {INT8OID};
		Datum		args[1] = {Int64GetDatum(key_id)};
		SPIPlanPtr	p;

		p = crm_keep_plan(&plan_by_id,
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

			char	   *aad;
			int			aadlen;

			if (isnull || subject == NULL)
				unwrap_failed();
			aad = wrap_aad(tenant, subject, &aadlen);
			if (!unwrap_key(aad, aadlen, DatumGetByteaPP(w), k))
				unwrap_failed();
			have = true;
		}
	}
	PG_FINALLY();
	{
		audit_keys_as_owner_end(&own);
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
