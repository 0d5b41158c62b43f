/*
 * rel_owner.c
 *		The owner of one of the extension's tables, for code that runs statements on them as
 *		their owner (the registries, the key store, API keys, the audit's data keys).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
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
