/*
 * fuzz_permission.c
 *		libFuzzer target for permission strings (src/permission.c): the grammar
 *		(permission_valid), matching (permission_matches), and the granted-list checks
 *		has_permission, has_any_permission and has_all_permissions through their SQL entry
 *		points, including the per-call-site prepared set (hash table plus patterns).
 *
 * Input: lines; the first is the required permission, the others are granted.
 * Properties, against a reference model written from the grammar in permission.c's header:
 *	- permission_valid agrees with the model on every line;
 *	- permission_matches(g, r) agrees with the model for every granted g;
 *	- has_permission agrees with "some granted g matches", on three calls through one
 *	  call site (the linear scan, then the prepared set, then the set again);
 *	- has_any_permission / has_all_permissions over every line agree with the model;
 *	- a fourth has_permission call through the same call site with another granted list
 *	  (without its first element) agrees with the model too.
 *
 * With CRM_FUZZ_ARGS_STABLE=1 the call sites say that their arguments are constants (as
 * get_fn_expr_arg_stable() does for a Param in PL/pgSQL, whose value changes between
 * calls): then the per-call-site cache must still not answer for another list.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "../../src/permission.h"
#include "pgstub.h"

extern Datum crm_permission_valid(PG_FUNCTION_ARGS);
extern Datum crm_permission_matches(PG_FUNCTION_ARGS);
extern Datum crm_has_permission(PG_FUNCTION_ARGS);
extern Datum crm_has_any_permission(PG_FUNCTION_ARGS);
extern Datum crm_has_all_permissions(PG_FUNCTION_ARGS);
extern bool fuzz_args_stable;

#define MAXLINES 64

/* The grammar: segments of printable ASCII but ':' joined by ':'; '*' only as a segment. */
static int
ref_segments(const char *s, int len)
{
	int			n = 0,
				i = 0;

	if (len <= 0 || len > PERM_MAX_LENGTH)
		return 0;
	while (i <= len)
	{
		int			j = i;
		bool		star = false;

		while (j < len && s[j] != ':')
		{
			if ((unsigned char) s[j] < 0x21 || (unsigned char) s[j] > 0x7e)
				return 0;
			star |= s[j] == '*';
			j++;
		}
		if (j == i || (star && j - i != 1))
			return 0;
		n++;
		i = j + 1;
	}
	return n;
}

/* The n-th segment of a well-formed permission. */
static void
ref_seg(const char *s, int len, int n, const char **seg, int *seglen)
{
	int			i = 0,
				k = 0;

	for (;;)
	{
		int			j = i;

		while (j < len && s[j] != ':')
			j++;
		if (k == n)
		{
			*seg = s + i;
			*seglen = j - i;
			return;
		}
		k++;
		i = j + 1;
	}
}

static bool
ref_match(const char *g, int glen, const char *r, int rlen)
{
	int			ng,
				nr,
				k;

	if (glen == 1 && g[0] == '*')
		return true;
	ng = ref_segments(g, glen);
	nr = ref_segments(r, rlen);
	if (ng == 0 || nr == 0 || ng != nr)
		return false;
	for (k = 0; k < ng; k++)
	{
		const char *gs,
				   *rs;
		int			gl,
					rl;

		ref_seg(g, glen, k, &gs, &gl);
		ref_seg(r, rlen, k, &rs, &rl);
		if (gl == 1 && gs[0] == '*')
			continue;
		if (gl == rl && memcmp(gs, rs, gl) == 0)
			continue;
		if (k == ng - 1 && ng >= 2 && gl == 6 && memcmp(gs, "manage", 6) == 0)
			continue;
		return false;
	}
	return true;
}

static text *
mktext(const char *s, int len)
{
	return (text *) fuzz_text((const uint8_t *) s, len);
}

/* A one-dimensional text[] without NULLs (zero-dimensional when empty). */
static ArrayType *
mkarray(const char **s, const int *l, int n)
{
	Size		sz = ARR_OVERHEAD_NONULLS(1);
	ArrayType  *a;
	char	   *p;
	int			i;

	for (i = 0; i < n; i++)
		sz += INTALIGN(VARHDRSZ + l[i]);
	a = palloc0(sz);
	SET_VARSIZE(a, sz);
	a->ndim = n > 0 ? 1 : 0;
	a->dataoffset = 0;
	a->elemtype = TEXTOID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	p = ARR_DATA_PTR(a);
	for (i = 0; i < n; i++)
	{
		SET_VARSIZE(p, VARHDRSZ + l[i]);
		memcpy(VARDATA(p), s[i], l[i]);
		p += INTALIGN(VARHDRSZ + l[i]);
	}
	return a;
}

