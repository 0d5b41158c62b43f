/*
 * tenants.c
 *		Lookups in the tables tenants and tenant_members (sql/55_tenants.sql) for the
 *		resolution of the context's tenant (context_tenant.c), by index, and the per-backend
 *		cache of their results; the trigger _tenants_changed().
 *
 * The tables are read directly, not through SQL: the resolver is what row level security
 * on tenant_members depends on (its policies call tenant_id()), so it must not itself be
 * subject to them, and PUBLIC has no privilege that a query would need.
 *
 * The cache.  A backend keeps what it read (a membership row, the state of a tenant), as the
 * key store keeps keys: a statement trigger on both tables sends a relcache invalidation for
 * the table it changed, and every backend empties the cache when it receives one, which is
 * before its next set_claim_context (invalidations are taken up when a transaction starts
 * and when a relation is locked).  A miss is read with a fresh snapshot taken after the
 * tables are locked, so that what enters the cache is at least as new as every
 * invalidation already received; a change of the backend's own transaction empties it at
 * once, and again if that transaction rolls back.  Parallel workers (and a leader in
 * parallel mode) use no cache: they read with the query's snapshot, as the leader's
 * query would.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "context_checks.h"
#include "relcache_callbacks.h"
#include "tenants.h"

/* The relations, looked up again after any invalidation of either table. */
typedef struct TenantsRels
{
	bool		valid;
	Oid			tenants,
				tenants_pkey,
				members,
				members_pkey;
} TenantsRels;

static TenantsRels tenants_rels;

/*
 * Cached lookups: a membership (user, tenant), the memberships of a user (tenant ""), or
 * the state of a tenant (user "").  Keys are NUL-padded, so equal strings are equal keys.
 */
#define TENANTS_CACHE_MAX 4096

typedef struct TenantsKey
{
	char		kind;			/* 'm': membership(s), 't': tenant */
	char		user[CTX_MAX_TENANT_LEN + 1];
	char		tenant[CTX_MAX_TENANT_LEN + 1];
} TenantsKey;

typedef struct TenantsEntry
{
	TenantsKey	key;
	int			n;				/* usable memberships found (for the user's memberships) */
	bool		exists;			/* the row exists (membership or tenant) */
	bool		enabled;
	bool		has_expiry;
	TimestampTz expires_at;		/* of the membership; for a user's memberships, when the
								 * answer may change (has_expiry) */
	TimestampTz as_of;			/* the time n was computed for */
	char	   *found_tenant;	/* in tenants_mcxt */
	char	   *role;
} TenantsEntry;

static HTAB *tenants_cache = NULL;
static MemoryContext tenants_mcxt = NULL;

static void
tenants_forget(void)
{
	if (tenants_cache != NULL)
	{
		hash_destroy(tenants_cache);
		tenants_cache = NULL;
	}
	if (tenants_mcxt != NULL)
		MemoryContextReset(tenants_mcxt);
}

static void
tenants_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		(tenants_rels.valid && (relid == tenants_rels.tenants || relid == tenants_rels.members)))
	{
		tenants_forget();
		tenants_rels.valid = false;
	}
}

void
tenants_init(void)
{
	tenants_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security tenants cache",
										 ALLOCSET_SMALL_SIZES);
	crm_register_relcache_callback(tenants_relcache_callback, (Datum) 0);
}

/* The relations' OIDs, or false when the tables are not there (yet). */
static bool
tenants_lookup_rels(void)
{
	Oid			nsp;

	if (tenants_rels.valid)
		return true;
	nsp = get_namespace_oid("crm_security", true);
	if (!OidIsValid(nsp))
		return false;
	tenants_rels.tenants = get_relname_relid("tenants", nsp);
	tenants_rels.tenants_pkey = get_relname_relid("tenants_pkey", nsp);
	tenants_rels.members = get_relname_relid("tenant_members", nsp);
	tenants_rels.members_pkey = get_relname_relid("tenant_members_pkey", nsp);
	tenants_rels.valid = OidIsValid(tenants_rels.tenants) && OidIsValid(tenants_rels.tenants_pkey) &&
		OidIsValid(tenants_rels.members) && OidIsValid(tenants_rels.members_pkey);
	return tenants_rels.valid;
}

/* Whether this process may use the cache (not in a parallel operation). */
static bool
tenants_cacheable(void)
{
	return !IsInParallelMode() && !IsParallelWorker();
}

static TenantsEntry *
tenants_cache_find(const char *user, const char *tenant, bool *found)
{
	TenantsKey	key;

	if (tenants_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TenantsKey);
		ctl.entrysize = sizeof(TenantsEntry);
		ctl.hcxt = tenants_mcxt;
		tenants_cache = hash_create("crm_security tenants cache", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	else if (hash_get_num_entries(tenants_cache) >= TENANTS_CACHE_MAX)
	{
		tenants_forget();
		return tenants_cache_find(user, tenant, found);
	}
	memset(&key, 0, sizeof(key));
	key.kind = user[0] == '\0' ? 't' : 'm';
	strlcpy(key.user, user, sizeof(key.user));
	strlcpy(key.tenant, tenant, sizeof(key.tenant));
	return hash_search(tenants_cache, &key, HASH_ENTER, found);
}

static char *
tenants_cache_strdup(const char *s)
{
	return s != NULL ? MemoryContextStrdup(tenants_mcxt, s) : NULL;
}

static char *
tenants_pstrdup(const char *s)
{
	return s != NULL ? pstrdup(s) : NULL;
}

typedef struct TenantsScan
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	Snapshot	snap;
	TupleTableSlot *slot;
} TenantsScan;

