/*
 * shmem_table.h
 *		Fixed-size shared hash tables with per-entry spinlocks and eviction
 *		(shmem_table.c): the state behind rate_limit(), the nonces of verify_request() and
 *		the lockout of register_failed_attempt().
 */
#ifndef CRM_SHMEM_TABLE_H
#define CRM_SHMEM_TABLE_H

#include "datatype/timestamp.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/hsearch.h"

#define SHT_DIGEST_LEN 16

/* Entries are found by database and a digest of the caller's text (never the text). */
typedef struct ShtKey
{
	Oid			dbid;
	uint8		digest[SHT_DIGEST_LEN];
} ShtKey;

typedef struct ShtEntry
{
	ShtKey		key;			/* hash key: first */
	slock_t		mutex;			/* guards everything below */
	/*
	 * Nanoseconds since 2000-01-01 UTC from which the entry holds no information any more
	 * (an idle rate-limit key, a nonce out of its window, a lockout that ended): such an
	 * entry is removed first when the table is full.
	 */
	int64		idle_at;
	bool		keep;			/* may not be evicted before idle_at */
	int64		v[3];			/* the owner's state */
} ShtEntry;

typedef struct ShtTable
{
	const char *name;			/* shared memory name, also the LWLock tranche */
	int			slots;			/* entries it holds (set by a setting before startup) */
	LWLock	   *lock;			/* shared: use an entry; exclusive: add or remove */
	HTAB	   *htab;
} ShtTable;

/* Register a table (from _PG_init, while preloading only); sht_install_hooks() makes them. */
extern void sht_register(ShtTable *t);
extern void sht_install_hooks(void);

/* Whether the table exists (the library was preloaded). */
extern bool sht_ready(const ShtTable *t);

/* The key of `data` in the current database, under `domain` (so tables cannot collide). */
extern void sht_key(ShtKey *key, const char *domain, const char *data, size_t len);

/*
 * The entry for `key`, with the table's lock held (shared, or exclusive after an insert)
 * until sht_release(); NULL when missing and `create` is false, or when the table is full
 * of entries that may not be evicted.  A new entry has idle_at 0, keep false, v zeroed.
 * `now` (ns) decides which entries are idle.  Take the entry's spinlock to use it.
 */
extern ShtEntry *sht_acquire(ShtTable *t, const ShtKey *key, bool create, int64 now, bool *found);
extern void sht_release(ShtTable *t);

/* Remove an entry (takes the lock exclusively itself); whether there was one. */
extern bool sht_remove(ShtTable *t, const ShtKey *key);

/* The current time in nanoseconds since 2000-01-01 UTC. */
extern int64 sht_now_ns(void);

/* An interval as nanoseconds (months as 30 days); 22023 naming `what` unless 0 < it <= max. */
extern int64 sht_interval_ns(const Interval *iv, const char *what, int64 max_ns,
							 const char *max_text);

#define SHT_NS_PER_US INT64CONST(1000)
#define SHT_NS_PER_SEC INT64CONST(1000000000)

#endif							/* CRM_SHMEM_TABLE_H */
