/*
 * citus_sync.c
 *		One key store for a Citus cluster: the coordinator's copy of the extension's tables
 *		is sent to every worker.
 *
 * Every worker verifies the context token itself (citus_context.c), resolves the tenant
 * and role, and evaluates the policies: it needs the keys, roles, grants, tenants and
 * members, API keys, the isolation registry and the record-access tables of the
 * coordinator.  These stay ordinary local tables on every node (the extension reads them
 * with direct scans and caches them per process; Citus reference tables would leave the
 * coordinator's own table empty).  After every statement that changes one of them on the
 * coordinator, a statement trigger sends the whole table to every worker, as one command
 * in Citus's distributed transaction (committed with two-phase commit on every node, or
 * nowhere): crm_security._citus_apply(table, rows), run on the worker as the extension's
 * owner, replaces the worker's rows and invalidates its caches.  The rows travel as a
 * parameter of the command, never in its text.  citus_sync() sends every table, for a
 * worker added later (citus_add_node copies Citus's objects, not the rows of extension
 * tables), and once after the cluster is set up: it also makes the extension's own signing
 * key (keystore_internal.c), which would otherwise be made by the first set_api_key_context(),
 * in a transaction whose worker connections cannot see it yet.
 *
 * A worker added later (citus_add_node copies Citus's objects and the extension, not the rows
 * of extension tables) gets everything at the next change of any of these tables on the
 * coordinator: the trigger first compares the active primary workers with metadata
 * (pg_dist_node) with crm_security.citus_synced_nodes, and when one is missing sends every
 * table, then records the workers.  citus_sync() does the same at once.  Until then the new
 * worker's key store is empty: it refuses every token (it fails closed).
 *
 * Rows that name a table (isolated_tables, record_access_tables, shared_records) are sent
 * only for tables that Citus knows (distributed and reference tables), the only ones that
 * exist on the workers.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

#include "citus_context.h"
#include "crm_security.h"
#include "keystore_internal.h"

typedef struct CitusSyncTable
{
	const char *name;
	bool		names_table;	/* has a regclass column "relation" */
} CitusSyncTable;

/* In an order that satisfies the foreign keys (they are not checked while applying). */
static const CitusSyncTable citus_sync_tables[] = {
	{"jwt_keys", false},
	{"roles", false},
	{"role_grants", false},
	{"tenant_tiers", false},
	{"tenants", false},
	{"tenant_members", false},
	{"isolated_tables", true},
	{"reports_to", false},
	{"teams", false},
	{"team_members", false},
	{"sharing_rules", false},
	{"shared_records", true},
	{"user_companies", false},
	{"record_access_tables", true},
	{"service_registry", false},
	{"api_keys", false},
	{"api_key_secrets", false},
};

typedef void (*citus_send_params_fn) (const char *command, const char *user, int n,
									  const Oid *types, const char *const *values);

static const CitusSyncTable *
citus_sync_find(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(citus_sync_tables); i++)
		if (strcmp(citus_sync_tables[i].name, name) == 0)
			return &citus_sync_tables[i];
	return NULL;
}

/* Whether this node is the coordinator of a Citus cluster (its group is 0). */
static bool
citus_is_coordinator(void)
{
	bool		res = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT groupid OPERATOR(pg_catalog.=) 0 FROM pg_catalog.pg_dist_local_group",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		res = !isnull && DatumGetBool(d);
	}
	SPI_finish();
	return res;
}

/* Send one table's rows to every worker, in the current distributed transaction. */
static void
citus_sync_send(const CitusSyncTable *t)
{
	Oid			owner = crm_table_owner("jwt_keys");
	CrmAsOwner	as_owner;
	StringInfoData q;
	char	   *rows;
	Oid			types[2] = {TEXTOID, TEXTOID};
	const char *values[2];
	citus_send_params_fn send;

	send = (citus_send_params_fn) citus_function("SendCommandToRemoteMetadataNodesParams");

	/* Every row, read as the owner (row level security aside), names fully qualified. */
	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t)), '[]'::pg_catalog.jsonb)::pg_catalog.text "
					 "FROM crm_security.%s t", quote_identifier(t->name));
	if (t->names_table)
		appendStringInfoString(&q, " WHERE t.relation OPERATOR(pg_catalog.=) ANY "
							   "(SELECT p.logicalrelid FROM pg_catalog.pg_dist_partition p)");
	crm_as_owner_begin(&as_owner, "jwt_keys");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* Not read-only: the rows of the statement that fired the trigger are seen. */
	if (SPI_execute(q.data, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read crm_security.%s", t->name);
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		rows = SPI_palloc(strlen(v) + 1);
		strcpy(rows, v);
	}
	SPI_finish();
	crm_as_owner_end(&as_owner);

	values[0] = t->name;
	values[1] = rows;
	send("SELECT crm_security._citus_apply($1, $2::pg_catalog.jsonb)",
		 GetUserNameFromId(owner, false), 2, types, values);
	explicit_bzero(rows, strlen(rows));
	pfree(rows);
}

