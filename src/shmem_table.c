/*
 * shmem_table.c
 *		Fixed-size shared hash tables for state that must be shared by every session and
 *		survive the rollback of the transaction that changed it: rate-limit keys
 *		(ratelimit.c), seen nonces (request_sign.c) and failed attempts (lockout.c).
 *
 * Each table is a dynahash in shared memory of a fixed number of entries
 * (HASH_FIXED_SIZE: it never takes more shared memory than it asked for at start), with one
 * LWLock: held shared to find and use an entry, exclusive to add or remove one.  An entry's
 * state is changed under its own spinlock, so that sessions using different entries, or the
 * same one, never wait for each other longer than a few instructions.
 *
 * When the table is full, a new entry makes room: first every idle entry (one whose state
 * no longer matters: idle_at has passed) is removed; if none is idle, the entries nearest to
 * becoming idle that may be evicted (keep false) go, about a sixteenth of the spread at a
 * time so that the scan is paid rarely.  Entries marked keep (an unexpired nonce, a current
 * lockout) are never evicted early: forgetting them would let a replay or a locked-out
 * subject in; the caller gets NULL and refuses instead.
 *
 * Keys are a SHA-256 digest (truncated to 128 bits) of the caller's text, prefixed by the
 * table's domain, and the database: the text itself (a user name, an API key id) is never
 * in shared memory, and its length does not matter.
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "crypto.h"
#include "shmem_table.h"

#define SHT_MAX_TABLES 4

static ShtTable *sht_tables[SHT_MAX_TABLES];
static int	sht_ntables = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void
sht_register(ShtTable *t)
{
	if (sht_ntables >= SHT_MAX_TABLES)
		elog(ERROR, "too many shared tables");
	sht_tables[sht_ntables++] = t;
}

static void
sht_shmem_request(void)
{
	int			i;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (i = 0; i < sht_ntables; i++)
	{
		RequestAddinShmemSpace(hash_estimate_size(sht_tables[i]->slots, sizeof(ShtEntry)));
		RequestNamedLWLockTranche(sht_tables[i]->name, 1);
	}
}

static void
sht_shmem_startup(void)
{
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (i = 0; i < sht_ntables; i++)
	{
		ShtTable   *t = sht_tables[i];
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(ShtKey);
		info.entrysize = sizeof(ShtEntry);
		t->htab = ShmemInitHash(t->name, t->slots, t->slots, &info,
								HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
		t->lock = &(GetNamedLWLockTranche(t->name))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
sht_install_hooks(void)
{
	if (!process_shared_preload_libraries_in_progress || sht_ntables == 0)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sht_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sht_shmem_startup;
}

bool
sht_ready(const ShtTable *t)
{
	return t->htab != NULL;
}

void
sht_key(ShtKey *key, const char *domain, const char *data, size_t len)
{
	CrmSha256Stream *s = crm_sha256_begin();
	unsigned char d[CRM_SHA256_LEN];

	crm_sha256_update(s, domain, strlen(domain) + 1);
	crm_sha256_update(s, data, len);
	crm_sha256_final(s, d);
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	memcpy(key->digest, d, SHT_DIGEST_LEN);
}

/* Make room in a full table; the exclusive lock is held. */
static void
sht_evict(ShtTable *t, int64 now)
{
	HASH_SEQ_STATUS seq;
	ShtEntry   *e;
	int64		lo = PG_INT64_MAX,
				hi = PG_INT64_MIN,
				cut;
	long		removed = 0;
	bool		any = false;

	hash_seq_init(&seq, t->htab);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		/* Removing the entry just returned is allowed during a scan. */
		if (e->idle_at <= now)
		{
			hash_search(t->htab, &e->key, HASH_REMOVE, NULL);
			removed++;
		}
		else if (!e->keep)
		{
			any = true;
			lo = Min(lo, e->idle_at);
			hi = Max(hi, e->idle_at);
		}
	}
	if (removed > 0 || !any)
		return;
	cut = lo + (hi - lo) / 16;
	hash_seq_init(&seq, t->htab);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (!e->keep && e->idle_at <= cut)
			hash_search(t->htab, &e->key, HASH_REMOVE, NULL);
}

ShtEntry *
sht_acquire(ShtTable *t, const ShtKey *key, bool create, int64 now, bool *found)
{
	ShtEntry   *e;

	*found = false;
	LWLockAcquire(t->lock, LW_SHARED);
	e = hash_search(t->htab, key, HASH_FIND, NULL);
	if (e != NULL || !create)
	{
		*found = e != NULL;
		return e;
	}
	LWLockRelease(t->lock);
	LWLockAcquire(t->lock, LW_EXCLUSIVE);
	e = hash_search(t->htab, key, HASH_ENTER_NULL, found);
	if (e == NULL)
	{
		sht_evict(t, now);
		e = hash_search(t->htab, key, HASH_ENTER_NULL, found);
	}
	if (e != NULL && !*found)
	{
		SpinLockInit(&e->mutex);
		e->idle_at = 0;
		e->keep = false;
		memset(e->v, 0, sizeof(e->v));
	}
	return e;
}

void
sht_release(ShtTable *t)
{
	LWLockRelease(t->lock);
}

bool
sht_remove(ShtTable *t, const ShtKey *key)
{
	bool		found;

	LWLockAcquire(t->lock, LW_EXCLUSIVE);
	hash_search(t->htab, key, HASH_REMOVE, &found);
	LWLockRelease(t->lock);
	return found;
}

int64
sht_now_ns(void)
{
	return (int64) GetCurrentTimestamp() * SHT_NS_PER_US;
}

int64
sht_interval_ns(const Interval *iv, const char *what, int64 max_ns, const char *max_text)
{
	/* In microseconds first, bounded well inside int64 before scaling to nanoseconds. */
	int64		us;

	if (iv->month < 0 || iv->month > 12 || iv->day < 0 || iv->day > 400 ||
		iv->time < -INT64CONST(400) * USECS_PER_DAY || iv->time > INT64CONST(400) * USECS_PER_DAY)
		us = -1;
	else
		us = iv->time + (int64) iv->day * USECS_PER_DAY + (int64) iv->month * 30 * USECS_PER_DAY;
	if (us <= 0 || us > max_ns / SHT_NS_PER_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive and at most %s", what, max_text)));
	return us * SHT_NS_PER_US;
}
