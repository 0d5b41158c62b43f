/*
 * fuzz_jwk.c
 *		libFuzzer target for the JWK and JWKS parser, keys_parse_jsonb() (src/keys.c),
 *		with OpenSSL for the key material, after the strict JSON parser.
 *
 * Properties: a refusal is an ERROR with SQLSTATE 28000 or 22023 (never an internal
 * error, never a crash); an accepted set has at least one key, each of a known type; the
 * set frees cleanly (its OpenSSL objects too: LeakSanitizer watches).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "../../src/json_util.h"
#include "../../src/keys.h"
#include "pgstub.h"

static void
run(void *arg)
{
	Jsonb	   *j = arg;
	CrmKeySet  *set = keys_parse_jsonb(j, CurrentMemoryContext);
	int			i;

	for (i = 0; i < set->nkeys; i++)
		if (keys_type_name(set->keys[i]) == NULL)
			fuzz_fail("a key of no known type");
	keys_free_set(set);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	const char *why;
	Jsonb	   *j = json_parse_object((const char *) data, (int) size, &why);

	if (j != NULL && !fuzz_try(run, j) &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE &&
		fuzz_last_error.sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
						   fuzz_last_error.message));
	fuzz_end(cxt);
	return 0;
}
