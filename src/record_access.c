/*
 * record_access.c
 *		Record-level access inside a tenant (API.md section 7, docs/record-access.md): what
 *		the context's user may reach, computed once per transaction from the verified
 *		context, and the SQL functions that give it to the policies: accessible_owner_ids(),
 *		shared_record_ids(), companies(), can_access_record(), and the trigger
 *		_record_tables_changed().
 *
 * The sets are read by the SECURITY DEFINER SQL functions _record_access_sets() and
 * _record_shared_sets() (the tables are not readable by PUBLIC), called through fmgr, which
 * switches to their owner; fmgr does not check EXECUTE, so PUBLIC need not have it.  They
 * are read-only and parallel safe: a parallel worker computes the same sets from the same
 * context and the leader's snapshot.
 *
 * The cache is keyed by the local transaction id (a new transaction, in any session,
 * computes everything again, so a change committed elsewhere is seen from the next
 * transaction), by the context's generation, and by a generation bumped by the trigger on
 * the record access tables and by an aborted subtransaction (a change in this transaction
 * is seen by its next statement, a rolled-back one is forgotten).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "context.h"
#include "record_access.h"

extern Datum crm_can(PG_FUNCTION_ARGS);

static uint64 ra_generation = 0;
static bool ra_callbacks = false;

/* The shares of one table, kept for the rest of the transaction. */
typedef struct RaShared
{
	Oid			relid;
	ArrayType  *read_ids;
	ArrayType  *write_ids;
	char	   *permission;		/* NULL: the table is not under record access */
	struct RaShared *next;
} RaShared;

typedef struct RaCache
{
	bool		valid;
	LocalTransactionId lxid;
	uint64		generation;		/* ra_generation */
	uint64		ctx_generation;	/* ctx_generation() */
	char	   *tenant_id;		/* NULL: no user or tenant, every set is empty */
	char	   *user_id;
	ArrayType  *read_owners;
	ArrayType  *write_owners;
	ArrayType  *companies;
	RaShared   *shared;
	MemoryContext cxt;
} RaCache;

static RaCache ra_cache;

static void
ra_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	/* A share made in a rolled-back savepoint must not stay in the cache. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ra_generation++;
}

static ArrayType *
ra_empty_array(void)
{
	return construct_empty_array(TEXTOID);
}

/* A copy of an array datum (NULL: empty) in the current memory context. */
static ArrayType *
ra_copy_array(Datum d, bool isnull)
{
	if (isnull)
		return ra_empty_array();
	return DatumGetArrayTypePCopy(d);
}

/* Call an internal SQL function returning one composite row; its fields into values/nulls. */
static void
ra_call(const char *name, int nargs, Oid *argtypes, Datum *args, int nfields, Datum *values, bool *nulls)
{
	Oid			fn;
	Datum		result;
	HeapTupleHeader th;
	HeapTupleData tuple;
	TupleDesc	tupdesc;
	LOCAL_FCINFO(fcinfo, 3);
	FmgrInfo	flinfo;
	int			i;

	fn = LookupFuncName(list_make2(makeString("crm_security"), makeString(pstrdup(name))),
						nargs, argtypes, false);
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, nargs, InvalidOid, NULL, NULL);
	for (i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "crm_security.%s returned NULL", name);
	th = DatumGetHeapTupleHeader(result);
	tupdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	if (tupdesc->natts != nfields)
		elog(ERROR, "crm_security.%s returned %d columns, expected %d", name, tupdesc->natts, nfields);
	heap_deform_tuple(&tuple, tupdesc, values, nulls);
	ReleaseTupleDesc(tupdesc);
}

/*
 * The cached sets of the current context, recomputed when stale (see the file header and
 * ctx_generation() for the order of the calls).
 */