/* The workers that the sends reach: active primaries with metadata, the coordinator aside. */
#define CITUS_SYNC_WORKERS \
	"SELECT n.nodeid FROM pg_catalog.pg_dist_node n " \
	" WHERE n.isactive AND n.hasmetadata AND n.noderole OPERATOR(pg_catalog.=) 'primary' " \
	"   AND n.groupid OPERATOR(pg_catalog.<>) 0"

/*
 * Run one statement of citus_synced_nodes as the extension's owner (the table is not
 * granted to anyone); for a SELECT, whether it returned a row.
 */
static bool
citus_synced_nodes_run(const char *sql, bool read_only)
{
	CrmAsOwner	as_owner;
	bool		res;

	crm_as_owner_begin(&as_owner, "jwt_keys");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, read_only, 0) < 0)
		elog(ERROR, "could not use crm_security.citus_synced_nodes");
	res = SPI_processed > 0;
	SPI_finish();
	crm_as_owner_end(&as_owner);
	return res;
}

/* Whether a worker has joined that has not had every table yet. */
static bool
citus_unsynced_worker(void)
{
	return citus_synced_nodes_run(CITUS_SYNC_WORKERS
								  " AND NOT EXISTS (SELECT 1 FROM crm_security.citus_synced_nodes s"
								  " WHERE s.nodeid OPERATOR(pg_catalog.=) n.nodeid) LIMIT 1", true);
}

/* Send every table to every worker, and record the workers as synced. */
static void
citus_sync_all(void)
{
	int			i;

	for (i = 0; i < lengthof(citus_sync_tables); i++)
		citus_sync_send(&citus_sync_tables[i]);
	(void) citus_synced_nodes_run("INSERT INTO crm_security.citus_synced_nodes (nodeid) "
								  CITUS_SYNC_WORKERS " ON CONFLICT (nodeid) DO NOTHING", false);
}

/*
 * Trigger function: _citus_replicate(), AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH
 * STATEMENT on every replicated table.  Nothing without Citus, or on a worker.
 */
PG_FUNCTION_INFO_V1(crm_citus_replicate);
Datum
crm_citus_replicate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const CitusSyncTable *t;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_citus_replicate() must be called as a trigger")));
	if (!citus_present() || !citus_is_coordinator())
		return PointerGetDatum(NULL);
	t = citus_sync_find(RelationGetRelationName(td->tg_relation));
	if (t == NULL || RelationGetNamespace(td->tg_relation) != get_namespace_oid("crm_security", false))
		return PointerGetDatum(NULL);
	if (citus_unsynced_worker())
		citus_sync_all();		/* a worker added since: every table, this one included */
	else
		citus_sync_send(t);
	return PointerGetDatum(NULL);
}

/*
 * SQL function: citus_sync() returns integer
 * Sends every replicated table to every worker; the number of tables sent.
 */
PG_FUNCTION_INFO_V1(crm_citus_sync);
Datum
crm_citus_sync(PG_FUNCTION_ARGS)
{
	if (!citus_present())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus is not installed in this database")));
	if (!citus_is_coordinator())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("citus_sync() runs on the coordinator")));
	/*
	 * The extension's own signing key (API-key contexts) is made on first use, in the
	 * transaction of that use, whose worker connections would not see it yet: make it now.
	 */
	ks_internal_ensure();
	citus_sync_all();
	PG_RETURN_INT32(lengthof(citus_sync_tables));
}

/*
 * SQL function: _citus_apply(tbl text, rows jsonb) returns void
 * On a worker: replace the rows of a replicated table with the coordinator's.  Superuser
 * only (Citus connects as the extension's owner); triggers and foreign keys are not run
 * (session_replication_role = replica: the rows were checked on the coordinator, and the
 * tables arrive one by one), the caches of every session are invalidated afterwards.
 */
PG_FUNCTION_INFO_V1(crm_citus_apply);
Datum
crm_citus_apply(PG_FUNCTION_ARGS)
{
	const CitusSyncTable *t;
	char	   *name;
	Oid			relid;
	int			nest;
	StringInfoData q;
	Oid			types[1] = {JSONBOID};
	Datum		values[1];

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _citus_apply"),
				 errdetail("Only the coordinator, connected as a superuser, replaces these rows.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and rows must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	t = citus_sync_find(name);
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a table that the coordinator sends", name)));
	relid = get_relname_relid(t->name, get_namespace_oid("crm_security", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table crm_security.%s does not exist", t->name)));

	nest = NewGUCNestLevel();
	(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	initStringInfo(&q);
	appendStringInfo(&q, "DELETE FROM crm_security.%s", quote_identifier(t->name));
	if (SPI_execute(q.data, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not empty crm_security.%s", t->name);
	resetStringInfo(&q);
	appendStringInfo(&q, "INSERT INTO crm_security.%s OVERRIDING SYSTEM VALUE "
					 "SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::crm_security.%s, $1)",
					 quote_identifier(t->name), quote_identifier(t->name));
	values[0] = PG_GETARG_DATUM(1);
	if (SPI_execute_with_args(q.data, 1, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not fill crm_security.%s", t->name);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	CacheInvalidateRelcacheByRelid(relid);
	PG_RETURN_VOID();
}
