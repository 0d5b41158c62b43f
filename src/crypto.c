/*
 * crypto.c
 *		Crypto primitives: HMAC, digests, constant-time comparison, random bytes.
 */
#include "postgres.h"

#include "crm_security.h"

void
crypto_init(void)
{
}
