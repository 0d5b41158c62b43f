/*
 * isolation_registry.c
 *		The registry of isolated tables, crm_security.isolated_tables: which tables
 *		enable_tenant_isolation() (or the event trigger, for partitions and children) put
 *		under isolation, with which tenant column and options, and the policies it created
 *		there, so that isolation_report() can tell a policy added or rewritten later from the
 *		extension's own.
 *
 * The registry is not writable by PUBLIC.  These functions do everything to the table with
 * the caller's rights (the caller must own it, as ALTER TABLE and CREATE POLICY require),
 * and switch to the registry's owner only to write the registry row.  They never take
 * policies from the caller: _isolation_apply() creates the policies from the statements of
 * _isolation_statements() and records what it just created, so a direct call can restore
 * the extension's isolation of a table but cannot record anything else as the extension's.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "crm_security.h"

/* The registry table's owner: the role that created the extension. */
static Oid
iso_registry_owner(void)
{
	return crm_table_owner("isolated_tables");
}

/*
 * Run one statement on the registry as its owner.  SECURITY_RESTRICTED_OPERATION keeps the
 * borrowed rights from reaching anything but the statement (no SET ROLE, no temporary
 * objects); an error restores the caller's identity through transaction abort.
 */
static void
iso_registry_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	Oid			save_userid;
	int			save_sec;
	int			ret;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(iso_registry_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (ret < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
}

/* The table must exist and be the caller's (or a role's the caller is a member of). */
static void
iso_check_owner(Oid relid)
{
	HeapTuple	tup;
	char		relkind;

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
}

/* SQL function: _isolation_register(tbl regclass, tenant_column name, cross_tenant boolean) returns void */
PG_FUNCTION_INFO_V1(crm_isolation_register);
Datum
crm_isolation_register(PG_FUNCTION_ARGS)
{
	Oid			types[4] = {REGCLASSOID, NAMEOID, BOOLOID, BOOLOID};
	Datum		values[4];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table, tenant column and cross_tenant must not be NULL")));
	iso_check_owner(PG_GETARG_OID(0));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	/* A table isolated by the extension's own install script is not user data to dump. */
	values[3] = BoolGetDatum(creating_extension);

	SPI_connect();
	/* The policies are recorded by _isolation_apply(), once it has created them. */
	iso_registry_exec("INSERT INTO crm_security.isolated_tables AS r"
					  " (relation, tenant_column, cross_tenant, policies, system)"
					  " VALUES ($1, $2, $3, NULL, $4)"
					  " ON CONFLICT (relation) DO UPDATE"
					  " SET tenant_column = EXCLUDED.tenant_column,"
					  " cross_tenant = EXCLUDED.cross_tenant, policies = NULL",
					  4, types, values, NULL);
	/*
	 * Rows of tables dropped without the sql_drop trigger (temporary children at the end of
	 * their session, or with the trigger disabled) go, before their oid can be reused.
	 */
	iso_registry_exec("DELETE FROM crm_security.isolated_tables r"
					  " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
					  " WHERE c.oid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid)",
					  0, NULL, NULL, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/* SQL function: _isolation_apply(tbl regclass) returns void */
PG_FUNCTION_INFO_V1(crm_isolation_apply);
Datum
crm_isolation_apply(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1];
	int			ret;
	uint64		i,
				n;
	char	  **stmts;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be NULL")));
	relid = PG_GETARG_OID(0);
	iso_check_owner(relid);
	values[0] = ObjectIdGetDatum(relid);

	SPI_connect();
	ret = SPI_execute_with_args("SELECT s FROM crm_security.isolated_tables r,"
								" pg_catalog.unnest(crm_security._isolation_statements(r.relation, r.tenant_column, r.cross_tenant)) AS s"
								" WHERE r.relation OPERATOR(pg_catalog.=) $1",
								1, types, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	n = SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not registered for tenant isolation", get_rel_name(relid)),
				 errhint("Use enable_tenant_isolation().")));
	stmts = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
		stmts[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

	/* With the caller's rights: the caller owns the table. */
	for (i = 0; i < n; i++)
	{
		ret = SPI_execute(stmts[i], false, 0);
		if (ret < 0)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	}

	iso_registry_exec("UPDATE crm_security.isolated_tables"
					  " SET policies = crm_security._isolation_policies(relation, true)"
					  " WHERE relation OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/* SQL function: _isolation_unregister(tbl oid) returns void */
PG_FUNCTION_INFO_V1(crm_isolation_unregister);
Datum
crm_isolation_unregister(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Oid			types[1] = {OIDOID};
	Datum		values[1];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table must not be NULL")));
	relid = PG_GETARG_OID(0);
	/* The row of a table that no longer exists may be removed by anyone. */
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) &&
		!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	values[0] = ObjectIdGetDatum(relid);

	SPI_connect();
	iso_registry_exec("DELETE FROM crm_security.isolated_tables"
					  " WHERE relation OPERATOR(pg_catalog.=) $1",
					  1, types, values, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}