static RaCache *
ra_current(void)
{
	uint64		gen = ctx_generation();
	char	   *tenant_id;
	char	   *user_id;
	Datum		values[3];
	bool		nulls[3];
	MemoryContext old;

	if (ra_cache.valid &&
		ra_cache.ctx_generation == gen &&
		ra_cache.generation == ra_generation &&
		ra_cache.lxid == MyProc->lxid)
		return &ra_cache;

	if (!ra_callbacks)
	{
		RegisterSubXactCallback(ra_subxact_callback, NULL);
		ra_callbacks = true;
	}
	if (ra_cache.cxt == NULL)
		ra_cache.cxt = AllocSetContextCreate(TopMemoryContext, "crm_security record access",
											 ALLOCSET_DEFAULT_SIZES);
	ra_cache.valid = false;
	MemoryContextReset(ra_cache.cxt);
	ra_cache.shared = NULL;
	ra_cache.tenant_id = NULL;
	ra_cache.user_id = NULL;

	/* The context first (it may verify the token), then its generation, then the rest. */
	(void) ctx_claims_ref();
	gen = ctx_generation();
	tenant_id = ctx_tenant_text();
	user_id = ctx_user_id_text();

	if (tenant_id != NULL && user_id != NULL && tenant_id[0] != '\0' && user_id[0] != '\0')
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		args[2];

		args[0] = CStringGetTextDatum(tenant_id);
		args[1] = CStringGetTextDatum(user_id);
		ra_call("_record_access_sets", 2, argtypes, args, 3, values, nulls);
		old = MemoryContextSwitchTo(ra_cache.cxt);
		ra_cache.tenant_id = pstrdup(tenant_id);
		ra_cache.user_id = pstrdup(user_id);
		ra_cache.read_owners = ra_copy_array(values[0], nulls[0]);
		ra_cache.write_owners = ra_copy_array(values[1], nulls[1]);
		ra_cache.companies = ra_copy_array(values[2], nulls[2]);
	}
	else
	{
		old = MemoryContextSwitchTo(ra_cache.cxt);
		ra_cache.read_owners = ra_empty_array();
		ra_cache.write_owners = ra_empty_array();
		ra_cache.companies = ra_empty_array();
	}
	MemoryContextSwitchTo(old);

	ra_cache.ctx_generation = gen;
	ra_cache.lxid = MyProc->lxid;
	ra_cache.generation = ra_generation;
	ra_cache.valid = true;
	return &ra_cache;
}

/* The shares of one table for the current context, cached with the other sets. */
static RaShared *
ra_shared(Oid relid)
{
	RaCache    *c = ra_current();
	RaShared   *s;
	MemoryContext old;
	Datum		values[3];
	bool		nulls[3];

	for (s = c->shared; s != NULL; s = s->next)
		if (s->relid == relid)
			return s;

	if (c->tenant_id != NULL)
	{
		Oid			argtypes[3] = {TEXTOID, TEXTOID, REGCLASSOID};
		Datum		args[3];

		args[0] = CStringGetTextDatum(c->tenant_id);
		args[1] = CStringGetTextDatum(c->user_id);
		args[2] = ObjectIdGetDatum(relid);
		ra_call("_record_shared_sets", 3, argtypes, args, 3, values, nulls);
		/* A computation that invalidated the cache (it cannot; but be safe) starts over. */
		if (!c->valid)
			return ra_shared(relid);
	}
	else
	{
		values[0] = values[1] = values[2] = (Datum) 0;
		nulls[0] = nulls[1] = nulls[2] = true;
	}

	old = MemoryContextSwitchTo(c->cxt);
	s = palloc0(sizeof(RaShared));
	s->relid = relid;
	s->read_ids = ra_copy_array(values[0], nulls[0]);
	s->write_ids = ra_copy_array(values[1], nulls[1]);
	s->permission = nulls[2] ? NULL : TextDatumGetCString(values[2]);
	s->next = c->shared;
	c->shared = s;
	MemoryContextSwitchTo(old);
	return s;
}

