/*
 * ratelimit.c
 *		rate_limit(key, max_requests, per, burst): the generic cell rate algorithm (GCRA, as
 *		redis-cell), with the state of every key in a shared table (shmem_table.c).
 *
 * GCRA keeps one number per key, its theoretical arrival time (TAT).  With an emission
 * interval T = per / max_requests and room for `burst` requests at once, a request at time
 * `now` is allowed when max(TAT, now) + T - burst * T <= now, and then TAT becomes
 * max(TAT, now) + T.  Refused, it changes nothing, and may retry after the difference.  It
 * is a token bucket of `burst` tokens refilled at one per T, expressed without a timer.  Times
 * are nanoseconds, so T = per / max_requests rounds by less than a nanosecond.
 *
 * The check and the update are one step under the entry's spinlock: exact under any
 * concurrency.  Shared memory is not transactional, so an allowed request stays counted when
 * the caller's transaction rolls back, and nothing waits for anyone's commit.  A key whose
 * TAT has passed is back to a full bucket: its entry holds no information and is what a full
 * table evicts first (then the keys nearest to that state); a new key never fails.
 *
 * Without shared_preload_libraries rate_limit() raises 55000 with a hint: a table could not
 * keep a count through a rollback, and would make concurrent callers of one key wait for
 * each other's commit; a limiter silently weaker than documented is worse than none.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "ratelimit.h"
#include "shmem_table.h"

#define RL_MAX_KEY 1024
/* The longest window, and the longest a full bucket may take to refill. */
#define RL_MAX_NS (INT64CONST(366) * 86400 * SHT_NS_PER_SEC)

static ShtTable rl_table = {"crm_security rate limits", 100000, NULL, NULL};

void
ratelimit_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("crm_security.rate_limit_slots",
							"Rate-limit keys that shared memory holds (needs shared_preload_libraries).",
							"When all are in use, the idle keys are forgotten first, then the keys nearest to a full bucket.",
							&rl_table.slots, 100000, 100, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	sht_register(&rl_table);
}

static void
rl_bad(const char *msg)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", msg)));
}

/*
 * One GCRA decision for `k`: emission interval t, tolerance t * burst (both ns).  Allowed:
 * counted at once, *remaining set.  Refused: nothing changes, *retry_ns set.
 */
static bool
rl_gcra(const ShtKey *k, int64 t, int64 tolerance, int64 now, int64 *remaining, int64 *retry_ns)
{
	ShtEntry   *e;
	bool		found,
				allowed;
	int64		tat,
				new_tat,
				allow_at;

	e = sht_acquire(&rl_table, k, true, now, &found);
	if (e == NULL)
		elog(ERROR, "the rate-limit table has no entry to evict");
	SpinLockAcquire(&e->mutex);
	tat = Max(e->v[0], now);
	new_tat = tat + t;
	allow_at = new_tat - tolerance;
	allowed = allow_at <= now;
	if (allowed)
	{
		e->v[0] = new_tat;
		e->idle_at = new_tat;
	}
	SpinLockRelease(&e->mutex);
	sht_release(&rl_table);
	if (allowed)
	{
		/* Requests that would still be allowed now. */
		*remaining = (now - allow_at) / t;
		*retry_ns = 0;
	}
	else
	{
		*remaining = 0;
		*retry_ns = allow_at - now;
	}
	return allowed;
}

bool
ratelimit_shared(void)
{
	return sht_ready(&rl_table);
}

bool
ratelimit_decide(const char *domain, const void *key, size_t len, int32 max_requests,
				 int64 per_ns, int64 *retry_ns)
{
	ShtKey		k;
	int64		t = per_ns / max_requests,
				remaining;

	Assert(ratelimit_shared() && max_requests > 0 && t > 0);
	sht_key(&k, domain, key, len);
	return rl_gcra(&k, t, t * max_requests, sht_now_ns(), &remaining, retry_ns);
}

