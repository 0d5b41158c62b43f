/*
 * permission.c
 *		Permission strings, their wildcard matching, and the effective permissions of the
 *		claim context (token claim plus roles granted in the database).
 *
 * Grammar: one or more segments separated by ':'.  A segment is a run of printable ASCII
 * (0x21-0x7E) other than ':'; '*' is allowed only as a whole segment.  A permission longer
 * than PERM_MAX_LENGTH bytes is malformed.  Granted g satisfies required r when
 *	- g is the lone "*", or
 *	- g and r have the same number of segments and each segment of g equals the one of r
 *	  or is "*", except that a last segment "manage" of a g with two or more segments
 *	  stands for every action.
 * A '*' in r is an ordinary value: only a granted "*" (or "manage" in the last segment)
 * matches it.  A malformed g or r never matches anything.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "context.h"
#include "crm_security.h"
#include "permission.h"

/*
 * Bumped whenever the role tables may have changed (our trigger, a relcache invalidation
 * of those tables, an aborted subtransaction), so that the cache below is recomputed.
 */
static uint64 perm_generation = 0;
static Oid	perm_roles_relid = InvalidOid;
static Oid	perm_grants_relid = InvalidOid;

/*
 * The effective permissions, computed once per transaction and context.  The key is the
 * local transaction id, the generation, the claims of the context and the two settings
 * that select claims.
 */
typedef struct PermSet PermSet;

typedef struct PermCache
{
	bool		valid;
	LocalTransactionId lxid;
	uint64		generation;
	char	   *claims;			/* the claims jsonb, as bytes; NULL: no context */
	Size		claims_len;
	char	   *perm_claim;		/* crm_security.permissions_claim at the time */
	char	   *tenant_claim;	/* crm_security.tenant_claim at the time */
	int			n;
	char	  **perms;			/* sorted, distinct, well-formed */
	int		   *lens;
	PermSet    *set;			/* the same, for matching */
	MemoryContext cxt;
} PermCache;

static PermCache perm_cache;

/* ---------------------------------------------------------------------------------------
 * Grammar
 */

int
perm_segments(const char *s, int len)
{
	int			nseg = 1;
	int			seglen = 0;
	bool		star = false;
	int			i;

	if (len <= 0 || len > PERM_MAX_LENGTH)
		return 0;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == ':')
		{
			if (seglen == 0 || (star && seglen != 1))
				return 0;
			nseg++;
			seglen = 0;
			star = false;
			continue;
		}
		if (c < 0x21 || c > 0x7e)
			return 0;
		if (c == '*')
			star = true;
		seglen++;
	}
	if (seglen == 0 || (star && seglen != 1))
		return 0;
	return nseg;
}

/*
 * One pass over g, validating it as it goes: a mismatch returns false early, which is the
 * right answer for a malformed g too, and a match has seen (and checked) all of g.  The
 * caller has checked r with perm_segments().
 */
bool
perm_match(const char *g, int glen, const char *r, int rlen)
{
	int			gi = 0,
				ri = 0,
				seg = 0;

	if (glen == 1 && g[0] == '*')
		return true;
	if (glen <= 0 || glen > PERM_MAX_LENGTH)
		return false;

	for (;;)
	{
		int			gs = gi,
					rs = ri,
					gl,
					rl;
		bool		gstar = false,
					glast,
					rlast;

		while (gi < glen && g[gi] != ':')
		{
			unsigned char c = (unsigned char) g[gi];

			if (c < 0x21 || c > 0x7e)
				return false;
			if (c == '*')
				gstar = true;
			gi++;
		}
		gl = gi - gs;
		if (gl == 0 || (gstar && gl != 1))
			return false;
		while (ri < rlen && r[ri] != ':')
			ri++;
		rl = ri - rs;
		seg++;
		glast = (gi >= glen);
		rlast = (ri >= rlen);
		if (glast != rlast)
			return false;		/* different numbers of segments */
		if (!gstar && !(gl == rl && memcmp(g + gs, r + rs, gl) == 0))
		{
			if (!(glast && seg >= 2 && gl == 6 && memcmp(g + gs, "manage", 6) == 0))
				return false;
		}
		if (glast)
			return true;
		gi++;
		ri++;
	}
}

/*
 * A granted list prepared for many checks: exact permissions (no "*" segment, no final
 * "manage") in an open-addressing hash table, since such a grant matches only the equal
 * string; wildcard patterns in a list; a lone "*" as a flag.  Checking is then one hash
 * probe plus the (usually few) patterns, whatever the number of grants.
 */
