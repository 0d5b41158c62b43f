/*
 * claim_path.c
 *		The one resolver of claim paths: claim(), user_id(), and every setting naming a
 *		claim (tenant_claim, role_claim, permissions_claim) find a claim here.
 *
 * A path is a member name, or names joined by dots ("app_metadata.tenant_id"); names may
 * contain dots themselves ("https://crm.example.com/tenant").
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "claim_path.h"

static char *
claim_value_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;				/* keep compiler quiet */
}

static void
claim_bad_path(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid claim path"),
			 errdetail("A claim path is a claim name or names joined by dots, none empty.")));
}

/*
 * The longest member name of the object `c` that is the whole of `rem` (`remlen` bytes) or
 * the part of it before one of its dots; its length, or 0 when there is none.  The whole
 * is looked up first (one binary search); otherwise every member name is compared, which
 * costs the size of the names whatever the length of the path.
 */
static size_t
claim_longest_member(JsonbContainer *c, const char *rem, size_t remlen)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	size_t		best = 0;

	if (getKeyJsonValueFromContainer(c, rem, remlen, &v) != NULL)
		return remlen;
	if (memchr(rem, '.', remlen) == NULL)
		return 0;
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		size_t		klen;

		if (tok != WJB_KEY)
			continue;
		klen = v.val.string.len;
		if (klen > best && klen < remlen && rem[klen] == '.' &&
			memcmp(rem, v.val.string.val, klen) == 0)
			best = klen;
	}
	return best;
}

/*
 * The one resolver of claim paths, for claim() and every claim setting (tenant_claim,
 * role_claim, permissions_claim).  At each level the longest member name that is the whole
 * remaining path, or the part of it before one of its dots, is taken, and the rest of the
 * path is looked up inside that member; in an array the next segment is a decimal index.
 * So a member named by the whole path ("https://crm.example.com/tenant", or a literal
 * "a.b") wins over a nested a -> b, and a namespaced member holding an object is reached
 * with "https://crm.example.com/app.tenant".  There is no backtracking: once a name is
 * taken, the rest must be found inside it.
 */
bool
claim_path_value(const Jsonb *claims, const char *path, JsonbValue *out)
{
	JsonbContainer *c;
	const char *rem = path;
	size_t		remlen = strlen(path);

	if (remlen == 0 || path[0] == '.' || path[remlen - 1] == '.' || strstr(path, "..") != NULL)
		claim_bad_path();
	if (claims == NULL)
		return false;
	c = (JsonbContainer *) &claims->root;
	for (;;)
	{
		JsonbValue *v = NULL;
		JsonbValue	elem;
		size_t		seglen;

		if (JsonContainerIsObject(c))
		{
			seglen = claim_longest_member(c, rem, remlen);
			if (seglen > 0)
				v = getKeyJsonValueFromContainer(c, rem, seglen, &elem);
		}
		else if (JsonContainerIsArray(c) && !JsonContainerIsScalar(c))
		{
			const char *dot = memchr(rem, '.', remlen);
			size_t		i;
			uint32		idx = 0;

			seglen = dot ? (size_t) (dot - rem) : remlen;
			if (seglen > 9)
				return false;
			for (i = 0; i < seglen && rem[i] >= '0' && rem[i] <= '9'; i++)
				idx = idx * 10 + (rem[i] - '0');
			if (i == seglen)
				v = getIthJsonbValueFromContainer(c, idx);
		}
		else
			return false;
		if (v == NULL)
			return false;
		if (seglen == remlen)
		{
			*out = *v;
			return true;
		}
		if (v->type != jbvBinary)
			return false;
		c = v->val.binary.data;
		rem += seglen + 1;
		remlen -= seglen + 1;
	}
}

char *
claim_path_text(const Jsonb *claims, const char *path)
{
	JsonbValue	v;

	if (!claim_path_value(claims, path, &v))
		return NULL;
	return claim_value_text(&v);
}
