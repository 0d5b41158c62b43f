/*
 * apikey_usage.c
 *		Use counts and rate limits of API keys: what verify_api_key() counts,
 *		api_key_usage(), flush_api_key_usage().
 *
 * A use must stay counted when the caller's transaction rolls back (a refusal later in the
 * request usually raises), and concurrent verifications of one key must not wait for each
 * other.  A table can do neither: its row would be locked until the caller's commit, and
 * the increment would roll back with it.  So, when the library is preloaded
 * (shared_preload_libraries), the counters live in a fixed-size shared hash table keyed by
 * database and key id, each entry under its own spinlock; a verification holds the table's
 * lock in shared mode only to find its entry.  The limits are checked and the use counted
 * in one step under the entry's spinlock, so they are exact under any concurrency.
 *
 * The table crm_security.api_key_usage keeps the counters across restarts: an entry is
 * loaded from it on first use, and written back (absolute values, so a rolled-back write
 * loses nothing: the next one writes them again) at most every
 * crm_security.api_key_usage_flush_interval seconds by the verification that finds the
 * interval over, with FOR UPDATE SKIP LOCKED so that nobody waits for it, and by
 * flush_api_key_usage().  A crash or restart loses the uses since the last write.
 *
 * Without preloading, the counters are the table's row, updated in the caller's
 * transaction: exact for committed transactions, but a use rolls back with its
 * transaction, and concurrent verifications of one key wait for each other's commit (the
 * row lock).  docs/api-keys.md says so.  The same happens to a key that finds the shared
 * table full (crm_security.api_key_usage_slots).
 */
#include "postgres.h"

#include "executor/spi.h"
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

#include "crm_security.h"

#include "apikey_usage.h"
#include "ratelimit.h"
#include "shmem_table.h"

typedef struct ApiKeyUsageKey
{
	Oid			dbid;
	pg_uuid_t	id;
} ApiKeyUsageKey;

typedef struct ApiKeyUsageEntry
{
	ApiKeyUsageKey key;			/* hash key: first */
	slock_t		mutex;
	int64		use_count;		/* every use since the key was created */
	TimestampTz last_used_at;	/* 0: never */
	bool		has_ip;
	char		last_ip[sizeof(inet)];
	int64		minute;			/* current minute window (minutes since 2000-01-01 UTC) */
	int32		minute_count;
	int64		day;			/* current day window (UTC days since 2000-01-01) */
	int32		day_count;
	TimestampTz next_flush;		/* when the entry is next written to the table */
} ApiKeyUsageEntry;

typedef struct ApiKeyUsageShared
{
	LWLock	   *lock;			/* shared: find an entry; exclusive: add one */
} ApiKeyUsageShared;

#define APIKEY_TRANCHE "crm_security_api_key_usage"

static int	apikey_usage_slots = 10000;
static int	apikey_usage_flush_interval = 10;

static ApiKeyUsageShared *apikey_shared = NULL;
static HTAB *apikey_hash_table = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
apikey_usage_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ApiKeyUsageShared)) +
						   hash_estimate_size(apikey_usage_slots, sizeof(ApiKeyUsageEntry)));
	RequestNamedLWLockTranche(APIKEY_TRANCHE, 1);
}