typedef struct PermSetEntry
{
	const char *s;				/* NULL: empty slot */
	int			len;
	uint32		hash;
} PermSetEntry;

struct PermSet
{
	bool		all;			/* a lone "*" */
	uint32		mask;			/* table size - 1 */
	PermSetEntry *table;
	int			npatterns;
	const char **patterns;
	int		   *patlens;
};

/* Whether a well-formed g is a wildcard pattern rather than an exact permission. */
static bool
perm_is_pattern(const char *g, int glen, int nseg)
{
	int			i;

	for (i = 0; i < glen; i++)
		if (g[i] == '*')
			return true;
	return nseg >= 2 && glen >= 7 && memcmp(g + glen - 7, ":manage", 7) == 0;
}

/*
 * Build a set from `n` strings (the malformed ones are left out: they never match).  The
 * strings must outlive the set; everything is allocated in the current memory context.
 */
static PermSet *
permset_build(const char **strs, const int *lens, int n)
{
	PermSet    *ps = palloc0(sizeof(PermSet));
	uint32		size = 8;
	int			i;

	while (size < (uint32) n * 2)
		size <<= 1;
	ps->mask = size - 1;
	ps->table = palloc0(size * sizeof(PermSetEntry));
	ps->patterns = palloc(Max(n, 1) * sizeof(char *));
	ps->patlens = palloc(Max(n, 1) * sizeof(int));
	for (i = 0; i < n; i++)
	{
		const char *g = strs[i];
		int			glen = lens[i];
		int			nseg = perm_segments(g, glen);
		uint32		h,
					slot;

		if (nseg == 0)
			continue;
		if (glen == 1 && g[0] == '*')
		{
			ps->all = true;
			continue;
		}
		if (perm_is_pattern(g, glen, nseg))
		{
			ps->patterns[ps->npatterns] = g;
			ps->patlens[ps->npatterns] = glen;
			ps->npatterns++;
			continue;
		}
		h = hash_bytes((const unsigned char *) g, glen);
		for (slot = h & ps->mask; ps->table[slot].s != NULL; slot = (slot + 1) & ps->mask)
		{
			if (ps->table[slot].hash == h && ps->table[slot].len == glen &&
				memcmp(ps->table[slot].s, g, glen) == 0)
				break;
		}
		ps->table[slot].s = g;
		ps->table[slot].len = glen;
		ps->table[slot].hash = h;
	}
	return ps;
}

/* Whether the set holds the well-formed `r`. */
static bool
permset_match(const PermSet *ps, const char *r, int rlen)
{
	uint32		h,
				slot;
	int			i;

	if (ps->all)
		return true;
	h = hash_bytes((const unsigned char *) r, rlen);
	for (slot = h & ps->mask; ps->table[slot].s != NULL; slot = (slot + 1) & ps->mask)
	{
		if (ps->table[slot].hash == h && ps->table[slot].len == rlen &&
			memcmp(ps->table[slot].s, r, rlen) == 0)
			return true;
	}
	for (i = 0; i < ps->npatterns; i++)
		if (perm_match(ps->patterns[i], ps->patlens[i], r, rlen))
			return true;
	return false;
}

/*
 * Per call site (fn_extra) memory of the last granted array: a constant array, as in a
 * policy or a WHERE clause, is prepared into a PermSet once and then probed per row.  The
 * key is the array's bytes, compared whole on every call, and nothing else: a per-row array
 * may reuse the same address, and an argument that looks stable to the planner (a Const or
 * an external Param) is not stable for the life of the call site, since PL/pgSQL keeps the
 * expression state of `has_permission(p, r)` across loop iterations and calls with other
 * values in `p`.  The set is built the second time the same array is seen, so that an
 * array that changes on every row costs only the linear scan and one copy.
 */
typedef struct PermFnCache
{
	MemoryContext cxt;
	char	   *bytes;			/* the array, as bytes (a copy, in cxt); NULL: none */
	Size		len;
	PermSet    *set;			/* built from `bytes`, or NULL */
} PermFnCache;