/*
 * Open a table and its index and start an equality scan on `nkeys` leading columns: with a
 * fresh snapshot taken once the table is locked when `fresh`, else the query's.
 */
static void
tenants_scan_begin(TenantsScan *ts, Oid relid, Oid idxid, const char **values, int nkeys,
				   bool fresh)
{
	ScanKeyData keys[2];
	int			i;

	ts->rel = table_open(relid, AccessShareLock);
	ts->idx = index_open(idxid, AccessShareLock);
	if (fresh)
		ts->snap = RegisterSnapshot(GetLatestSnapshot());
	else
		ts->snap = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	for (i = 0; i < nkeys; i++)
	{
		ScanKeyInit(&keys[i], i + 1, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(values[i]));
		keys[i].sk_collation = ts->idx->rd_indcollation[i];
	}
	ts->scan = index_beginscan(ts->rel, ts->idx, ts->snap, nkeys, 0);
	index_rescan(ts->scan, keys, nkeys, NULL, 0);
	ts->slot = table_slot_create(ts->rel, NULL);
}

static void
tenants_scan_end(TenantsScan *ts)
{
	index_endscan(ts->scan);
	UnregisterSnapshot(ts->snap);
	ExecDropSingleTupleTableSlot(ts->slot);
	index_close(ts->idx, AccessShareLock);
	table_close(ts->rel, AccessShareLock);
}

/* Column `name` of the scanned table: its number, or an error for a table not as made. */
static AttrNumber
tenants_attnum(TenantsScan *ts, const char *name)
{
	AttrNumber	a = get_attnum(RelationGetRelid(ts->rel), name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "crm_security.%s has no column \"%s\"", RelationGetRelationName(ts->rel), name);
	return a;
}

static char *
tenants_text(TupleTableSlot *slot, AttrNumber a)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, a, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* A membership row as read: whether it counts at `now`. */
static bool
tenants_usable(bool enabled, bool has_expiry, TimestampTz expires_at, TimestampTz now)
{
	return enabled && (!has_expiry || expires_at > now);
}

/*
 * Read the memberships of `user` (in `tenant` only, or all with `tenant` NULL) into `e`:
 * for one tenant, the row; for all, the count of usable ones (at most 2), the first one's
 * tenant and role, and the earliest expiry that could change the answer.
 */
static void
tenants_read_members(const char *user, const char *tenant, TimestampTz now, bool fresh,
					 TenantsEntry *e, MemoryContext cxt)
{
	TenantsScan ts;
	const char *values[2] = {user, tenant};
	AttrNumber	a_tenant,
				a_role,
				a_enabled,
				a_expires;
	MemoryContext old;

	tenants_scan_begin(&ts, tenants_rels.members, tenants_rels.members_pkey, values,
					   tenant != NULL ? 2 : 1, fresh);
	a_tenant = tenants_attnum(&ts, "tenant_id");
	a_role = tenants_attnum(&ts, "role");
	a_enabled = tenants_attnum(&ts, "enabled");
	a_expires = tenants_attnum(&ts, "expires_at");
	memset(e, 0, sizeof(*e));
	e->n = 0;
	e->exists = false;
	e->enabled = false;
	e->has_expiry = false;
	e->as_of = now;
	e->found_tenant = NULL;
	e->role = NULL;
	while (e->n < 2 && index_getnext_slot(ts.scan, ForwardScanDirection, ts.slot))
	{
		bool		isnull;
		bool		enabled;
		bool		has_expiry;
		TimestampTz expires_at = 0;
		Datum		d;

		CHECK_FOR_INTERRUPTS();
		d = slot_getattr(ts.slot, a_enabled, &isnull);
		enabled = !isnull && DatumGetBool(d);
		d = slot_getattr(ts.slot, a_expires, &isnull);
		has_expiry = !isnull;
		if (has_expiry)
			expires_at = DatumGetTimestampTz(d);
		if (tenant != NULL)
		{
			/* The row itself: whether it counts is decided at each use. */
			e->exists = true;
			e->enabled = enabled;
			e->has_expiry = has_expiry;
			e->expires_at = expires_at;
			old = MemoryContextSwitchTo(cxt);
			e->role = tenants_text(ts.slot, a_role);
			MemoryContextSwitchTo(old);
			break;
		}
		/* The answer holds until the first expiry still to come among the rows read. */
		if (enabled && has_expiry && expires_at > now &&
			(!e->has_expiry || expires_at < e->expires_at))
		{
			e->has_expiry = true;
			e->expires_at = expires_at;
		}
		if (!tenants_usable(enabled, has_expiry, expires_at, now))
			continue;
		if (e->n == 0)
		{
			old = MemoryContextSwitchTo(cxt);
			e->found_tenant = tenants_text(ts.slot, a_tenant);
			e->role = tenants_text(ts.slot, a_role);
			MemoryContextSwitchTo(old);
		}
		e->n++;
	}
	tenants_scan_end(&ts);
}

