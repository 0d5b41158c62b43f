/*
 * fuzz_claims_path.c
 *		libFuzzer target for claim paths, claim_path_text() (src/claim_path.c): the
 *		whole-name lookup, the dot-separated walk through objects and array indexes, and
 *		the text of what it finds.
 *
 * Input: the path, a newline, then the claims (a JSON object for json_parse_object).
 * Properties: a malformed path is an ERROR with SQLSTATE 22023 whatever the claims; a
 * path without dots that names a top-level string member gives that string; the lookup
 * is deterministic.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "../../src/claim_path.h"
#include "../../src/json_util.h"
#include "pgstub.h"

typedef struct Args
{
	Jsonb	   *claims;
	const char *path;
	char	   *result;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;

	a->result = claim_path_text(a->claims, a->path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	const uint8_t *nl = memchr(data, '\n', size);
	const char *why;
	Args		a;
	bool		ok;
	char	   *first;

	if (nl == NULL || memchr(data, '\0', nl - data) != NULL)
	{
		fuzz_end(cxt);
		return 0;
	}
	a.path = pnstrdup((const char *) data, nl - data);
	a.claims = json_parse_object((const char *) nl + 1, (int) (size - (nl + 1 - data)), &why);
	ok = fuzz_try(run, &a);
	if (!ok && fuzz_last_error.sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
		fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
						   fuzz_last_error.message));
	first = ok ? a.result : NULL;
	if (ok != fuzz_try(run, &a) || (ok && ((first == NULL) != (a.result == NULL) ||
										   (first && strcmp(first, a.result) != 0))))
		fuzz_fail("the same path and claims gave two answers");
	if (ok && a.claims != NULL && strchr(a.path, '.') == NULL)
	{
		bool		isstr;
		char	   *m = json_member_string(&a.claims->root, a.path, &isstr);

		if (m != NULL && (a.result == NULL || strcmp(m, a.result) != 0))
			fuzz_fail("a top-level string member is not what the path gives");
	}
	fuzz_end(cxt);
	return 0;
}
