/*
 * fuzz_jwt_claims.c
 *		libFuzzer target for the claims of a verified token, jwt_verify_token()
 *		(src/jwt.c): the input is the payload of a token that the target signs itself
 *		(HS256, with a key parsed by keys_parse_text), so that every input reaches the
 *		payload's strict JSON and the claim checks (exp, nbf, iat, iss, sub, aud).  The
 *		first byte picks the options (audience, issuer, required exp, leeway).
 *
 * Properties: a refusal is an ERROR with SQLSTATE 28000; an accepted token's exp, when
 * it is a number, is after now minus the leeway; its nbf before now plus the leeway; with
 * an audience, aud holds it; with an issuer, iss is it.
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "../../src/b64url.h"
#include "../../src/json_util.h"
#include "../../src/jwt.h"
#include "pgstub.h"

static const char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
/* 2026-01-01 00:00:00 UTC in PostgreSQL's microseconds since 2000-01-01 */
#define FUZZ_NOW ((TimestampTz) 820540800 * USECS_PER_SEC)
#define FUZZ_NOW_UNIX (820540800.0 + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (double) SECS_PER_DAY)

typedef struct Args
{
	char	   *token;
	int			len;
	JwtVerifyOptions opts;
	Jsonb	   *claims;
} Args;

static void
run(void *arg)
{
	Args	   *a = arg;
	CrmKeySet  *keys = keys_parse_text(secret, sizeof(secret) - 1, CurrentMemoryContext);

	a->claims = jwt_verify_token(a->token, a->len, keys, &a->opts, NULL);
}

static double
num(Jsonb *j, const char *name, bool *present)
{
	JsonbValue *v = json_member(&j->root, name);

	*present = v != NULL && v->type == jbvNumeric;
	if (!*present)
		return 0;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MemoryContext cxt = fuzz_begin();
	Args		a;
	uint8_t		flags = size > 0 ? data[0] : 0;
	const uint8_t *payload = size > 0 ? data + 1 : data;
	size_t		plen = size > 0 ? size - 1 : 0;
	int			n;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;

	a.token = palloc(B64URL_ENC_LEN(sizeof(header)) + B64URL_ENC_LEN(plen) + B64URL_ENC_LEN(64) + 4);
	n = b64url_encode((const unsigned char *) header, sizeof(header) - 1, a.token);
	a.token[n++] = '.';
	n += b64url_encode(payload, (int) plen, a.token + n);
	if (!HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (unsigned char *) a.token, n, mac, &maclen))
		fuzz_fail("HMAC failed");
	a.token[n++] = '.';
	n += b64url_encode(mac, (int) maclen, a.token + n);
	a.len = n;

	jwt_options_init(&a.opts);
	a.opts.now = FUZZ_NOW;
	a.opts.audience = (flags & 1) ? "crm" : NULL;
	a.opts.issuer = (flags & 2) ? "https://issuer.example" : NULL;
	a.opts.require_exp = (flags & 4) != 0;
	a.opts.leeway = (flags & 8) ? 60 : 0;

	if (!fuzz_try(run, &a))
	{
		if (fuzz_last_error.sqlerrcode != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
			fuzz_fail(psprintf("unexpected SQLSTATE %s: %s", unpack_sql_state(fuzz_last_error.sqlerrcode),
							   fuzz_last_error.message));
	}
	else
	{
		bool		has;
		double		t;
		JsonbValue *v;

		if (a.claims == NULL || !JB_ROOT_IS_OBJECT(a.claims))
			fuzz_fail("an accepted token without a claims object");
		t = num(a.claims, "exp", &has);
		if ((has && !(FUZZ_NOW_UNIX < t + a.opts.leeway)) || (!has && a.opts.require_exp))
			fuzz_fail("an expired token, or one without a required exp, was accepted");
		t = num(a.claims, "nbf", &has);
		if (has && FUZZ_NOW_UNIX + a.opts.leeway < t)
			fuzz_fail("a token before its nbf was accepted");
		if (a.opts.issuer)
		{
			v = json_member(&a.claims->root, "iss");
			if (v == NULL || v->type != jbvString || v->val.string.len != strlen(a.opts.issuer) ||
				memcmp(v->val.string.val, a.opts.issuer, v->val.string.len) != 0)
				fuzz_fail("a token of another issuer was accepted");
		}
		if (a.opts.audience && json_member(&a.claims->root, "aud") == NULL)
			fuzz_fail("a token without aud was accepted though an audience is required");
	}
	fuzz_end(cxt);
	return 0;
}
