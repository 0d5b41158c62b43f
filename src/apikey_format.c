/*
 * apikey_format.c
 *		The format of API keys: generation from the CSPRNG, the prefix grammar, the CRC32
 *		checksum, and the check that needs no table: generate_api_key(),
 *		api_key_format_valid().
 *
 * A key is <prefix>_<body><checksum>, as GitHub's tokens are:
 *	- prefix: 1 to 32 bytes, a lowercase ASCII letter, then lowercase letters and digits,
 *	  in groups separated by single '_' (no leading, trailing or doubled '_');
 *	- body: 30 base62 characters, each drawn uniformly from the CSPRNG (about 178 bits);
 *	- checksum: the CRC32 of "<prefix>_<body>" in 6 base62 digits, most significant first.
 * Base62 has no '_', so the key splits at its last '_': what precedes is the prefix, and
 * exactly 36 base62 characters must follow.  The checksum covers the prefix, so a typo in
 * the prefix is caught too.  The checksum only turns typos and scanners' false positives
 * away early; it is no secret and proves nothing about a key.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "access/detoast.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "apikey_format.h"

static const char base62_digits[] =
"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static inline int
base62_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 36;
	return -1;
}

uint32
apikey_crc32(const unsigned char *data, size_t len)
{
	static uint32 table[256];
	static bool table_ready = false;
	uint32		crc = 0xFFFFFFFF;
	size_t		i;

	if (!table_ready)
	{
		for (i = 0; i < 256; i++)
		{
			uint32		c = (uint32) i;
			int			k;

			for (k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320 ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		table_ready = true;
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
	return crc ^ 0xFFFFFFFF;
}

/* The CRC32 of `data` as APIKEY_CRC_LEN base62 digits (62^6 > 2^32) into out. */
static void
crc_base62(const char *data, size_t len, char *out)
{
	uint32		crc = apikey_crc32((const unsigned char *) data, len);
	int			i;

	for (i = APIKEY_CRC_LEN - 1; i >= 0; i--)
	{
		out[i] = base62_digits[crc % 62];
		crc /= 62;
	}
}

bool
apikey_prefix_valid(const char *prefix, int len)
{
	int			i;

	if (len < 1 || len > APIKEY_PREFIX_MAX)
		return false;
	if (!(prefix[0] >= 'a' && prefix[0] <= 'z'))
		return false;
	for (i = 1; i < len; i++)
	{
		char		c = prefix[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '_' && prefix[i - 1] != '_' && i < len - 1)
			continue;
		return false;
	}
	return true;
}

void
apikey_prefix_check(const char *prefix, int len)
{
	if (!apikey_prefix_valid(prefix, len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid API key prefix"),
				 errdetail("A prefix has 1 to %d characters: a lowercase ASCII letter, then lowercase letters and digits, in groups separated by single underscores.",
						   APIKEY_PREFIX_MAX)));
}

char *
apikey_generate(const char *prefix, int len)
{
	char	   *key = palloc(len + 1 + APIKEY_TAIL_LEN + 1);
	char	   *body = key + len + 1;
	unsigned char rnd[64];
	int			have = 0,
				used = 0;

	memcpy(key, prefix, len);
	key[len] = '_';
	/* Rejection sampling: bytes of 248 and above would favour the first 8 digits. */
	while (have < APIKEY_BODY_LEN)
	{
		if (used == 0 || used == (int) sizeof(rnd))
		{
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("could not generate random bytes")));
			used = 0;
		}
		if (rnd[used] < 248)
			body[have++] = base62_digits[rnd[used] % 62];
		used++;
	}
	OPENSSL_cleanse(rnd, sizeof(rnd));
	crc_base62(key, len + 1 + APIKEY_BODY_LEN, body + APIKEY_BODY_LEN);
	key[len + 1 + APIKEY_TAIL_LEN] = '\0';
	return key;
}

bool
apikey_format_ok(const char *key, int len)
{
	int			plen = len - 1 - APIKEY_TAIL_LEN;
	char		crc[APIKEY_CRC_LEN];
	int			i;

	if (len > APIKEY_MAX_LEN || plen < 1 || key[plen] != '_')
		return false;
	if (!apikey_prefix_valid(key, plen))
		return false;
	for (i = plen + 1; i < len; i++)
		if (base62_value((unsigned char) key[i]) < 0)
			return false;
	crc_base62(key, plen + 1 + APIKEY_BODY_LEN, crc);
	return memcmp(crc, key + plen + 1 + APIKEY_BODY_LEN, APIKEY_CRC_LEN) == 0;
}

char *
apikey_display_prefix(const char *key, int len)
{
	int			plen = len - 1 - APIKEY_TAIL_LEN;

	Assert(plen >= 1);
	return pnstrdup(key, plen + 1 + APIKEY_DISPLAY_BODY);
}

/* SQL function: generate_api_key(prefix text DEFAULT 'crm_live') returns text */
PG_FUNCTION_INFO_V1(crm_generate_api_key);
Datum
crm_generate_api_key(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(prefix);

	apikey_prefix_check(VARDATA_ANY(prefix), len);
	PG_RETURN_TEXT_P(cstring_to_text(apikey_generate(VARDATA_ANY(prefix), len)));
}

/*
 * SQL function: api_key_format_valid(api_key text) returns boolean
 * False for NULL and for anything that is not a well-formed key; never raises.
 */
PG_FUNCTION_INFO_V1(crm_api_key_format_valid);
Datum
crm_api_key_format_valid(PG_FUNCTION_ARGS)
{
	text	   *key;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	/* Longer than any key: false without detoasting a large value. */
	if (toast_raw_datum_size(PG_GETARG_DATUM(0)) > VARHDRSZ + APIKEY_MAX_LEN)
		PG_RETURN_BOOL(false);
	key = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(apikey_format_ok(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)));
}
