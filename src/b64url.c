/*
 * b64url.c
 *		Strict base64url without padding.
 *
 * A lenient decoder (one that skips foreign characters, accepts padding or ignores the
 * unused low bits of the last character) lets one token have several encodings, which
 * breaks anything that treats tokens as identifiers and hides tampering; so every
 * deviation is refused.
 */
#include "postgres.h"

#include "b64url.h"

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of each character, -1 outside the alphabet. */
static const int8 b64url_value[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

int
b64url_encode(const unsigned char *src, int len, char *dst)
{
	char	   *p = dst;
	int			i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
		*p++ = b64url_alphabet[v & 0x3f];
	}
	if (len - i == 1)
	{
		uint32		v = src[i] << 16;

		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
	}
	else if (len - i == 2)
	{
		uint32		v = (src[i] << 16) | (src[i + 1] << 8);

		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
	}
	return p - dst;
}

int
b64url_decode(const char *src, int len, unsigned char *dst)
{
	unsigned char *p = dst;
	uint32		acc = 0;
	int			bits = 0;
	int			i;

	if (len < 0 || len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++)
	{
		int			v = b64url_value[(unsigned char) src[i]];

		if (v < 0)
			return -1;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			*p++ = (acc >> bits) & 0xff;
		}
	}
	/* The bits left over must be zero: one encoding per byte string. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return p - dst;
}

unsigned char *
b64url_decode_palloc(const char *src, int len, int *outlen)
{
	unsigned char *dst = palloc(B64URL_DEC_LEN(len) + 1);
	int			n = b64url_decode(src, len, dst);

	if (n < 0)
	{
		pfree(dst);
		return NULL;
	}
	dst[n] = '\0';
	*outlen = n;
	return dst;
}

char *
b64url_encode_palloc(const unsigned char *src, int len)
{
	char	   *dst = palloc(B64URL_ENC_LEN(len) + 1);
	int			n = b64url_encode(src, len, dst);

	dst[n] = '\0';
	return dst;
}