static PermSet *
perm_fn_set(FunctionCallInfo fcinfo, ArrayType *granted)
{
	PermFnCache *c = (PermFnCache *) fcinfo->flinfo->fn_extra;
	Size		len = VARSIZE(granted);
	MemoryContext old;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PermFnCache));
		c->cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "crm_security permission set",
									   ALLOCSET_SMALL_SIZES);
		fcinfo->flinfo->fn_extra = c;
	}
	/* The same array as last time, byte for byte, or nothing cached is used. */
	if (c->bytes != NULL && c->len == len && memcmp(c->bytes, granted, len) == 0)
	{
		if (c->set == NULL)
		{
			array_iter	it;
			int			nitems = ArrayGetNItems(ARR_NDIM(granted), ARR_DIMS(granted));
			const char **strs;
			int		   *lens;
			int			n = 0,
						i;
			ArrayType  *copy = (ArrayType *) c->bytes;

			old = MemoryContextSwitchTo(c->cxt);
			strs = palloc(Max(nitems, 1) * sizeof(char *));
			lens = palloc(Max(nitems, 1) * sizeof(int));
			/* Point into our copy of the array, which lives as long as the set. */
			array_iter_setup(&it, (AnyArrayType *) copy);
			for (i = 0; i < nitems; i++)
			{
				bool		isnull;
				Datum		d = array_iter_next(&it, &isnull, i, -1, false, TYPALIGN_INT);

				if (isnull)
					continue;
				strs[n] = VARDATA_ANY(DatumGetPointer(d));
				lens[n] = VARSIZE_ANY_EXHDR(DatumGetPointer(d));
				n++;
			}
			c->set = permset_build(strs, lens, n);
			MemoryContextSwitchTo(old);
		}
		return c->set;
	}
	/* A different array: remember it, and scan this one linearly. */
	c->bytes = NULL;			/* until the copy below exists (it may fail) */
	c->len = 0;
	c->set = NULL;
	MemoryContextReset(c->cxt);
	c->bytes = MemoryContextAlloc(c->cxt, len);
	memcpy(c->bytes, granted, len);
	c->len = len;
	return NULL;
}

static void
perm_check_array(ArrayType *a)
{
	if (ARR_ELEMTYPE(a) != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("permissions must be a text array")));
}

/* Whether any element of the text[] `granted` satisfies the well-formed `r`. */
static bool
perm_array_matches(ArrayType *granted, const PermSet *set, const char *r, int rlen)
{
	array_iter	it;
	int			nitems = ArrayGetNItems(ARR_NDIM(granted), ARR_DIMS(granted));
	int			i;

	if (set != NULL)
		return permset_match(set, r, rlen);
	array_iter_setup(&it, (AnyArrayType *) granted);
	for (i = 0; i < nitems; i++)
	{
		bool		isnull;
		Datum		d = array_iter_next(&it, &isnull, i, -1, false, TYPALIGN_INT);
		text	   *t;

		if (isnull)
			continue;
		t = (text *) DatumGetPointer(d);
		/* Array elements are never compressed or external; they may have short headers. */
		if (perm_match(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), r, rlen))
			return true;
	}
	return false;
}

/* SQL function: permission_valid(permission text) returns boolean */
PG_FUNCTION_INFO_V1(crm_permission_valid);
Datum
crm_permission_valid(PG_FUNCTION_ARGS)
{
	text	   *p = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(perm_segments(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p)) > 0);
}

/* SQL function: permission_matches(granted text, required text) returns boolean */
PG_FUNCTION_INFO_V1(crm_permission_matches);
Datum
crm_permission_matches(PG_FUNCTION_ARGS)
{
	text	   *g = PG_GETARG_TEXT_PP(0);
	text	   *r = PG_GETARG_TEXT_PP(1);
	const char *rs = VARDATA_ANY(r);
	int			rl = VARSIZE_ANY_EXHDR(r);

	if (perm_segments(rs, rl) == 0)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(perm_match(VARDATA_ANY(g), VARSIZE_ANY_EXHDR(g), rs, rl));
}

/* SQL function: has_permission(granted text[], required text) returns boolean */
PG_FUNCTION_INFO_V1(crm_has_permission);
Datum
crm_has_permission(PG_FUNCTION_ARGS)
{
	ArrayType  *granted = PG_GETARG_ARRAYTYPE_P(0);
	text	   *r = PG_GETARG_TEXT_PP(1);
	const char *rs = VARDATA_ANY(r);
	int			rl = VARSIZE_ANY_EXHDR(r);

	perm_check_array(granted);
	if (perm_segments(rs, rl) == 0)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(perm_array_matches(granted, perm_fn_set(fcinfo, granted), rs, rl));
}

/*
 * Shared by has_any_permission and has_all_permissions: `all` asks whether every required
 * permission is held (true for an empty list), otherwise whether at least one is (false for
 * an empty list).  A NULL or malformed required element is never held.
 */