void
ratelimit_refund(const char *domain, const void *key, size_t len, int32 max_requests,
				 int64 per_ns)
{
	ShtKey		k;
	ShtEntry   *e;
	bool		found;

	sht_key(&k, domain, key, len);
	e = sht_acquire(&rl_table, &k, false, sht_now_ns(), &found);
	if (e == NULL)
	{
		sht_release(&rl_table);
		return;
	}
	/* GCRA is additive: one emission interval less is the request never made. */
	SpinLockAcquire(&e->mutex);
	e->v[0] -= per_ns / max_requests;
	e->idle_at = e->v[0];
	SpinLockRelease(&e->mutex);
	sht_release(&rl_table);
}

/*
 * What a call keeps between calls (fn_extra): the blessed result descriptor, and the
 * digest of the last key, which a caller hammering one key need not hash again.
 */
typedef struct RlCache
{
	TupleDesc	desc;
	Oid			dbid;
	int			keylen;			/* -1: none */
	ShtKey		k;
	char		key[RL_MAX_KEY];
} RlCache;

/*
 * SQL function: rate_limit(key text, max_requests int, per interval, burst int DEFAULT NULL)
 *		returns table(allowed boolean, remaining int, retry_after interval)
 */
PG_FUNCTION_INFO_V1(crm_rate_limit);
Datum
crm_rate_limit(PG_FUNCTION_ARGS)
{
	text	   *key;
	int32		max_requests,
				burst;
	int64		per,
				t,
				tolerance;
	RlCache    *cache;
	int			keylen;
	bool		allowed;
	int64		remaining,
				retry_ns = 0;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Interval	retry;

	if (PG_ARGISNULL(0))
		rl_bad("rate-limit key must not be null");
	if (toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ > RL_MAX_KEY ||
		toast_raw_datum_size(PG_GETARG_DATUM(0)) == VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate-limit key must be 1 to %d bytes long", RL_MAX_KEY)));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) <= 0)
		rl_bad("max_requests must be a positive number");
	max_requests = PG_GETARG_INT32(1);
	if (PG_ARGISNULL(2))
		rl_bad("per must not be null");
	per = sht_interval_ns(PG_GETARG_INTERVAL_P(2), "per", RL_MAX_NS, "366 days");
	burst = PG_ARGISNULL(3) ? max_requests : PG_GETARG_INT32(3);
	if (burst <= 0)
		rl_bad("burst must be a positive number");
	t = per / max_requests;
	if (t <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_requests is too large for the interval"),
				 errdetail("At most one request per nanosecond can be counted.")));
	if (burst > RL_MAX_NS / t)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("burst is too large"),
				 errdetail("A full burst may take at most 366 days to refill.")));
	tolerance = t * burst;
	cache = (RlCache *) fcinfo->flinfo->fn_extra;
	if (cache == NULL)
	{
		TupleDesc	desc;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		cache = palloc(sizeof(RlCache));
		cache->desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		cache->keylen = -1;
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (!sht_ready(&rl_table))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rate limits need the library preloaded"),
				 errdetail("Counts must be shared by all sessions and survive a rollback, which only shared memory does."),
				 errhint("Add crm_security to shared_preload_libraries and restart.")));

	key = PG_GETARG_TEXT_PP(0);
	keylen = VARSIZE_ANY_EXHDR(key);
	if (cache->keylen != keylen || cache->dbid != MyDatabaseId ||
		memcmp(cache->key, VARDATA_ANY(key), keylen) != 0)
	{
		sht_key(&cache->k, "rate_limit", VARDATA_ANY(key), keylen);
		memcpy(cache->key, VARDATA_ANY(key), keylen);
		cache->keylen = keylen;
		cache->dbid = MyDatabaseId;
	}
	allowed = rl_gcra(&cache->k, t, tolerance, sht_now_ns(), &remaining, &retry_ns);

	/* Rounded up to the microsecond: retrying after it is never too early. */
	retry.time = (retry_ns + SHT_NS_PER_US - 1) / SHT_NS_PER_US;
	retry.day = 0;
	retry.month = 0;
	values[0] = BoolGetDatum(allowed);
	values[1] = Int32GetDatum((int32) Min(remaining, PG_INT32_MAX));
	values[2] = IntervalPGetDatum(&retry);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(cache->desc, values, nulls)));
}
