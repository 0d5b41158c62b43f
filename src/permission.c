/*
 * permission.c
 *		Permission strings: their grammar, their wildcard matching, prepared sets of them,
 *		and the SQL functions that check given lists (permission_valid(),
 *		permission_matches(), has_permission(), has_any_permission(),
 *		has_all_permissions()).  The permissions of the claim context are perm_context.c's.
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

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "permission.h"

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
 * Whether granted g satisfies the well-formed required r (see the grammar above).  One
 * pass over g, validating it as it goes: a mismatch returns false early, which is the right
 * answer for a malformed g too, and a match has seen (and checked) all of g.  The caller
 * has checked r with perm_segments().
 */
static bool
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
PermSet *
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
bool
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
