/*
 * request_sign.c
 *		sign_request() and verify_request(): HMAC-SHA256 over a canonical form of an HTTP
 *		request (docs/requests.md), a time window, and nonces refused when seen again within
 *		it, in every session.
 *
 * The canonical form (version 1) is
 *
 *	crm-req-v1\n<len>:<METHOD>\n<len>:<path?query>\n<timestamp>\n<len>:<nonce>\n<hex sha256(body)>
 *
 * where each <len> is the byte length of the field after it, in decimal.  The lengths alone
 * make the form unambiguous (no byte can move from one field to its neighbour without a
 * length changing); the fields are also restricted (method: A-Z 0-9 - _; path and nonce:
 * printable ASCII without space), so that no field can contain the line separator either and
 * the text is the same in every encoding.  The signature is "v1=" and the lowercase hex of
 * HMAC-SHA256(secret, canonical form).
 *
 * Seen nonces live in a shared table (shmem_table.c) keyed by a digest of the secret and the
 * nonce, so that two clients with different secrets never collide and nothing secret is
 * stored; an entry is kept until the request's timestamp plus the window has passed, after
 * which the signature is refused by its time anyway.  When the table is full of unexpired
 * nonces, a new nonce is refused with 53400 rather than an old one forgotten (forgetting
 * would let its request be replayed).  Without shared_preload_libraries there is no store:
 * a verification with a nonce raises 55000 with a hint, never passes unchecked.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/detoast.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "crypto.h"
#include "keys.h"
#include "request_sign.h"
#include "shmem_table.h"

#define REQ_VERSION_PREFIX "crm-req-v1"
#define REQ_SIG_PREFIX "v1="
#define REQ_SIG_LEN (3 + 2 * CRM_SHA256_LEN)
#define REQ_MIN_SECRET 16
#define REQ_MAX_SECRET 1024
#define REQ_MAX_METHOD 32
#define REQ_MAX_PATH 8192
#define REQ_MAX_NONCE 128
/* Timestamps: Unix seconds from 1970 to 9999-12-31. */
#define REQ_MAX_TS INT64CONST(253402300799)

static ShtTable req_nonces = {"crm_security request nonces", 50000, NULL, NULL};

void
request_sign_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("crm_security.request_nonce_slots",
							"Nonces of signed requests that shared memory holds (needs shared_preload_libraries).",
							"A nonce stays until its request's window has passed; when all are in use, new nonces are refused.",
							&req_nonces.slots, 50000, 100, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	sht_register(&req_nonces);
}

static void
req_bad_arg(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 detail ? errdetail("%s", detail) : 0));
}

/* A text argument as bytes; 22023 naming it when NULL or out of [min, max] bytes. */
static const char *
req_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, int min, int max, int *len)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
	/* Measured before detoasting: a 1 GB argument is refused without being read. */
	if (toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ > (Size) max ||
		toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ < (Size) min)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be %d to %d bytes long", name, min, max)));
	t = PG_GETARG_TEXT_PP(argno);
	*len = VARSIZE_ANY_EXHDR(t);
	return VARDATA_ANY(t);
}

static void
req_check_chars(const char *s, int len, const char *name, bool method)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		bool		ok = method ? ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
			: (c >= 0x21 && c <= 0x7E);

		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains a character that is not allowed", name),
					 errdetail(method ? "A method is made of the characters A-Z, 0-9, \"-\" and \"_\"."
							   : "Only printable ASCII characters other than space are allowed; percent-encode the others.")));
	}
}

typedef struct ReqArgs
{
	const char *secret;
	int			secret_len;
	const char *method;
	int			method_len;
	const char *path;
	int			path_len;
	const char *body;
	int			body_len;
	int64		ts;
	const char *nonce;			/* NULL: none */
	int			nonce_len;
} ReqArgs;

/*
 * The arguments shared by both functions, positions: secret, (signature), method, path,
 * body, ts; nonce at `nonce_arg` (-1: none).
 */
