/*
 * fuzz_b64url.c
 *		libFuzzer target for the strict base64url decoder (src/b64url.c).
 *
 * Properties checked on every input:
 *	- decoding never writes past B64URL_DEC_LEN(len) bytes (AddressSanitizer watches);
 *	- whatever decodes re-encodes to exactly the input (one encoding per byte string);
 *	- encoding any bytes and decoding the result gives the bytes back.
 */
#include "postgres.h"

#include <stdlib.h>

#include "../../src/b64url.h"

/* The decoder's palloc variants are not used here; the plain ones need these symbols. */
void *
palloc(Size size)
{
	return malloc(size ? size : 1);
}

void
pfree(void *pointer)
{
	free(pointer);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *dec = malloc(B64URL_DEC_LEN(size) + 1);
	char	   *enc;
	int			n,
				m;

	n = b64url_decode((const char *) data, (int) size, dec);
	if (n >= 0)
	{
		enc = malloc(B64URL_ENC_LEN(n) + 1);
		m = b64url_encode(dec, n, enc);
		if (m != (int) size || memcmp(enc, data, size) != 0)
			abort();			/* a second encoding of the same bytes was accepted */
		free(enc);
	}

	enc = malloc(B64URL_ENC_LEN(size) + 1);
	m = b64url_encode(data, (int) size, enc);
	n = b64url_decode(enc, m, dec = realloc(dec, B64URL_DEC_LEN(m) + 1));
	if (n != (int) size || memcmp(dec, data, size) != 0)
		abort();				/* round trip lost bytes */
	free(enc);
	free(dec);
	return 0;
}