static void
apikey_usage_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	apikey_shared = ShmemInitStruct("crm_security api key usage",
									sizeof(ApiKeyUsageShared), &found);
	if (!found)
		apikey_shared->lock = &(GetNamedLWLockTranche(APIKEY_TRANCHE))->lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ApiKeyUsageKey);
	info.entrysize = sizeof(ApiKeyUsageEntry);
	apikey_hash_table = ShmemInitHash("crm_security api key usage table",
									  apikey_usage_slots, apikey_usage_slots,
									  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
apikey_usage_init(void)
{
	DefineCustomIntVariable("crm_security.api_key_usage_flush_interval",
							"Seconds between writes of an API key's shared use counters to api_key_usage.",
							"Uses counted since the last write are lost in a crash or restart.",
							&apikey_usage_flush_interval, 10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("crm_security.api_key_usage_slots",
							"API keys whose use counters shared memory holds (needs shared_preload_libraries).",
							"A key beyond these is counted in its table row, in the caller's transaction.",
							&apikey_usage_slots, 10000, 100, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = apikey_usage_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = apikey_usage_shmem_startup;
}

bool
apikey_usage_shared(void)
{
	return apikey_hash_table != NULL;
}

/* ----------------------------------------------------------------
 * SQL statements, prepared once per backend
 * ---------------------------------------------------------------- */

/* Columns of the usage row written by both modes: $1 key, then $2.. as below. */
static Oid	apikey_row_types[] = {UUIDOID, INT8OID, TIMESTAMPTZOID, INETOID,
	TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT4OID};

/* Table mode: count one use in the row (created if missing); returns the window counts. */
static const char *apikey_count_sql =
"INSERT INTO crm_security.api_key_usage AS u"
"  (key_id, use_count, last_used_at, last_used_ip, minute_start, minute_count, day_start, day_count)"
" VALUES ($1, 1, $2, $3, $4, 1, $5, 1)"
" ON CONFLICT (key_id) DO UPDATE SET"
"  use_count = u.use_count OPERATOR(pg_catalog.+) 1,"
"  last_used_at = $2, last_used_ip = $3,"
"  minute_count = CASE WHEN u.minute_start OPERATOR(pg_catalog.=) $4"
"                 THEN u.minute_count OPERATOR(pg_catalog.+) 1 ELSE 1 END,"
"  minute_start = $4,"
"  day_count = CASE WHEN u.day_start OPERATOR(pg_catalog.=) $5"
"              THEN u.day_count OPERATOR(pg_catalog.+) 1 ELSE 1 END,"
"  day_start = $5"
" RETURNING u.minute_count, u.day_count";

/* Shared mode: the stored counters, loaded into a new entry. */
static const char *apikey_load_sql =
"SELECT u.use_count, u.last_used_at, u.last_used_ip, u.minute_start, u.minute_count,"
"       u.day_start, u.day_count"
"  FROM crm_security.api_key_usage AS u WHERE u.key_id OPERATOR(pg_catalog.=) $1";

/*
 * Shared mode: write an entry's counters back.  Absolute values, never lower than what is
 * stored; a row another transaction is writing is skipped (its writer has newer values or
 * the next flush will).
 */
static const char *apikey_flush_sql_skip =
"UPDATE crm_security.api_key_usage AS u SET"
"  use_count = $2, last_used_at = $3, last_used_ip = $4,"
"  minute_start = $5, minute_count = $6, day_start = $7, day_count = $8"
" WHERE u.key_id OPERATOR(pg_catalog.=) (SELECT v.key_id FROM crm_security.api_key_usage AS v"
"        WHERE v.key_id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED)"
"   AND u.use_count OPERATOR(pg_catalog.<) $2";
static const char *apikey_flush_sql_wait =
"UPDATE crm_security.api_key_usage AS u SET"
"  use_count = $2, last_used_at = $3, last_used_ip = $4,"
"  minute_start = $5, minute_count = $6, day_start = $7, day_count = $8"
" WHERE u.key_id OPERATOR(pg_catalog.=) $1 AND u.use_count OPERATOR(pg_catalog.<) $2";

static SPIPlanPtr apikey_count_plan = NULL;
static SPIPlanPtr apikey_load_plan = NULL;
static SPIPlanPtr apikey_flush_skip_plan = NULL;
static SPIPlanPtr apikey_flush_wait_plan = NULL;

/* ----------------------------------------------------------------
 * Limits
 * ---------------------------------------------------------------- */

static void
apikey_over_limit(int32 limit, const char *per, int64 retry_us)
{
	int64		secs = (retry_us + USECS_PER_SEC - 1) / USECS_PER_SEC;

	ereport(ERROR,
			(errcode(APIKEY_ERRCODE_OVER_LIMIT),
			 errmsg("API key rate limit exceeded"),
			 errdetail("The key's limit of %d uses per %s is reached; retry in " INT64_FORMAT " seconds.",
					   limit, per, secs < 1 ? 1 : secs),
			 errhidestmt(true)));
}

static void
apikey_count_in_table(const pg_uuid_t *id, int32 per_minute, int32 per_day,
					  const inet *client_ip, TimestampTz now)
{
	int64		minute = now / USECS_PER_MINUTE;
	int64		day = now / USECS_PER_DAY;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			types[5] = {UUIDOID, TIMESTAMPTZOID, INETOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	bool		isnull;
	int32		minute_count,
				day_count;

	values[0] = UUIDPGetDatum(id);
	values[1] = TimestampTzGetDatum(now);
	values[2] = client_ip ? PointerGetDatum(client_ip) : (Datum) 0;
	if (client_ip == NULL)
		nulls[2] = 'n';
	values[3] = TimestampTzGetDatum(minute * USECS_PER_MINUTE);
	values[4] = TimestampTzGetDatum(day * USECS_PER_DAY);
	if (SPI_execute_plan(crm_keep_plan(&apikey_count_plan, apikey_count_sql, 5, types),
						 values, nulls, false, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not count the use of an API key");
	minute_count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	day_count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	/* The error rolls the increment back with the caller's transaction. */
	if (per_minute > 0 && minute_count > per_minute)
		apikey_over_limit(per_minute, "minute", (minute + 1) * USECS_PER_MINUTE - now);
	if (per_day > 0 && day_count > per_day)
		apikey_over_limit(per_day, "day", (day + 1) * USECS_PER_DAY - now);
}

/* ----------------------------------------------------------------
 * Shared mode
 * ---------------------------------------------------------------- */

/* A copy of an entry's counters, taken under its spinlock. */
typedef struct ApiKeyUsageSnapshot
{
	pg_uuid_t	id;
	int64		use_count;
	TimestampTz last_used_at;
	bool		has_ip;
	char		last_ip[sizeof(inet)];
	int64		minute;
	int32		minute_count;
	int64		day;
	int32		day_count;
} ApiKeyUsageSnapshot;

static void
apikey_snapshot(ApiKeyUsageEntry *e, ApiKeyUsageSnapshot *s)
{
	s->id = e->key.id;
	s->use_count = e->use_count;
	s->last_used_at = e->last_used_at;
	s->has_ip = e->has_ip;
	memcpy(s->last_ip, e->last_ip, sizeof(s->last_ip));
	s->minute = e->minute;
	s->minute_count = e->minute_count;
	s->day = e->day;
	s->day_count = e->day_count;
}

/* Write a snapshot to the table; false when nothing was written. */
static bool
apikey_flush_one(const ApiKeyUsageSnapshot *s, bool wait)
{
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = UUIDPGetDatum(&s->id);
	values[1] = Int64GetDatum(s->use_count);
	values[2] = TimestampTzGetDatum(s->last_used_at);
	if (s->last_used_at == 0)
		nulls[2] = 'n';
	values[3] = PointerGetDatum(s->last_ip);
	if (!s->has_ip)
		nulls[3] = 'n';
	values[4] = TimestampTzGetDatum(s->minute * USECS_PER_MINUTE);
	values[5] = Int32GetDatum(s->minute_count);
	values[6] = TimestampTzGetDatum(s->day * USECS_PER_DAY);
	values[7] = Int32GetDatum(s->day_count);
	if (wait)
		SPI_execute_plan(crm_keep_plan(&apikey_flush_wait_plan, apikey_flush_sql_wait, 8, apikey_row_types),
						 values, nulls, false, 0);
	else
		SPI_execute_plan(crm_keep_plan(&apikey_flush_skip_plan, apikey_flush_sql_skip, 8, apikey_row_types),
						 values, nulls, false, 0);
	return SPI_processed > 0;
}

/* A new entry for the key, loaded from its row; NULL when the shared table is full. */
static ApiKeyUsageEntry *
apikey_entry_create(const ApiKeyUsageKey *key, TimestampTz now)
{
	ApiKeyUsageEntry loaded;
	ApiKeyUsageEntry *e;
	Datum		arg = UUIDPGetDatum(&key->id);
	Oid			type = UUIDOID;
	bool		found;

	memset(&loaded, 0, sizeof(loaded));
	if (SPI_execute_plan(crm_keep_plan(&apikey_load_plan, apikey_load_sql, 1, &type),
						 &arg, NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		v;

		loaded.use_count = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		v = SPI_getbinval(t, d, 2, &isnull);
		loaded.last_used_at = isnull ? 0 : DatumGetTimestampTz(v);
		v = SPI_getbinval(t, d, 3, &isnull);
		if (!isnull)
		{
			inet	   *ip = DatumGetInetPP(v);

			if (VARSIZE_ANY(ip) <= sizeof(inet))
			{
				inet	   *full = DatumGetInetP(v);

				memcpy(loaded.last_ip, full, VARSIZE(full));
				loaded.has_ip = true;
			}
		}
		v = SPI_getbinval(t, d, 4, &isnull);
		loaded.minute = isnull ? 0 : DatumGetTimestampTz(v) / USECS_PER_MINUTE;
		loaded.minute_count = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
		v = SPI_getbinval(t, d, 6, &isnull);
		loaded.day = isnull ? 0 : DatumGetTimestampTz(v) / USECS_PER_DAY;
		loaded.day_count = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
	}

	LWLockAcquire(apikey_shared->lock, LW_EXCLUSIVE);
	e = hash_search(apikey_hash_table, key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		SpinLockInit(&e->mutex);
		e->use_count = loaded.use_count;
		e->last_used_at = loaded.last_used_at;
		e->has_ip = loaded.has_ip;
		memcpy(e->last_ip, loaded.last_ip, sizeof(e->last_ip));
		e->minute = loaded.minute;
		e->minute_count = loaded.minute_count;
		e->day = loaded.day;
		e->day_count = loaded.day_count;
		e->next_flush = now + (int64) apikey_usage_flush_interval * USECS_PER_SEC;
	}
	LWLockRelease(apikey_shared->lock);
	return e;
}

static ApiKeyUsageEntry *
apikey_entry_find(const ApiKeyUsageKey *key)
{
	ApiKeyUsageEntry *e;

	LWLockAcquire(apikey_shared->lock, LW_SHARED);
	e = hash_search(apikey_hash_table, key, HASH_FIND, NULL);
	LWLockRelease(apikey_shared->lock);
	return e;
}

static void
apikey_key_for(const pg_uuid_t *id, ApiKeyUsageKey *key)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->id = *id;
}

/*
 * With the library preloaded, a key's own limits are two GCRA limits of rate_limit()'s
 * shared table (ratelimit.c), under a domain of their own: per_minute per minute and per_day
 * per day, each with a burst of its whole limit.  A use refused by the day limit gives back
 * what the minute limit counted.  Over a limit: 53400 with the time to wait.
 */
#define APIKEY_LIMIT_DOMAIN "api_key_limit"

static void
apikey_limits_shared(const pg_uuid_t *id, int32 per_minute, int32 per_day)
{
	uint8		k[1 + UUID_LEN];
	int64		retry_ns;

	memcpy(k + 1, id->data, UUID_LEN);
	if (per_minute > 0)
	{
		k[0] = 'm';
		if (!ratelimit_decide(APIKEY_LIMIT_DOMAIN, k, sizeof(k), per_minute,
							  60 * SHT_NS_PER_SEC, &retry_ns))
			apikey_over_limit(per_minute, "minute", (retry_ns + SHT_NS_PER_US - 1) / SHT_NS_PER_US);
	}
	if (per_day > 0)
	{
		k[0] = 'd';
		if (!ratelimit_decide(APIKEY_LIMIT_DOMAIN, k, sizeof(k), per_day,
							  86400 * SHT_NS_PER_SEC, &retry_ns))
		{
			if (per_minute > 0)
			{
				k[0] = 'm';
				ratelimit_refund(APIKEY_LIMIT_DOMAIN, k, sizeof(k), per_minute, 60 * SHT_NS_PER_SEC);
			}
			apikey_over_limit(per_day, "day", (retry_ns + SHT_NS_PER_US - 1) / SHT_NS_PER_US);
		}
	}
}

void
apikey_usage_count(const pg_uuid_t *id, int32 per_minute, int32 per_day, const inet *client_ip)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		minute = now / USECS_PER_MINUTE;
	int64		day = now / USECS_PER_DAY;
	ApiKeyUsageKey key;
	ApiKeyUsageEntry *e;
	ApiKeyUsageSnapshot snap;
	int			over = 0;
	bool		flush = false;

	/*
	 * Preloaded: the limits are GCRA in shared memory (a refusal raises before anything is
	 * counted); the counters below then only count.  Otherwise the fixed windows of the
	 * usage row (docs/api-keys.md, "Preloading").
	 */
	if (ratelimit_shared() && (per_minute > 0 || per_day > 0))
	{
		apikey_limits_shared(id, per_minute, per_day);
		per_minute = 0;
		per_day = 0;
	}
	if (!apikey_usage_shared())
	{
		apikey_count_in_table(id, per_minute, per_day, client_ip, now);
		return;
	}
	apikey_key_for(id, &key);
	e = apikey_entry_find(&key);
	if (e == NULL)
		e = apikey_entry_create(&key, now);
	if (e == NULL)
	{
		/* The shared table is full: this key is counted in its row. */
		apikey_count_in_table(id, per_minute, per_day, client_ip, now);
		return;
	}

	/*
	 * Entries are never removed, so the pointer stays valid after the lock is released.
	 * Check and count in one step.
	 */
	SpinLockAcquire(&e->mutex);
	if (e->minute != minute)
	{
		e->minute = minute;
		e->minute_count = 0;
	}
	if (e->day != day)
	{
		e->day = day;
		e->day_count = 0;
	}
	if (per_minute > 0 && e->minute_count >= per_minute)
		over = 1;
	else if (per_day > 0 && e->day_count >= per_day)
		over = 2;
	else
	{
		e->use_count++;
		e->minute_count++;
		e->day_count++;
		e->last_used_at = now;
		e->has_ip = client_ip != NULL && VARSIZE(client_ip) <= sizeof(e->last_ip);
		if (e->has_ip)
			memcpy(e->last_ip, client_ip, VARSIZE(client_ip));
		if (now >= e->next_flush)
		{
			e->next_flush = now + (int64) apikey_usage_flush_interval * USECS_PER_SEC;
			flush = true;
			apikey_snapshot(e, &snap);
		}
	}
	SpinLockRelease(&e->mutex);

	if (over == 1)
		apikey_over_limit(per_minute, "minute", (minute + 1) * USECS_PER_MINUTE - now);
	if (over == 2)
		apikey_over_limit(per_day, "day", (day + 1) * USECS_PER_DAY - now);
	/* A write needs a transaction that may write; otherwise a later use writes. */
	if (flush && !XactReadOnly && !RecoveryInProgress())
		(void) apikey_flush_one(&snap, false);
}

/* ----------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------- */

/*
 * SQL function: api_key_usage(id uuid) returns table(use_count bigint,
 *		last_used_at timestamptz, last_used_ip inet)
 * From the shared counters when the key has an entry there, else from the table (which
 * needs SELECT on it: this runs with the caller's rights).
 */
PG_FUNCTION_INFO_V1(crm_api_key_usage);
Datum
crm_api_key_usage(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = PG_GETARG_UUID_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	bool		have = false;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* Reading the row checks the caller's right to see usage, in both modes. */
	{
		Oid			type = UUIDOID;
		Datum		arg = UUIDPGetDatum(id);

		if (SPI_execute_plan(crm_keep_plan(&apikey_load_plan, apikey_load_sql, 1, &type),
							 &arg, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			HeapTuple	t = SPI_tuptable->vals[0];
			TupleDesc	d = SPI_tuptable->tupdesc;

			values[0] = SPI_getbinval(t, d, 1, &nulls[0]);
			values[1] = SPI_getbinval(t, d, 2, &nulls[1]);
			values[2] = SPI_getbinval(t, d, 3, &nulls[2]);
			if (!nulls[2])
				values[2] = SPI_datumTransfer(values[2], false, -1);
			have = true;
		}
	}
	if (apikey_usage_shared())
	{
		ApiKeyUsageKey key;
		ApiKeyUsageEntry *e;
		ApiKeyUsageSnapshot snap;

		apikey_key_for(id, &key);
		e = apikey_entry_find(&key);
		if (e != NULL)
		{
			SpinLockAcquire(&e->mutex);
			apikey_snapshot(e, &snap);
			SpinLockRelease(&e->mutex);
			values[0] = Int64GetDatum(snap.use_count);
			nulls[1] = snap.last_used_at == 0;
			values[1] = TimestampTzGetDatum(snap.last_used_at);
			nulls[2] = !snap.has_ip;
			if (snap.has_ip)
			{
				inet	   *ip = SPI_palloc(sizeof(inet));

				memcpy(ip, snap.last_ip, sizeof(inet));
				values[2] = PointerGetDatum(ip);
			}
			have = true;
		}
	}
	SPI_finish();
	if (have)
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	PG_RETURN_NULL();
}

/*
 * SQL function: flush_api_key_usage() returns bigint
 * Write every shared counter of this database's keys to api_key_usage now (before a
 * planned restart, or to read the table directly); the number of rows written.
 */
PG_FUNCTION_INFO_V1(crm_flush_api_key_usage);
Datum
crm_flush_api_key_usage(PG_FUNCTION_ARGS)
{
	ApiKeyUsageSnapshot *snaps = NULL;
	int			n = 0,
				cap = 0,
				i;
	int64		written = 0;
	HASH_SEQ_STATUS seq;
	ApiKeyUsageEntry *e;

	if (!apikey_usage_shared())
		PG_RETURN_INT64(0);
	LWLockAcquire(apikey_shared->lock, LW_SHARED);
	hash_seq_init(&seq, apikey_hash_table);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			snaps = snaps ? repalloc(snaps, cap * sizeof(*snaps)) : palloc(cap * sizeof(*snaps));
		}
		SpinLockAcquire(&e->mutex);
		apikey_snapshot(e, &snaps[n++]);
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(apikey_shared->lock);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < n; i++)
		if (apikey_flush_one(&snaps[i], true))
			written++;
	SPI_finish();
	PG_RETURN_INT64(written);
}
