/*
 * b64url.h
 *		Strict base64url (RFC 4648 section 5) without padding, as JOSE uses it.
 */
#ifndef CRM_B64URL_H
#define CRM_B64URL_H

/* Length of the encoding of n bytes. */
#define B64URL_ENC_LEN(n) ((((n) / 3) * 4) + (((n) % 3) ? ((n) % 3) + 1 : 0))
/* Upper bound of the decoding of n characters. */
#define B64URL_DEC_LEN(n) (((n) / 4) * 3 + 2)

/* Encode into dst (B64URL_ENC_LEN(len) bytes, not terminated); returns the length. */
extern int	b64url_encode(const unsigned char *src, int len, char *dst);

/*
 * Decode strictly: only the 64 characters of the alphabet, no padding, no whitespace, a
 * length that is not 1 modulo 4, and zero unused bits in the last character (so every
 * byte string has exactly one encoding).  Returns the decoded length, or -1.
 */
extern int	b64url_decode(const char *src, int len, unsigned char *dst);

/* palloc'd decoding (a terminating NUL is added after *outlen bytes), or NULL. */
extern unsigned char *b64url_decode_palloc(const char *src, int len, int *outlen);

/* palloc'd NUL-terminated encoding. */
extern char *b64url_encode_palloc(const unsigned char *src, int len);

#endif							/* CRM_B64URL_H */
