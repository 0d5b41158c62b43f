/*
 * rel_owner.c
 *		The owner of one of the extension's tables, for code that runs statements on them as
 *		their owner (the registries, the key store, API keys, the audit's data keys), and the
 *		switch to that owner with search_path pinned to pg_catalog, pg_temp; and the plans of
 *		the statements such code keeps for the life of the backend.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm_security.h"

Oid
crm_rel_owner(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

Oid
crm_table_owner(const char *relname)
{
	Oid			nsp = get_namespace_oid("crm_security", false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "table crm_security.%s is missing", relname);
	return crm_rel_owner(relid);
}

/*
 * Run what follows as the owner of the extension's table relname, with search_path
 * pg_catalog, pg_temp; crm_as_owner_end() restores the caller's user and settings.
 */
void
crm_as_owner_begin(CrmAsOwner *st, const char *relname)
{
	Oid			owner = crm_table_owner(relname);

	GetUserIdAndSecContext(&st->save_userid, &st->save_sec);
	SetUserIdAndSecContext(owner, st->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	st->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
crm_as_owner_end(CrmAsOwner *st)
{
	AtEOXact_GUC(true, st->nest);
	SetUserIdAndSecContext(st->save_userid, st->save_sec);
}

SPIPlanPtr
crm_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}
