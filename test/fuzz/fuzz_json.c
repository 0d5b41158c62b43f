/*
 * fuzz_json.c
 *		libFuzzer target for the strict JSON object parser, json_parse_object()
 *		(src/json_util.c: UTF-8 and depth checks, PostgreSQL's JSON lexer, jsonb
 *		construction, duplicate-member refusal), and the compact writer.
 *
 * Properties:
 *	- the parser never raises and never crashes: bad input is a NULL with a reason;
 *	- an accepted object written compactly parses again, and writing that gives the
 *	  same text (the compact form is a fixed point).
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "../../src/json_util.h"
#include "pgstub.h"

typedef struct Args
{
	const uint8_t *data;
	size_t		size;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;
	const char *why = NULL;
	Jsonb	   *j = json_parse_object((const char *) a->data, (int) a->size, &why);
	StringInfoData s1,
				s2;
	Jsonb	   *j2;

	if (j == NULL)
	{
		if (why == NULL)
			fuzz_fail("json_parse_object refused without a reason");
		return;
	}
	if (!JB_ROOT_IS_OBJECT(j))
		fuzz_fail("json_parse_object accepted a non-object");
	initStringInfo(&s1);
	json_append_compact(&s1, &j->root);
	j2 = json_parse_object(s1.data, s1.len, &why);
	if (j2 == NULL)
	{
		fprintf(stderr, "compact form refused (%s): %s\n", why, s1.data);
		fuzz_fail("the compact form of an accepted object does not parse");
	}
	initStringInfo(&s2);
	json_append_compact(&s2, &j2->root);
	if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len) != 0)
	{
		fprintf(stderr, "1: %s\n2: %s\n", s1.data, s2.data);
		fuzz_fail("the compact form is not a fixed point");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	Args		a = {data, size};

	if (!fuzz_try(run, &a))
		fuzz_fail(psprintf("json_parse_object raised: %s", fuzz_last_error.message));
	fuzz_end(cxt);
	return 0;
}