static bool
call2(PGFunction fn, FmgrInfo *flinfo, Datum a, Datum b)
{
	LOCAL_FCINFO(fcinfo, 2);

	InitFunctionCallInfoData(*fcinfo, flinfo, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = a;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = b;
	fcinfo->args[1].isnull = false;
	return DatumGetBool(fn(fcinfo));
}

static FmgrInfo *
mkflinfo(void)
{
	FmgrInfo   *f = palloc0(sizeof(FmgrInfo));

	f->fn_mcxt = CurrentMemoryContext;
	f->fn_nargs = 2;
	return f;
}

typedef struct Args
{
	const uint8_t *data;
	size_t		size;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;
	const char *lines[MAXLINES];
	int			lens[MAXLINES];
	int			n = 0,
				i,
				k;
	size_t		pos = 0;
	ArrayType  *granted,
			   *required;
	bool		any = false,
				all = true;
	FmgrInfo   *f1 = mkflinfo(),
			   *f2 = mkflinfo(),
			   *f3 = mkflinfo();

	while (pos <= a->size && n < MAXLINES)
	{
		const uint8_t *nl = memchr(a->data + pos, '\n', a->size - pos);
		size_t		end = nl ? (size_t) (nl - a->data) : a->size;

		lines[n] = (const char *) a->data + pos;
		lens[n] = (int) (end - pos);
		n++;
		pos = end + 1;
	}
	granted = mkarray(lines + 1, lens + 1, n - 1);
	required = mkarray(lines, lens, n);

	for (i = 0; i < n; i++)
	{
		text	   *t = mktext(lines[i], lens[i]);
		bool		valid = ref_segments(lines[i], lens[i]) > 0;
		bool		held = false;
		LOCAL_FCINFO(fcinfo, 1);

		InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = PointerGetDatum(t);
		fcinfo->args[0].isnull = false;
		if (DatumGetBool(crm_permission_valid(fcinfo)) != valid)
			fuzz_fail("permission_valid disagrees with the grammar");
		if (perm_segments(lines[i], lens[i]) != ref_segments(lines[i], lens[i]))
			fuzz_fail("perm_segments counts segments differently from the grammar");
		for (k = 1; k < n; k++)
		{
			bool		m = valid && ref_match(lines[k], lens[k], lines[i], lens[i]);

			held |= m;
			if (i == 0 && call2(crm_permission_matches, NULL, PointerGetDatum(mktext(lines[k], lens[k])),
								PointerGetDatum(t)) != m)
				fuzz_fail("permission_matches disagrees with the model");
		}
		any |= held;
		all &= held;
		if (i == 0)
		{
			int			round;

			for (round = 0; round < 3; round++)
				if (call2(crm_has_permission, f1, PointerGetDatum(granted), PointerGetDatum(t)) != held)
					fuzz_fail(psprintf("has_permission disagrees with the model (call %d)", round + 1));
		}
	}
	if (n >= 2)
	{
		bool		held = false;

		for (k = 2; k < n; k++)
			held |= ref_segments(lines[0], lens[0]) > 0 && ref_match(lines[k], lens[k], lines[0], lens[0]);
		if (call2(crm_has_permission, f1, PointerGetDatum(mkarray(lines + 2, lens + 2, n - 2)),
				  PointerGetDatum(mktext(lines[0], lens[0]))) != held)
			fuzz_fail("has_permission answered for another granted list (call site cache)");
	}
	for (k = 0; k < 3; k++)
	{
		if (call2(crm_has_any_permission, f2, PointerGetDatum(granted), PointerGetDatum(required)) != any)
			fuzz_fail(psprintf("has_any_permission disagrees with the model (call %d)", k + 1));
		if (call2(crm_has_all_permissions, f3, PointerGetDatum(granted), PointerGetDatum(required)) != all)
			fuzz_fail(psprintf("has_all_permissions disagrees with the model (call %d)", k + 1));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	Args		a = {data, size};

	fuzz_args_stable = getenv("CRM_FUZZ_ARGS_STABLE") != NULL;

	if (!fuzz_try(run, &a))
		fuzz_fail(psprintf("a permission check raised: %s", fuzz_last_error.message));
	fuzz_end(cxt);
	return 0;
}
