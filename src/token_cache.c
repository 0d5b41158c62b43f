/*
 * token_cache.c
 *		Verified tokens of this process, across transactions.
 *
 * A token that verified is kept, keyed by its SHA-256, with what its verification depended
 * on: the version of the key store (which also holds the verification settings of the
 * store, jwt_settings and the per-key columns), the generation of the verification
 * settings of this process, and the moment it stops holding (its exp with the leeway, or
 * its key's not_after).  An entry is used only while all three still hold, so a key
 * disabled or a setting changed in another session (the store's invalidation is accepted
 * before every lookup) makes the next transaction verify again, and nothing is kept beyond
 * exp.  A token whose nbf lies ahead is refused and never enters.
 *
 * The cache is bounded: TC_SIZE entries, the oldest evicted first; the claims of an entry
 * are freed when it goes.  The extension's own tokens (API keys, services) hold for one
 * transaction only: the service registry is checked at each of their verifications.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "utils/memutils.h"

#include "token_cache.h"

static MemoryContext tc_mcxt = NULL;
static TcEntry tc_entries[TC_SIZE];
static int	tc_next = 0;
static uint64 tc_next_id = 1;

void
tc_init(void)
{
	if (tc_mcxt == NULL)
		tc_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security token cache",
										ALLOCSET_DEFAULT_SIZES);
}

static void
tc_drop(TcEntry *e)
{
	if (e->claims != NULL)
		pfree(e->claims);
	memset(e, 0, sizeof(TcEntry));
}

/* The entry of the token with this hash, or NULL. */
static TcEntry *
tc_find_hash(const unsigned char *hash)
{
	int			i;

	for (i = 0; i < TC_SIZE; i++)
	{
		TcEntry    *e = &tc_entries[i];

		if (e->id != 0 && e->hash[0] == hash[0] && CRYPTO_memcmp(e->hash, hash, 32) == 0)
			return e;
	}
	return NULL;
}

TcEntry *
tc_lookup(const unsigned char *hash, uint64 settings_gen, uint64 ks_version, TimestampTz now)
{
	TcEntry    *e = tc_find_hash(hash);

	if (e == NULL)
		return NULL;
	/* A token seen again after it (or its key) expired is verified again, and refused. */
	if (e->settings_gen != settings_gen || e->ks_version != ks_version || now >= e->until)
	{
		tc_drop(e);
		return NULL;
	}
	return e;
}

TcEntry *
tc_store(const unsigned char *hash, const Jsonb *claims, uint64 settings_gen,
		 uint64 ks_version, TimestampTz until, CtxActor actor)
{
	TcEntry    *e;

	tc_init();
	/* The same token again (verified afresh after a change): replace its entry. */
	e = tc_find_hash(hash);
	if (e == NULL)
	{
		e = &tc_entries[tc_next];
		tc_next = (tc_next + 1) % TC_SIZE;
	}
	if (e->id != 0)
		tc_drop(e);
	e->claims = MemoryContextAlloc(tc_mcxt, VARSIZE(claims));
	memcpy(e->claims, claims, VARSIZE(claims));
	memcpy(e->hash, hash, 32);
	e->settings_gen = settings_gen;
	e->ks_version = ks_version;
	e->until = until;
	e->actor = actor;
	e->one_xact = (actor != CTX_ACTOR_USER);
	e->id = tc_next_id++;
	return e;
}

TcEntry *
tc_find_id(uint64 id)
{
	int			i;

	if (id == 0)
		return NULL;
	for (i = 0; i < TC_SIZE; i++)
		if (tc_entries[i].id == id)
			return &tc_entries[i];
	return NULL;
}

void
tc_end_of_transaction(void)
{
	int			i;

	for (i = 0; i < TC_SIZE; i++)
		if (tc_entries[i].id != 0 && tc_entries[i].one_xact)
			tc_drop(&tc_entries[i]);
}

int
tc_count(void)
{
	int			i,
				n = 0;

	for (i = 0; i < TC_SIZE; i++)
		if (tc_entries[i].id != 0)
			n++;
	return n;
}
