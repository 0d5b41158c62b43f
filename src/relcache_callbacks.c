/*
 * relcache_callbacks.c
 *		The module's relcache invalidation callbacks behind one registration.
 *
 * PostgreSQL 15 has room for ten relcache callbacks per process (MAX_RELCACHE_CALLBACKS),
 * shared by the server and every loaded library.  Citus takes five and the server two, so
 * a module that registered one per cache (key store, permissions, tenants, audit) made
 * CREATE EXTENSION citus fail with "out of relcache_callback_list slots" when both were
 * preloaded.  The module registers one callback, which calls each of its own in order.
 */
#include "postgres.h"

#include "relcache_callbacks.h"

#define CRM_MAX_RELCACHE_CALLBACKS 8

static struct
{
	RelcacheCallbackFunction func;
	Datum		arg;
}			crm_relcache_callbacks[CRM_MAX_RELCACHE_CALLBACKS];
static int	crm_relcache_ncallbacks = 0;

static void
crm_relcache_dispatch(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < crm_relcache_ncallbacks; i++)
		crm_relcache_callbacks[i].func(crm_relcache_callbacks[i].arg, relid);
}

void
crm_register_relcache_callback(RelcacheCallbackFunction func, Datum arg)
{
	if (crm_relcache_ncallbacks >= CRM_MAX_RELCACHE_CALLBACKS)
		elog(FATAL, "out of crm_security relcache callback slots");
	if (crm_relcache_ncallbacks == 0)
		CacheRegisterRelcacheCallback(crm_relcache_dispatch, (Datum) 0);
	crm_relcache_callbacks[crm_relcache_ncallbacks].func = func;
	crm_relcache_callbacks[crm_relcache_ncallbacks].arg = arg;
	crm_relcache_ncallbacks++;
}