/* Keep a copy of `src` in the cache under (user, tenant); nothing can empty it meanwhile. */
static TenantsEntry *
tenants_cache_store(const char *user, const char *tenant, const TenantsEntry *src)
{
	bool		found;
	TenantsEntry *e = tenants_cache_find(user, tenant, &found);
	TenantsKey	key = e->key;

	*e = *src;
	e->key = key;
	e->found_tenant = tenants_cache_strdup(src->found_tenant);
	e->role = tenants_cache_strdup(src->role);
	return e;
}

static TenantsEntry *
tenants_cache_get(const char *user, const char *tenant)
{
	TenantsKey	key;

	if (tenants_cache == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.kind = user[0] == '\0' ? 't' : 'm';
	strlcpy(key.user, user, sizeof(key.user));
	strlcpy(key.tenant, tenant, sizeof(key.tenant));
	return hash_search(tenants_cache, &key, HASH_FIND, NULL);
}

int
tenants_memberships(const char *user, const char *tenant, TimestampTz now,
					char **found_tenant, char **found_role)
{
	TenantsEntry local;
	TenantsEntry *e = NULL;
	bool		cache = tenants_cacheable();

	*found_tenant = NULL;
	*found_role = NULL;
	/* No row has an empty or longer id (and an empty user is the cache's tenant kind). */
	if (user[0] == '\0' || strlen(user) > CTX_MAX_TENANT_LEN ||
		(tenant != NULL && (tenant[0] == '\0' || strlen(tenant) > CTX_MAX_TENANT_LEN)))
		return 0;
	if (!tenants_lookup_rels())
		return 0;
	if (cache)
	{
		/* Lock first: an invalidation taken up here empties the cache before it is read. */
		LockRelationOid(tenants_rels.members, AccessShareLock);
		if (!tenants_lookup_rels())
			return 0;
		e = tenants_cache_get(user, tenant != NULL ? tenant : "");
		/* A user's memberships counted at another time may have changed by expiry. */
		if (e != NULL && tenant == NULL && e->as_of != now && e->has_expiry && e->expires_at <= now)
			e = NULL;
	}
	if (e == NULL)
	{
		/*
		 * Into a local copy: opening the tables may take up an invalidation that empties
		 * the cache.  The fresh snapshot is taken after that.
		 */
		tenants_read_members(user, tenant, now, cache, &local, CurrentMemoryContext);
		e = cache ? tenants_cache_store(user, tenant != NULL ? tenant : "", &local) : &local;
	}
	if (tenant != NULL)
	{
		if (!e->exists || !tenants_usable(e->enabled, e->has_expiry, e->expires_at, now))
			return 0;
		*found_tenant = pstrdup(tenant);
		*found_role = tenants_pstrdup(e->role);
		return 1;
	}
	*found_tenant = tenants_pstrdup(e->found_tenant);
	*found_role = tenants_pstrdup(e->role);
	return e->n;
}

/* Read the state of `tenant`. */
static TenantState
tenants_read_state(const char *tenant, bool fresh)
{
	TenantsScan ts;
	const char *values[1] = {tenant};
	TenantState st = TENANT_UNKNOWN;

	tenants_scan_begin(&ts, tenants_rels.tenants, tenants_rels.tenants_pkey, values, 1, fresh);
	if (index_getnext_slot(ts.scan, ForwardScanDirection, ts.slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(ts.slot, tenants_attnum(&ts, "enabled"), &isnull);

		st = (!isnull && DatumGetBool(d)) ? TENANT_ENABLED : TENANT_DISABLED;
	}
	tenants_scan_end(&ts);
	return st;
}

TenantState
tenants_state(const char *tenant)
{
	TenantsEntry *e;
	TenantsEntry local;
	TenantState st;

	if (strlen(tenant) > CTX_MAX_TENANT_LEN || !tenants_lookup_rels())
		return TENANT_UNKNOWN;
	if (!tenants_cacheable())
		return tenants_read_state(tenant, false);
	LockRelationOid(tenants_rels.tenants, AccessShareLock);
	if (!tenants_lookup_rels())
		return TENANT_UNKNOWN;
	e = tenants_cache_get("", tenant);
	if (e == NULL)
	{
		st = tenants_read_state(tenant, true);
		memset(&local, 0, sizeof(local));
		local.exists = st != TENANT_UNKNOWN;
		local.enabled = st == TENANT_ENABLED;
		e = tenants_cache_store("", tenant, &local);
	}
	return !e->exists ? TENANT_UNKNOWN : e->enabled ? TENANT_ENABLED : TENANT_DISABLED;
}

/* SQL function: _tenants_changed() returns trigger (statement level) */
PG_FUNCTION_INFO_V1(crm_tenants_changed);
Datum
crm_tenants_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_tenants_changed: not called by trigger manager");
	/* Every backend empties its cache when it takes this up (this one at the next command). */
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}