static void
req_args(FunctionCallInfo fcinfo, int first, int nonce_arg, ReqArgs *a)
{
	a->secret = req_text_arg(fcinfo, 0, "secret", REQ_MIN_SECRET, REQ_MAX_SECRET, &a->secret_len);
	a->method = req_text_arg(fcinfo, first, "method", 1, REQ_MAX_METHOD, &a->method_len);
	req_check_chars(a->method, a->method_len, "method", true);
	a->path = req_text_arg(fcinfo, first + 1, "path", 1, REQ_MAX_PATH, &a->path_len);
	req_check_chars(a->path, a->path_len, "path", false);
	if (a->path[0] != '/')
		req_bad_arg("path must start with \"/\"", NULL);
	if (PG_ARGISNULL(first + 2))
	{
		a->body = "";
		a->body_len = 0;
	}
	else
	{
		bytea	   *b = PG_GETARG_BYTEA_PP(first + 2);

		a->body = VARDATA_ANY(b);
		a->body_len = VARSIZE_ANY_EXHDR(b);
	}
	if (PG_ARGISNULL(first + 3))
		req_bad_arg("timestamp must not be null", NULL);
	a->ts = PG_GETARG_INT64(first + 3);
	if (a->ts < 0 || a->ts > REQ_MAX_TS)
		req_bad_arg("timestamp is out of range",
					"A timestamp is a number of seconds since 1970-01-01 UTC, before the year 10000.");
	a->nonce = NULL;
	a->nonce_len = 0;
	if (nonce_arg >= 0 && !PG_ARGISNULL(nonce_arg))
	{
		a->nonce = req_text_arg(fcinfo, nonce_arg, "nonce", 1, REQ_MAX_NONCE, &a->nonce_len);
		req_check_chars(a->nonce, a->nonce_len, "nonce", false);
	}
}

/* HMAC-SHA256 of the canonical form into mac[CRM_SHA256_LEN]. */
static void
req_mac(const ReqArgs *a, unsigned char *mac)
{
	unsigned char digest[CRM_SHA256_LEN];
	char		hex[2 * CRM_SHA256_LEN + 1];
	StringInfoData buf;
	unsigned int maclen = 0;

	crm_sha256(a->body, a->body_len, digest);
	hex_encode((const char *) digest, CRM_SHA256_LEN, hex);
	hex[2 * CRM_SHA256_LEN] = '\0';
	initStringInfo(&buf);
	appendStringInfo(&buf, REQ_VERSION_PREFIX "\n%d:", a->method_len);
	appendBinaryStringInfo(&buf, a->method, a->method_len);
	appendStringInfo(&buf, "\n%d:", a->path_len);
	appendBinaryStringInfo(&buf, a->path, a->path_len);
	appendStringInfo(&buf, "\n" INT64_FORMAT "\n%d:", a->ts, a->nonce_len);
	if (a->nonce_len > 0)
		appendBinaryStringInfo(&buf, a->nonce, a->nonce_len);
	appendStringInfo(&buf, "\n%s", hex);
	crm_hmac(crm_alg_md(crm_alg_lookup("HS256")),
			 (const unsigned char *) a->secret, a->secret_len,
			 (const unsigned char *) buf.data, buf.len, mac, &maclen);
	if (maclen != CRM_SHA256_LEN)
		elog(ERROR, "HMAC-SHA256 gave %u bytes", maclen);
	pfree(buf.data);
}

/*
 * SQL function: sign_request(secret text, method text, path text, body bytea, ts bigint,
 *		nonce text DEFAULT NULL) returns text
 */
PG_FUNCTION_INFO_V1(crm_sign_request);
Datum
crm_sign_request(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	ReqArgs		a;
	unsigned char mac[CRM_SHA256_LEN];
	char		out[REQ_SIG_LEN + 1];

	keys_hide_statement_push(&hide);
	req_args(fcinfo, 1, 5, &a);
	req_mac(&a, mac);
	memcpy(out, REQ_SIG_PREFIX, 3);
	hex_encode((const char *) mac, CRM_SHA256_LEN, out + 3);
	out[REQ_SIG_LEN] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
	keys_hide_statement_pop(&hide);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, REQ_SIG_LEN));
}

