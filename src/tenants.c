/*
 * tenants.c
 *		Lookups in the tables tenants and tenant_members (sql/55_tenants.sql) for the
 *		resolution of the context's tenant (context_tenant.c): one index probe each, with
 *		the active snapshot, so that a parallel worker sees what its leader's query sees.
 *
 * The tables are read directly, not through SQL: the resolver is what row level security
 * on tenant_members depends on (its policies call tenant_id()), so it must not itself be
 * subject to them, and PUBLIC has no privilege that a query would need.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "tenants.h"

typedef struct TenantsScan
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
} TenantsScan;

/* Open `relname` and its index `idxname` and start an equality scan on `nkeys` leading columns. */
static bool
tenants_scan_begin(TenantsScan *ts, const char *relname, const char *idxname,
				   const char **values, int nkeys)
{
	Oid			nsp = get_namespace_oid("crm_security", true);
	Oid			relid,
				idxid;
	ScanKeyData keys[2];
	Snapshot	snap;
	int			i;

	if (!OidIsValid(nsp))
		return false;
	relid = get_relname_relid(relname, nsp);
	idxid = get_relname_relid(idxname, nsp);
	if (!OidIsValid(relid) || !OidIsValid(idxid))
		return false;
	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	ts->rel = table_open(relid, AccessShareLock);
	ts->idx = index_open(idxid, AccessShareLock);
	for (i = 0; i < nkeys; i++)
	{
		ScanKeyInit(&keys[i], i + 1, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(values[i]));
		keys[i].sk_collation = ts->idx->rd_indcollation[i];
	}
	ts->scan = index_beginscan(ts->rel, ts->idx, snap, nkeys, 0);
	index_rescan(ts->scan, keys, nkeys, NULL, 0);
	ts->slot = table_slot_create(ts->rel, NULL);
	return true;
}

static void
tenants_scan_end(TenantsScan *ts)
{
	index_endscan(ts->scan);
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

int
tenants_memberships(const char *user, const char *tenant, TimestampTz now,
					char **found_tenant, char **found_role)
{
	TenantsScan ts;
	const char *values[2] = {user, tenant};
	AttrNumber	a_tenant,
				a_role,
				a_enabled,
				a_expires;
	int			n = 0;

	*found_tenant = NULL;
	*found_role = NULL;
	if (!tenants_scan_begin(&ts, "tenant_members", "tenant_members_pkey", values,
							tenant != NULL ? 2 : 1))
		return 0;
	a_tenant = tenants_attnum(&ts, "tenant_id");
	a_role = tenants_attnum(&ts, "role");
	a_enabled = tenants_attnum(&ts, "enabled");
	a_expires = tenants_attnum(&ts, "expires_at");
	while (n < 2 && index_getnext_slot(ts.scan, ForwardScanDirection, ts.slot))
	{
		bool		isnull;
		Datum		d;

		CHECK_FOR_INTERRUPTS();
		d = slot_getattr(ts.slot, a_enabled, &isnull);
		if (isnull || !DatumGetBool(d))
			continue;
		d = slot_getattr(ts.slot, a_expires, &isnull);
		if (!isnull && DatumGetTimestampTz(d) <= now)
			continue;
		if (n == 0)
		{
			*found_tenant = tenants_text(ts.slot, a_tenant);
			*found_role = tenants_text(ts.slot, a_role);
		}
		n++;
		if (tenant != NULL)
			break;
	}
	tenants_scan_end(&ts);
	return n;
}

TenantState
tenants_state(const char *tenant)
{
	TenantsScan ts;
	const char *values[1] = {tenant};
	TenantState st = TENANT_UNKNOWN;

	if (!tenants_scan_begin(&ts, "tenants", "tenants_pkey", values, 1))
		return TENANT_UNKNOWN;
	if (index_getnext_slot(ts.scan, ForwardScanDirection, ts.slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(ts.slot, tenants_attnum(&ts, "enabled"), &isnull);

		st = (!isnull && DatumGetBool(d)) ? TENANT_ENABLED : TENANT_DISABLED;
	}
	tenants_scan_end(&ts);
	return st;
}
