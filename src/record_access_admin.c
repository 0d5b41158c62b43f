/*
 * record_access_admin.c
 *		The registry of tables under record access, crm_security.record_access_tables,
 *		written by enable_record_access() and disable_record_access() through
 *		_record_access_register().
 *
 * As for the registry of isolated tables (isolation_registry.c), the registry is not
 * writable by PUBLIC: the caller must own the table, and the row is written with the
 * rights of the registry's owner, under SECURITY_RESTRICTED_OPERATION.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm_security.h"

#include "record_access.h"

static Oid
ra_registry_owner(void)
{
	return crm_table_owner("record_access_tables");
}

/* SQL function: _record_access_register(tbl regclass, owner_column name, company_column name, id_column name, permission text) */
PG_FUNCTION_INFO_V1(crm_record_access_register);
Datum
crm_record_access_register(PG_FUNCTION_ARGS)
{
	Oid			relid;
	HeapTuple	tup;
	char		relkind;
	Oid			types[5] = {REGCLASSOID, NAMEOID, NAMEOID, NAMEOID, TEXTOID};
	Datum		values[5];
	char		nulls[5];
	Oid			save_userid;
	int			save_sec;
	int			ret;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be NULL")));
	relid = PG_GETARG_OID(0);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = ((Form_pg_class) GETSTRUCT(tup))->relkind;
	ReleaseSysCache(tup);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a table", get_rel_name(relid))));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	/* With an owner column and a permission it is recorded, without both it is forgotten. */
	if (!PG_ARGISNULL(1) && PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("permission must not be NULL")));
	for (i = 0; i < 5; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}

	SPI_connect();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(ra_registry_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (PG_ARGISNULL(1))
		ret = SPI_execute_with_args("DELETE FROM crm_security.record_access_tables"
									" WHERE relation OPERATOR(pg_catalog.=) $1",
									1, types, values, nulls, false, 0);
	else
		ret = SPI_execute_with_args("INSERT INTO crm_security.record_access_tables AS r"
									" (relation, owner_column, company_column, id_column, permission)"
									" VALUES ($1, $2, $3, $4, $5)"
									" ON CONFLICT (relation) DO UPDATE"
									" SET owner_column = EXCLUDED.owner_column,"
									" company_column = EXCLUDED.company_column,"
									" id_column = EXCLUDED.id_column, permission = EXCLUDED.permission",
									5, types, values, nulls, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (ret < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	PG_RETURN_VOID();
}
