/*
 * perm_context.c
 *		The effective permissions of the claim context: the token's permissions claim plus
 *		the permissions of the roles granted in the database (tables roles, role_grants),
 *		and the SQL functions that use them: permissions(), can(), authorize(), and the
 *		trigger _role_tables_changed().
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "claim_path.h"
#include "context.h"
#include "perm_context.h"
#include "permission.h"
#include "relcache_callbacks.h"

/*
 * Bumped whenever the role tables may have changed (our trigger, a relcache invalidation
 * of those tables, an aborted subtransaction), so that the cache below is recomputed.
 */
static uint64 perm_generation = 0;
static Oid	perm_roles_relid = InvalidOid;
static Oid	perm_grants_relid = InvalidOid;

/*
 * The effective permissions, computed once per transaction and context.  The key is the
 * local transaction id, the generation of the role tables and the generation of the claim
 * context (which changes with the claims and with the settings that select claims).
 */
typedef struct PermCache
{
	bool		valid;
	LocalTransactionId lxid;
	uint64		generation;		/* perm_generation */
	uint64		ctx_generation; /* ctx_generation() */
	int			n;
	char	  **perms;			/* sorted, distinct, well-formed */
	int		   *lens;
	PermSet    *set;			/* the same, for matching */
	MemoryContext cxt;
} PermCache;

static PermCache perm_cache;

typedef struct PermList
{
	int			n;
	int			cap;
	char	  **perms;
} PermList;

/* Add a copy of s to the list when it is well-formed; malformed ones are dropped. */
static void
perm_list_add(PermList *l, const char *s, int len)
{
	if (perm_segments(s, len) == 0)
		return;
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->perms = l->perms ? repalloc(l->perms, l->cap * sizeof(char *)) : palloc(l->cap * sizeof(char *));
	}
	l->perms[l->n++] = pnstrdup(s, len);
}

/* The permissions claim: a JSON array of strings, or one string of space-separated ones. */
static void
perm_collect_claim(PermList *l, const Jsonb *claims, const char *path)
{
	JsonbValue	v;

	/* The resolver of claim() and of every claim setting. */
	if (!claim_path_value(claims, path, &v))
		return;
	if (v.type == jbvString)
	{
		const char *s = v.val.string.val;
		int			len = v.val.string.len;
		int			i = 0;

		while (i < len)
		{
			int			start;

			while (i < len && s[i] == ' ')
				i++;
			start = i;
			while (i < len && s[i] != ' ')
				i++;
			if (i > start)
				perm_list_add(l, s + start, i - start);
		}
	}
	else if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v.val.binary.data);
		JsonbValue	e;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok == WJB_ELEM && e.type == jbvString)
				perm_list_add(l, e.val.string.val, e.val.string.len);
		}
	}
}

/*
 * The permissions of the user's unexpired roles in the tenant, with inheritance, read by
 * the SECURITY DEFINER function crm_security._granted_permissions (the role tables are not
 * readable by PUBLIC); with `fname` set, that function of (name, tenant) instead
 * (_role_permissions: the permissions of one role by name, for a membership's role).
 * Called through fmgr, which switches to the function's owner; the EXECUTE privilege is
 * checked only for calls from SQL, so PUBLIC need not have it.
 */
static void
perm_collect_roles(PermList *l, const char *user_id, const char *tenant_id, const char *fname)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Oid			fn;
	Oid			nsp;
	Datum		result;
	ArrayType  *arr;
	array_iter	it;
	int			nitems,
				i;

	nsp = get_namespace_oid("crm_security", false);
	perm_roles_relid = get_relname_relid("roles", nsp);
	perm_grants_relid = get_relname_relid("role_grants", nsp);
	fn = LookupFuncName(list_make2(makeString("crm_security"),
								   makeString(fname != NULL ? (char *) fname : "_granted_permissions")),
						2, argtypes, false);
	result = OidFunctionCall2(fn, CStringGetTextDatum(user_id), CStringGetTextDatum(tenant_id));
	arr = DatumGetArrayTypeP(result);
	nitems = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	array_iter_setup(&it, (AnyArrayType *) arr);
	for (i = 0; i < nitems; i++)
	{
		bool		isnull;
		Datum		d = array_iter_next(&it, &isnull, i, -1, false, TYPALIGN_INT);

		if (!isnull)
			perm_list_add(l, VARDATA_ANY(DatumGetPointer(d)), VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
	}
}

static int
perm_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The cached effective permissions of the current context, recomputed when stale: keyed by
 * the context's generation (see ctx_generation()), the role tables' generation and the
 * transaction.
 */