static bool
perm_array_holds(FunctionCallInfo fcinfo, ArrayType *granted, ArrayType *required, bool all)
{
	array_iter	it;
	int			nitems;
	int			i;
	PermSet    *set;

	perm_check_array(granted);
	perm_check_array(required);
	set = perm_fn_set(fcinfo, granted);
	nitems = ArrayGetNItems(ARR_NDIM(required), ARR_DIMS(required));
	array_iter_setup(&it, (AnyArrayType *) required);
	for (i = 0; i < nitems; i++)
	{
		bool		isnull;
		Datum		d = array_iter_next(&it, &isnull, i, -1, false, TYPALIGN_INT);
		bool		held = false;

		if (!isnull)
		{
			text	   *t = (text *) DatumGetPointer(d);
			const char *rs = VARDATA_ANY(t);
			int			rl = VARSIZE_ANY_EXHDR(t);

			held = perm_segments(rs, rl) > 0 && perm_array_matches(granted, set, rs, rl);
		}
		if (all && !held)
			return false;
		if (!all && held)
			return true;
	}
	return all;
}

/* SQL function: has_any_permission(granted text[], required text[]) returns boolean */
PG_FUNCTION_INFO_V1(crm_has_any_permission);
Datum
crm_has_any_permission(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(perm_array_holds(fcinfo, PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), false));
}

/* SQL function: has_all_permissions(granted text[], required text[]) returns boolean */
PG_FUNCTION_INFO_V1(crm_has_all_permissions);
Datum
crm_has_all_permissions(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(perm_array_holds(fcinfo, PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), true));
}

/* ---------------------------------------------------------------------------------------
 * Effective permissions of the context
 */

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
perm_collect_claim(PermList *l, Jsonb *claims, const char *path)
{
	JsonbValue	v;

	/* The resolver of claim() and of every claim setting. */
	if (!ctx_jsonb_path_value(claims, path, &v))
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
 * readable by PUBLIC).  Called through fmgr, which switches to the function's owner; the
 * EXECUTE privilege is checked only for calls from SQL, so PUBLIC need not have it.
 */
static void
perm_collect_roles(PermList *l, const char *user_id, const char *tenant_id)
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
	fn = LookupFuncName(list_make2(makeString("crm_security"), makeString("_granted_permissions")),
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

/* The cached effective permissions of the current context, recomputed when stale. */
static PermCache *
perm_effective(void)
{
	Jsonb	   *claims = ctx_claims();
	const char *pclaim = ctx_permissions_claim_path();
	const char *tclaim = ctx_tenant_claim_path();
	Size		clen = claims ? VARSIZE(claims) : 0;
	MemoryContext old;
	PermList	l = {0};
	int			i,
				j;

	if (perm_cache.valid &&
		perm_cache.lxid == MyProc->lxid &&
		perm_cache.generation == perm_generation &&
		perm_cache.claims_len == clen &&
		(clen == 0 || memcmp(perm_cache.claims, claims, clen) == 0) &&
		strcmp(perm_cache.perm_claim, pclaim) == 0 &&
		strcmp(perm_cache.tenant_claim, tclaim) == 0)
		return &perm_cache;

	if (perm_cache.cxt == NULL)
		perm_cache.cxt = AllocSetContextCreate(TopMemoryContext, "crm_security permissions",
											   ALLOCSET_SMALL_SIZES);
	perm_cache.valid = false;
	MemoryContextReset(perm_cache.cxt);

	/* Collect in the caller's context: a failure below leaves the cache invalid. */
	if (claims != NULL)
	{
		const char *actor = ctx_actor_type();

		perm_collect_claim(&l, claims, pclaim);
		/* Roles are granted to people; services and API keys carry their own scopes. */
		if (actor != NULL && strcmp(actor, "user") == 0)
		{
			char	   *user_id = ctx_claim_text("sub");
			char	   *tenant_id = ctx_tenant_text();

			if (user_id != NULL && tenant_id != NULL)
				perm_collect_roles(&l, user_id, tenant_id);
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
	perm_cache.claims = clen ? palloc(clen) : NULL;
	if (clen)
		memcpy(perm_cache.claims, claims, clen);
	perm_cache.claims_len = clen;
	perm_cache.perm_claim = pstrdup(pclaim);
	perm_cache.tenant_claim = pstrdup(tclaim);
	MemoryContextSwitchTo(old);

	perm_cache.lxid = MyProc->lxid;
	perm_cache.generation = perm_generation;
	perm_cache.valid = true;
	return &perm_cache;
}

bool
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

		if (ctx_claims() == NULL)
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
permission_init(void)
{
	/* crm_security.permissions_claim is defined by the context module (context.c). */
	CacheRegisterRelcacheCallback(perm_relcache_callback, (Datum) 0);
	RegisterSubXactCallback(perm_subxact_callback, NULL);
}
