/*
 * citus_context.c
 *		The claim context on the worker nodes of a Citus cluster.
 *
 * On Citus the policies of a distributed table are evaluated on the workers that hold its
 * shards, each in a backend of its own.  The context travels as it does to parallel
 * workers: as the signed token in crm_security.token (context.c), which every worker
 * verifies against its own key store (kept equal to the coordinator's by citus_sync.c).
 * Citus sends a setting to the workers only when it was set by a SET LOCAL statement that
 * went through its utility hook while citus.propagate_set_commands was 'local': a value set
 * from C (set_config_option) stays on the coordinator.  So after set_claim_context(),
 * set_api_key_context() or clear_claim_context() has set the settings, the same values are
 * set again here by SET LOCAL statements run through ProcessUtility, with
 * citus.propagate_set_commands = 'local' for those statements only (the caller's value is
 * restored at once, so other SET LOCALs of the application keep their behaviour).  Citus
 * sends them to the nodes already in the transaction and replays them when it opens a
 * connection later in the same transaction.
 *
 * Citus propagates SET LOCAL only in a transaction block (BEGIN ... COMMIT, a DO block, a
 * procedure, a function call): a context set in one autocommit statement ends with it.
 *
 * The statements carry the token in their text, and a worker logs the statements it runs when
 * log_statement = 'all' or log_min_duration_statement says so: log_redact.c writes
 * '(token)' in place of the value (on the nodes that preload crm_security).
 *
 * There is no link to Citus: whether it runs is read from its settings and its catalog
 * entry, and the few Citus C functions used elsewhere (citus_sync.c) are looked up by name.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "nodes/value.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "citus_context.h"

#define CITUS_PROPAGATE_GUC "citus.propagate_set_commands"

/* The settings that make up the context, in the order they are sent. */
static const char *const citus_ctx_settings[] = {
	"crm_security.token",
	"crm_security.requested_tenant",
	"crm_security.request_id",
};

bool
citus_present(void)
{
	/* Citus defines its settings when its library loads (shared_preload_libraries). */
	if (GetConfigOption(CITUS_PROPAGATE_GUC, true, false) == NULL)
		return false;
	return IsTransactionState() && OidIsValid(get_extension_oid("citus", true));
}

void *
citus_function(const char *name)
{
	void	   *f = (void *) load_external_function("citus", name, false, NULL);

	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Citus function \"%s\" is not available", name),
				 errhint("crm_security supports Citus 13.2.")));
	return f;
}

/* SET LOCAL name = value, through ProcessUtility, so that Citus's hook sees it. */
static void
citus_set_local(const char *name, const char *value)
{
	VariableSetStmt *stmt = makeNode(VariableSetStmt);
	A_Const    *arg = makeNode(A_Const);
	PlannedStmt *ps = makeNode(PlannedStmt);
	StringInfoData sql;

	arg->val.sval.type = T_String;
	arg->val.sval.sval = pstrdup(value);
	arg->location = -1;
	stmt->kind = VAR_SET_VALUE;
	stmt->name = pstrdup(name);
	stmt->args = list_make1(arg);
	stmt->is_local = true;

	ps->commandType = CMD_UTILITY;
	ps->canSetTag = false;
	ps->utilityStmt = (Node *) stmt;
	ps->stmt_location = -1;
	ps->stmt_len = 0;

	/* The text Citus sends: the name is an identifier of ours, the value a literal. */
	initStringInfo(&sql);
	appendStringInfo(&sql, "SET LOCAL %s = %s", name, quote_literal_cstr(value));
	ProcessUtility(ps, sql.data, false, PROCESS_UTILITY_QUERY, NULL, NULL, None_Receiver, NULL);
	explicit_bzero(sql.data, sql.len);
	pfree(sql.data);
}

void
citus_ctx_propagate(void)
{
	int			nest;
	int			i;

	if (IsParallelWorker() || IsInParallelMode() || !citus_present())
		return;

	/* citus.propagate_set_commands = 'local' for these statements only. */
	nest = NewGUCNestLevel();
	(void) set_config_option(CITUS_PROPAGATE_GUC, "local", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	for (i = 0; i < lengthof(citus_ctx_settings); i++)
	{
		const char *v = GetConfigOption(citus_ctx_settings[i], true, false);

		if (v != NULL)
			citus_set_local(citus_ctx_settings[i], v);
	}
	AtEOXact_GUC(true, nest);
}

int
citus_allow_triggers(void)
{
	int			nest;

	if (GetConfigOption("citus.enable_unsafe_triggers", true, false) == NULL)
		return -1;
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.enable_unsafe_triggers", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
citus_allow_triggers_end(int nest)
{
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
}

