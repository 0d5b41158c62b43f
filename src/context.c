/*
 * context.c
 *		The claim context of the current transaction.
 *
 * Until the key store and set_claim_context() exist there is never a context, so every
 * caller sees "no context" and falls back as documented.
 */
#include "postgres.h"

#include "context.h"

Jsonb *
ctx_claims(void)
{
	return NULL;
}

char *
ctx_claim_text(const char *path)
{
	return NULL;
}

const char *
ctx_actor_type(void)
{
	return NULL;
}
