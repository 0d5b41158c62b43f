/*
 * fuzz_pem.c
 *		libFuzzer target for keys given as text, keys_parse_text() (src/keys.c): PEM
 *		armor scanning, public and private keys and certificates through OpenSSL, or an
 *		HMAC secret.
 *
 * Properties: a refusal is an ERROR with SQLSTATE 28000 (never an internal error, never a
 * crash); an accepted text is one key; the set frees cleanly (LeakSanitizer watches).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "../../src/keys.h"
#include "pgstub.h"

typedef struct Args
{
	const char *data;
	int			len;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;
	CrmKeySet  *set = keys_parse_text(a->data, a->len, CurrentMemoryContext);

	if (set->nkeys != 1 || keys_type_name(set->keys[0]) == NULL)
		fuzz_fail("a text key is not exactly one key of a known type");
	keys_free_set(set);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	Args		a = {(const char *) data, (int) size};

	if (!fuzz_try(run, &a) &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION &&
		fuzz_last_error.sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
		fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
						   fuzz_last_error.message));
	fuzz_end(cxt);
	return 0;
}
