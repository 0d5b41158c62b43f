/*
 * token_cache.h
 *		Verified tokens of this process (token_cache.c), for the claim context.
 */
#ifndef CRM_TOKEN_CACHE_H
#define CRM_TOKEN_CACHE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#include "context_internal.h"

/* How many verified tokens a process keeps at most. */
#define TC_SIZE 128

typedef struct TcEntry
{
	uint64		id;				/* 0: empty; else unique in this process */
	unsigned char hash[32];		/* SHA-256 of the token */
	uint64		settings_gen;	/* the verification settings it was verified with */
	uint64		ks_version;		/* the key store it was verified against */
	TimestampTz until;			/* its exp (with the leeway) or its key's not_after */
	CtxActor	actor;			/* decided by the key that verified it */
	bool		one_xact;		/* holds for the current transaction only */
	Jsonb	   *claims;			/* in the cache's memory context */
} TcEntry;

/* Create the cache's memory context (from ctx_init). */
extern void tc_init(void);

/*
 * The entry of a token that holds now: same hash, settings generation and key store
 * version, `now` before its end.  NULL when there is none.
 */
extern TcEntry *tc_lookup(const unsigned char *hash, uint64 settings_gen, uint64 ks_version,
						  TimestampTz now);

/* Keep a verified token (the claims are copied), evicting the oldest entry when full. */
extern TcEntry *tc_store(const unsigned char *hash, const Jsonb *claims, uint64 settings_gen,
						 uint64 ks_version, TimestampTz until, CtxActor actor);

/* The entry whose id is `id`, or NULL when it was evicted or dropped since. */
extern TcEntry *tc_find_id(uint64 id);

/*
 * At the end of a transaction: drop the entries that hold for one transaction only (the
 * extension's own tokens, whose registry check runs at every verification).
 */
extern void tc_end_of_transaction(void);

/* How many entries hold a token (for tests: crm_security._token_cache_size()). */
extern int	tc_count(void);

#endif							/* CRM_TOKEN_CACHE_H */