/* true for write, false for read; anything else raises 22023. */
static bool
ra_access_is_write(text *access)
{
	const char *s = VARDATA_ANY(access);
	int			len = VARSIZE_ANY_EXHDR(access);

	if (len == 4 && memcmp(s, "read", 4) == 0)
		return false;
	if (len == 5 && memcmp(s, "write", 5) == 0)
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown access level"),
			 errdetail("The access level is \"read\" or \"write\".")));
	return false;				/* keep the compiler quiet */
}

/* Whether a text array holds the value (linear: one record per call). */
static bool
ra_array_has(ArrayType *arr, const char *v, int vlen)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		if (VARSIZE_ANY_EXHDR(t) == vlen && memcmp(VARDATA_ANY(t), v, vlen) == 0)
			return true;
	}
	return false;
}

/* A copy for the caller: the executor may keep or free what a function returns. */
#define RA_RETURN_ARRAY(a) PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(a)))

/* SQL function: accessible_owner_ids(access text) returns text[] (strict) */
PG_FUNCTION_INFO_V1(crm_accessible_owner_ids);
Datum
crm_accessible_owner_ids(PG_FUNCTION_ARGS)
{
	bool		write = ra_access_is_write(PG_GETARG_TEXT_PP(0));
	RaCache    *c = ra_current();

	RA_RETURN_ARRAY(write ? c->write_owners : c->read_owners);
}

/* SQL function: shared_record_ids(tbl regclass, access text) returns text[] (strict) */
PG_FUNCTION_INFO_V1(crm_shared_record_ids);
Datum
crm_shared_record_ids(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		write = ra_access_is_write(PG_GETARG_TEXT_PP(1));
	RaShared   *s = ra_shared(relid);

	RA_RETURN_ARRAY(write ? s->write_ids : s->read_ids);
}

/* SQL function: companies() returns text[] */
PG_FUNCTION_INFO_V1(crm_record_companies);
Datum
crm_record_companies(PG_FUNCTION_ARGS)
{
	RA_RETURN_ARRAY(ra_current()->companies);
}

/* SQL function: can_access_record(tbl regclass, record_id text, owner_id text, access text) returns boolean */
PG_FUNCTION_INFO_V1(crm_can_access_record);
Datum
crm_can_access_record(PG_FUNCTION_ARGS)
{
	bool		write;
	RaCache    *c;
	RaShared   *s;
	text	   *owner;
	text	   *rec;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_BOOL(false);
	write = ra_access_is_write(PG_GETARG_TEXT_PP(3));
	c = ra_current();
	/* Without a user and a tenant nothing is accessible (and no table is looked up). */
	if (c->tenant_id == NULL)
		PG_RETURN_BOOL(false);
	s = ra_shared(PG_GETARG_OID(0));
	if (s->permission == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table is not under record access"),
				 errhint("Call enable_record_access on it.")));
	owner = PG_GETARG_TEXT_PP(2);
	rec = PG_GETARG_TEXT_PP(1);
	if (ra_array_has(write ? c->write_owners : c->read_owners, VARDATA_ANY(owner), VARSIZE_ANY_EXHDR(owner)))
		PG_RETURN_BOOL(true);
	if (ra_array_has(write ? s->write_ids : s->read_ids, VARDATA_ANY(rec), VARSIZE_ANY_EXHDR(rec)))
		PG_RETURN_BOOL(true);
	/* The table's manage permission bypasses the record rules (inside the tenant). */
	PG_RETURN_DATUM(DirectFunctionCall1(crm_can, CStringGetTextDatum(s->permission)));
}

/* SQL function: _record_tables_changed() returns trigger (statement level) */
PG_FUNCTION_INFO_V1(crm_record_tables_changed);
Datum
crm_record_tables_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_record_tables_changed: not called by trigger manager");
	/* This transaction sees the change from its next statement; others from their next transaction. */
	ra_generation++;
	return PointerGetDatum(NULL);
}