static PermCache *
perm_effective(void)
{
	uint64		gen = ctx_generation();
	const Jsonb *claims;
	MemoryContext old;
	PermList	l = {0};
	int			i,
				j;

	if (perm_cache.valid &&
		perm_cache.ctx_generation == gen &&
		perm_cache.generation == perm_generation &&
		perm_cache.lxid == MyProc->lxid)
		return &perm_cache;

	if (perm_cache.cxt == NULL)
		perm_cache.cxt = AllocSetContextCreate(TopMemoryContext, "crm_security permissions",
											   ALLOCSET_SMALL_SIZES);
	perm_cache.valid = false;
	MemoryContextReset(perm_cache.cxt);

	/* The context first (it may verify the token), then its generation, then the rest. */
	claims = ctx_claims_ref();
	gen = ctx_generation();

	/* Collect in the caller's context: a failure below leaves the cache invalid. */
	if (claims != NULL)
	{
		const char *actor = ctx_actor_type();

		perm_collect_claim(&l, claims, ctx_permissions_claim_path());
		/* Roles are granted to people; services and API keys carry their own scopes. */
		if (actor != NULL && strcmp(actor, "user") == 0)
		{
			char	   *user_id = ctx_user_id_text();
			char	   *tenant_id = ctx_tenant_text();

			if (user_id != NULL && tenant_id != NULL)
			{
				char	   *member_role = ctx_member_role_text();

				perm_collect_roles(&l, user_id, tenant_id, NULL);
				/* The role of the membership the tenant came from counts as granted. */
				if (member_role != NULL)
					perm_collect_roles(&l, member_role, tenant_id, "_role_permissions");
			}
		}
	}

	old = MemoryContextSwitchTo(perm_cache.cxt);
	if (l.n > 0)
		qsort(l.perms, l.n, sizeof(char *), perm_cmp);
	perm_cache.perms = palloc(Max(l.n, 1) * sizeof(char *));
	perm_cache.lens = palloc(Max(l.n, 1) * sizeof(int));
	for (i = 0, j = 0; i < l.n; i++)
	{
		if (j > 0 && strcmp(perm_cache.perms[j - 1], l.perms[i]) == 0)
			continue;
		/* Well-formed permissions hold no NUL byte. */
		perm_cache.perms[j] = pstrdup(l.perms[i]);
		perm_cache.lens[j] = (int) strlen(l.perms[i]);
		j++;
	}
	perm_cache.n = j;
	perm_cache.set = permset_build((const char **) perm_cache.perms, perm_cache.lens, j);
	MemoryContextSwitchTo(old);

	perm_cache.ctx_generation = gen;
	perm_cache.lxid = MyProc->lxid;
	perm_cache.generation = perm_generation;
	perm_cache.valid = true;
	return &perm_cache;
}

/* Whether the claim context holds `required` (a malformed one is never held). */
static bool
perm_context_can(const char *required, int len)
{
	if (perm_segments(required, len) == 0)
		return false;
	return permset_match(perm_effective()->set, required, len);
}

/* SQL function: permissions() returns text[] */
PG_FUNCTION_INFO_V1(crm_permissions);
Datum
crm_permissions(PG_FUNCTION_ARGS)
{
	PermCache  *c = perm_effective();
	Datum	   *elems = palloc(Max(c->n, 1) * sizeof(Datum));
	int			i;

	for (i = 0; i < c->n; i++)
		elems[i] = PointerGetDatum(cstring_to_text_with_len(c->perms[i], c->lens[i]));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, c->n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* SQL function: can(required text) returns boolean */
PG_FUNCTION_INFO_V1(crm_can);
Datum
crm_can(PG_FUNCTION_ARGS)
{
	text	   *r;

	/* Not strict: false, not NULL, so that NOT can(x) fails closed too. */
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	r = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(perm_context_can(VARDATA_ANY(r), VARSIZE_ANY_EXHDR(r)));
}

/* SQL function: authorize(required text) returns void */
PG_FUNCTION_INFO_V1(crm_authorize);
Datum
crm_authorize(PG_FUNCTION_ARGS)
{
	text	   *r;
	const char *rs;
	int			rl;

	/* Not strict: a NULL must raise, not pass. */
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required permission must not be NULL")));
	r = PG_GETARG_TEXT_PP(0);
	rs = VARDATA_ANY(r);
	rl = VARSIZE_ANY_EXHDR(r);

	/* Not echoed: it may hold anything, control characters included. */
	if (perm_segments(rs, rl) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("malformed permission"),
				 errdetail("A permission is one or more segments of printable ASCII separated by colons, at most %d bytes.",
						   PERM_MAX_LENGTH)));
	if (!perm_context_can(rs, rl))
	{
		char	   *s = text_to_cstring(r);

		if (ctx_claims_ref() == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("missing permission \"%s\"", s),
					 errdetail("There is no claim context in this transaction.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("missing permission \"%s\"", s)));
	}
	PG_RETURN_VOID();
}

/* SQL function: _role_tables_changed() returns trigger (statement level) */
PG_FUNCTION_INFO_V1(crm_role_tables_changed);
Datum
crm_role_tables_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_role_tables_changed: not called by trigger manager");
	perm_generation++;
	/* Other sessions drop their cached permissions when they process this invalidation. */
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

static void
perm_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == perm_roles_relid || relid == perm_grants_relid)
		perm_generation++;
}

/* A grant made in a rolled-back savepoint must not stay in the cache. */
static void
perm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		perm_generation++;
}

void
perm_context_init(void)
{
	/* crm_security.permissions_claim is defined by the context module (context.c). */
	crm_register_relcache_callback(perm_relcache_callback, (Datum) 0);
	RegisterSubXactCallback(perm_subxact_callback, NULL);
}
