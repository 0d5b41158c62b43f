/*
 * security_events.c
 *		Refused tokens and API keys since server start, by reason and key id, from every
 *		session (view auth_failures), and one structured server-log line per refusal.
 *
 * A refusal raises and rolls back its transaction, so it cannot write a row; shared memory
 * keeps the count.  The counters are a small fixed-size shared hash (database, kind, reason,
 * key id) with one spinlock per entry; when it is full, a refusal is counted in one overflow
 * counter (shown as reason "other" without a key id) rather than dropped.  Without
 * shared_preload_libraries the view is empty and the log line is all there is.
 *
 * The key id is the API key's id once its row is found, else the display prefix of a
 * well-formed key (about 36 of its bits: not enough to use it), else nothing; for tokens
 * nothing (the "kid" header is chosen by whoever sent the token).  Every value in the log
 * line is reduced to [A-Za-z0-9_.:-] so that a line cannot be forged through it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "security_events.h"

#define AF_KIND_LEN 8
#define AF_REASON_LEN 16
#define AF_KEYID_LEN 40
#define AF_SLOTS 1024
#define AF_NAME "crm_security auth failures"

typedef struct AuthFailKey
{
	Oid			dbid;
	char		kind[AF_KIND_LEN];
	char		reason[AF_REASON_LEN];
	char		key_id[AF_KEYID_LEN];
} AuthFailKey;

typedef struct AuthFailEntry
{
	AuthFailKey key;
	slock_t		mutex;
	int64		count;
	TimestampTz last_at;
} AuthFailEntry;

typedef struct AuthFailShared
{
	LWLock	   *lock;
	slock_t		mutex;
	int64		overflow;
	TimestampTz overflow_at;
} AuthFailShared;

static bool af_armed = false;
static AuthFailShared *af_shared = NULL;
static HTAB *af_htab = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
af_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AuthFailShared)) +
						   hash_estimate_size(AF_SLOTS, sizeof(AuthFailEntry)));
	RequestNamedLWLockTranche(AF_NAME, 1);
}

static void
af_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	af_shared = ShmemInitStruct(AF_NAME, sizeof(AuthFailShared), &found);
	if (!found)
	{
		af_shared->lock = &(GetNamedLWLockTranche(AF_NAME))->lock;
		SpinLockInit(&af_shared->mutex);
		af_shared->overflow = 0;
		af_shared->overflow_at = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(AuthFailKey);
	info.entrysize = sizeof(AuthFailEntry);
	af_htab = ShmemInitHash(AF_NAME " table", AF_SLOTS, AF_SLOTS, &info,
							HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

void
authfail_init(void)
{
	af_armed = true;
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = af_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = af_shmem_startup;
}

/* `src` reduced to [A-Za-z0-9_.:-], at most size - 1 bytes, into dst. */
static void
af_clean(char *dst, const char *src, int size)
{
	int			i = 0;

	for (; src != NULL && *src != '\0' && i < size - 1; src++)
	{
		char		c = *src;

		dst[i++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
					c == '_' || c == '.' || c == ':' || c == '-') ? c : '?';
	}
	dst[i] = '\0';
}

static void
af_count(const AuthFailKey *key, TimestampTz now)
{
	AuthFailEntry *e;
	bool		found;

	LWLockAcquire(af_shared->lock, LW_SHARED);
	e = hash_search(af_htab, key, HASH_FIND, NULL);
	if (e == NULL)
	{
		LWLockRelease(af_shared->lock);
		LWLockAcquire(af_shared->lock, LW_EXCLUSIVE);
		e = hash_search(af_htab, key, HASH_ENTER_NULL, &found);
		if (e != NULL && !found)
		{
			SpinLockInit(&e->mutex);
			e->count = 0;
			e->last_at = 0;
		}
	}
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		e->count++;
		e->last_at = now;
		SpinLockRelease(&e->mutex);
	}
	else
	{
		SpinLockAcquire(&af_shared->mutex);
		af_shared->overflow++;
		af_shared->overflow_at = now;
		SpinLockRelease(&af_shared->mutex);
	}
	LWLockRelease(af_shared->lock);
}

