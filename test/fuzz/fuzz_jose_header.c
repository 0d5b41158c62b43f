/*
 * fuzz_jose_header.c
 *		libFuzzer target for the compact-token splitter and JOSE header checks,
 *		jwt_token_header() (src/jwt.c: lengths, dots, base64url, the header's strict JSON,
 *		"alg", "crit", "b64", "kid").
 *
 * An input starting with '{' is taken as a header: it is base64url-encoded into a token
 * with a fixed payload and signature, so that the fuzzer reaches the header checks
 * directly.  Anything else is taken as a whole token.
 *
 * Properties: a refusal is an ERROR with SQLSTATE 28000 (never an internal error, never a
 * crash); an accepted header names a supported algorithm.
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "../../src/b64url.h"
#include "../../src/crypto.h"
#include "../../src/jwt.h"
#include "pgstub.h"

typedef struct Args
{
	const char *token;
	int			len;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;
	const CrmAlg *alg = NULL;
	const char *kid = NULL;

	jwt_token_header(a->token, a->len, &alg, &kid);
	if (alg == NULL)
		fuzz_fail("a header was accepted without an algorithm");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	Args		a;

	if (size > 0 && data[0] == '{')
	{
		char	   *tok = palloc(B64URL_ENC_LEN(size) + 16);
		int			n = b64url_encode(data, (int) size, tok);

		memcpy(tok + n, ".e30.c2ln", 9);
		a.token = tok;
		a.len = n + 9;
	}
	else
	{
		a.token = (const char *) data;
		a.len = (int) size;
	}
	if (!fuzz_try(run, &a) && fuzz_last_error.sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
		fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
						   fuzz_last_error.message));
	fuzz_end(cxt);
	return 0;
}