/* The signature as bytes: "v1=" and 64 lowercase hex digits; false otherwise. */
static bool
req_parse_signature(text *sig, unsigned char *mac)
{
	const char *s;
	int			i;

	if (toast_raw_datum_size(PointerGetDatum(sig)) != VARHDRSZ + REQ_SIG_LEN)
		return false;
	sig = pg_detoast_datum_packed(sig);
	s = VARDATA_ANY(sig);
	if (memcmp(s, REQ_SIG_PREFIX, 3) != 0)
		return false;
	for (i = 0; i < 2 * CRM_SHA256_LEN; i++)
	{
		char		c = s[3 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	hex_decode(s + 3, 2 * CRM_SHA256_LEN, (char *) mac);
	return true;
}

/*
 * Record the nonce as seen until `until_ns`; false when it was already seen in its window.
 * 53400 when the store is full of unexpired nonces.
 */
static bool
req_nonce_fresh(const ReqArgs *a, int64 now, int64 until_ns)
{
	ShtKey		key;
	ShtEntry   *e;
	bool		found;
	bool		fresh;
	unsigned char id[CRM_SHA256_LEN];
	unsigned int len = 0;

	/* The nonce under this secret: a digest that reveals neither. */
	crm_hmac(crm_alg_md(crm_alg_lookup("HS256")),
			 (const unsigned char *) a->secret, a->secret_len,
			 (const unsigned char *) a->nonce, a->nonce_len, id, &len);
	sht_key(&key, "nonce", (const char *) id, len);
	e = sht_acquire(&req_nonces, &key, true, now, &found);
	if (e == NULL)
	{
		sht_release(&req_nonces);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many nonces in the time window"),
				 errdetail("Every slot of the nonce store holds a nonce whose window has not ended."),
				 errhint("Raise crm_security.request_nonce_slots, or shorten max_skew.")));
	}
	SpinLockAcquire(&e->mutex);
	fresh = !found || e->idle_at <= now;
	if (fresh)
	{
		e->idle_at = until_ns;
		e->keep = true;
	}
	SpinLockRelease(&e->mutex);
	sht_release(&req_nonces);
	return fresh;
}

/*
 * SQL function: verify_request(secret text, signature text, method text, path text,
 *		body bytea, ts bigint, max_skew interval DEFAULT '5 minutes', nonce text DEFAULT NULL)
 *		returns boolean
 */
PG_FUNCTION_INFO_V1(crm_verify_request);
Datum
crm_verify_request(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	ReqArgs		a;
	unsigned char mac[CRM_SHA256_LEN];
	unsigned char given[CRM_SHA256_LEN];
	int64		skew,
				now,
				ts_ns;
	bool		ok;

	keys_hide_statement_push(&hide);
	req_args(fcinfo, 2, 7, &a);
	if (PG_ARGISNULL(6))
		req_bad_arg("max_skew must not be null", NULL);
	skew = sht_interval_ns(PG_GETARG_INTERVAL_P(6), "max_skew", INT64CONST(86400) * SHT_NS_PER_SEC, "one day");
	if (a.nonce != NULL && !sht_ready(&req_nonces))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nonces of signed requests need the library preloaded"),
				 errdetail("Without shared_preload_libraries there is no store shared by all sessions, so a replayed nonce could not be refused."),
				 errhint("Add crm_security to shared_preload_libraries and restart, or verify without a nonce.")));
	if (PG_ARGISNULL(1) || !req_parse_signature(PG_GETARG_TEXT_PP(1), given))
	{
		keys_hide_statement_pop(&hide);
		PG_RETURN_BOOL(false);
	}
	req_mac(&a, mac);
	ok = CRYPTO_memcmp(mac, given, CRM_SHA256_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));

	/* The window, both ways, against the clock (not the transaction's start). */
	now = sht_now_ns();
	{
		/*
		 * Compared in seconds first: a timestamp near the year 9999 in nanoseconds would
		 * overflow (and could wrap into the window).  The window is at most a day.
		 */
		int64		now_s = now / SHT_NS_PER_SEC +
			(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;

		ts_ns = 0;
		if (a.ts < now_s - 2 * SECS_PER_DAY || a.ts > now_s + 2 * SECS_PER_DAY)
			ok = false;
		else
			ts_ns = (a.ts - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * SHT_NS_PER_SEC;
	}
	if (ok && (ts_ns < now - skew || ts_ns > now + skew))
		ok = false;
	/* Only an authentic request in its window may take a slot of the store. */
	if (ok && a.nonce != NULL)
		ok = req_nonce_fresh(&a, now, ts_ns + skew);
	keys_hide_statement_pop(&hide);
	PG_RETURN_BOOL(ok);
}