void
authfail_report(const char *kind, const char *reason, const char *key_id)
{
	AuthFailKey key;
	char		client[64];

	if (!af_armed)
		return;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	af_clean(key.kind, kind, AF_KIND_LEN);
	af_clean(key.reason, reason, AF_REASON_LEN);
	af_clean(key.key_id, key_id, AF_KEYID_LEN);
	{
		/* inet_client_addr(): NULL over a Unix socket. */
		LOCAL_FCINFO(cf, 0);
		Datum		addr;

		InitFunctionCallInfoData(*cf, NULL, 0, InvalidOid, NULL, NULL);
		addr = inet_client_addr(cf);
		af_clean(client, cf->isnull ? "local" : DatumGetCString(DirectFunctionCall1(inet_out, addr)),
				 sizeof(client));
	}
	if (af_htab != NULL)
		af_count(&key, GetCurrentTimestamp());
	ereport(LOG,
			(errmsg("crm_security auth_failure kind=%s reason=%s key_id=%s client=%s",
					key.kind, key.reason, key.key_id[0] ? key.key_id : "-", client),
			 errhidestmt(true), errhidecontext(true)));
}

void
authfail_report_token(const char *detail)
{
	const char *reason;

	if (!af_armed)
		return;
	if (detail == NULL)
		reason = "malformed";
	else if (strstr(detail, "expired") != NULL)
		reason = "expired";
	else if (strstr(detail, "not valid before") != NULL)
		reason = "not_yet_valid";
	else if (strstr(detail, "signature does not match") != NULL)
		reason = "bad_signature";
	else if (strstr(detail, "issuer") != NULL)
		reason = "issuer";
	else if (strstr(detail, "audience") != NULL || strstr(detail, "\"aud\"") != NULL)
		reason = "audience";
	else if (strstr(detail, "algorithm") != NULL)
		reason = "algorithm";
	else if (strstr(detail, "key") != NULL)
		reason = "unknown_key";
	else
		reason = "malformed";
	authfail_report("token", reason, NULL);
}

/*
 * SQL function: _auth_failures() returns table(kind text, reason text, key_id text,
 *		failures bigint, last_at timestamptz)
 * The counters of the current database (view auth_failures).
 */
PG_FUNCTION_INFO_V1(crm_auth_failures);
Datum
crm_auth_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	AuthFailEntry *e;
	Datum		values[5];
	bool		nulls[5];
	int64		overflow;
	TimestampTz overflow_at;

	InitMaterializedSRF(fcinfo, 0);
	if (af_htab == NULL)
		PG_RETURN_NULL();
	LWLockAcquire(af_shared->lock, LW_SHARED);
	hash_seq_init(&seq, af_htab);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		AuthFailKey key = e->key;
		int64		count;
		TimestampTz at;

		if (key.dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&e->mutex);
		count = e->count;
		at = e->last_at;
		SpinLockRelease(&e->mutex);
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(key.kind);
		values[1] = CStringGetTextDatum(key.reason);
		nulls[2] = key.key_id[0] == '\0';
		values[2] = nulls[2] ? (Datum) 0 : CStringGetTextDatum(key.key_id);
		values[3] = Int64GetDatum(count);
		values[4] = TimestampTzGetDatum(at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(af_shared->lock);
	SpinLockAcquire(&af_shared->mutex);
	overflow = af_shared->overflow;
	overflow_at = af_shared->overflow_at;
	SpinLockRelease(&af_shared->mutex);
	if (overflow > 0)
	{
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum("any");
		values[1] = CStringGetTextDatum("other");
		nulls[2] = true;
		values[2] = (Datum) 0;
		values[3] = Int64GetDatum(overflow);
		values[4] = TimestampTzGetDatum(overflow_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}
