/*
 * fuzz_jwk.c
 *		libFuzzer target for the JWK and JWKS parser, keys_parse_jsonb() (src/keys_jwk.c),
 *		with OpenSSL for the key material, after the strict JSON parser; each input is
 *		parsed as a verification key (public parts only) and as a signing key.
 *
 * Properties: a refusal is an ERROR with SQLSTATE 28000 or 22023 (never an internal
 * error, never a crash); an accepted set has at least one key, each of a known type; the
 * set frees cleanly (its OpenSSL objects too: LeakSanitizer watches).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "../../src/json_util.h"
#include "../../src/keys.h"
#include "../../src/keys_jwk.h"
#include "pgstub.h"

static void
parse(Jsonb *j, bool with_private)
{
	CrmKeySet  *set = keys_parse_jsonb(j, with_private, CurrentMemoryContext);
	int			i;

	for (i = 0; i < set->nkeys; i++)
		if (keys_type_name(set->keys[i]) == NULL)
			fuzz_fail("a key of no known type");
	keys_free_set(set);
}

static void
run_public(void *arg)
{
	parse((Jsonb *) arg, false);
}

static void
run_private(void *arg)
{
	parse((Jsonb *) arg, true);
}

static void
check(bool ok)
{
	if (!ok &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE &&
		fuzz_last_error.sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
						   fuzz_last_error.message));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	const char *why;
	Jsonb	   *j = json_parse_object((const char *) data, (int) size, &why);

	if (j != NULL)
	{
		check(fuzz_try(run_public, j));
		check(fuzz_try(run_private, j));
	}
	fuzz_end(cxt);
	return 0;
}
