/*
 * apikey_format.h
 *		The API key format (apikey_format.c): <prefix>_<30 base62 random><6 base62 CRC32>.
 */
#ifndef CRM_APIKEY_FORMAT_H
#define CRM_APIKEY_FORMAT_H

#define APIKEY_PREFIX_MAX	32		/* bytes of a prefix */
#define APIKEY_BODY_LEN		30		/* base62 characters drawn from the CSPRNG */
#define APIKEY_CRC_LEN		6		/* base62 characters of the CRC32 */
#define APIKEY_TAIL_LEN		(APIKEY_BODY_LEN + APIKEY_CRC_LEN)
#define APIKEY_MAX_LEN		(APIKEY_PREFIX_MAX + 1 + APIKEY_TAIL_LEN)
#define APIKEY_DISPLAY_BODY 6		/* body characters kept in the display prefix */

/* Whether `prefix` (len bytes) follows the prefix grammar. */
extern bool apikey_prefix_valid(const char *prefix, int len);

/* Raise 22023 unless `prefix` follows the prefix grammar. */
extern void apikey_prefix_check(const char *prefix, int len);

/* A new key with `prefix` (checked by the caller), palloc'd and NUL-terminated. */
extern char *apikey_generate(const char *prefix, int len);

/* Whether `key` (len bytes) is a well-formed key: prefix grammar, length, checksum. */
extern bool apikey_format_ok(const char *key, int len);

/* The display prefix of a well-formed key: its prefix, '_' and the first body characters. */
extern char *apikey_display_prefix(const char *key, int len);

/* CRC-32 (IEEE 802.3, as zlib), exposed for the tests of the format. */
extern uint32 apikey_crc32(const unsigned char *data, size_t len);

#endif							/* CRM_APIKEY_FORMAT_H */
