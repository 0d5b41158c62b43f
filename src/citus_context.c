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
 * log_statement = 'all' or log_min_duration_statement says so.  An emit_log_hook (installed
 * by _PG_init, so on the nodes that preload crm_security) writes "(token)" in place of the
 * value of every crm_security.token assignment in a log line, and leaves out the STATEMENT
 * line of a message logged while such a statement runs.
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

/* ---------------------------------------------------------------------------------------
 * Tokens out of the server log
 * --------------------------------------------------------------------------------------- */

#define CTX_TOKEN_NAME "crm_security.token"

static emit_log_hook_type citus_prev_emit_log_hook = NULL;

/* The first case-insensitive occurrence of crm_security.token in s, or NULL. */
static const char *
citus_find_token_name(const char *s)
{
	size_t		n = strlen(CTX_TOKEN_NAME);

	for (; *s; s++)
		if ((*s == 'c' || *s == 'C') && pg_strncasecmp(s, CTX_TOKEN_NAME, n) == 0)
			return s;
	return NULL;
}

/*
 * A copy of msg (in the current memory context) where the value assigned to each
 * crm_security.token (= or TO, then a quoted literal or a word) reads '(token)'; NULL when
 * there is none.
 */
static char *
citus_redact_token(const char *msg)
{
	StringInfoData out;
	const char *p = msg;
	const char *hit;
	bool		changed = false;

	initStringInfo(&out);
	while ((hit = citus_find_token_name(p)) != NULL)
	{
		const char *q = hit + strlen(CTX_TOKEN_NAME);

		appendBinaryStringInfo(&out, p, q - p);
		p = q;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		if (*q == '=')
			q++;
		else if (pg_strncasecmp(q, "to", 2) == 0 && (q[2] == ' ' || q[2] == '\t' || q[2] == '\n' || q[2] == '\''))
			q += 2;
		else
			continue;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		appendBinaryStringInfo(&out, p, q - p);
		if (*q == 'E' || *q == 'e')
			q++;
		if (*q == '\'')
		{
			/* A literal: up to its closing quote ('' and \' inside it). */
			q++;
			while (*q)
			{
				if (*q == '\\' && q[1] != '\0')
					q += 2;
				else if (*q == '\'' && q[1] == '\'')
					q += 2;
				else if (*q == '\'')
				{
					q++;
					break;
				}
				else
					q++;
			}
		}
		else
			while (*q && *q != ';' && *q != ' ' && *q != '\n')
				q++;
		appendStringInfoString(&out, "'(token)'");
		changed = true;
		p = q;
	}
	if (!changed)
	{
		pfree(out.data);
		return NULL;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

static void
citus_emit_log(ErrorData *edata)
{
	if (edata->output_to_server)
	{
		if (edata->message != NULL && citus_find_token_name(edata->message) != NULL)
		{
			/* EmitErrorReport() runs in ErrorContext: the new string belongs there. */
			char	   *redacted = citus_redact_token(edata->message);

			if (redacted != NULL)
				edata->message = redacted;
		}
		if (!edata->hide_stmt && debug_query_string != NULL &&
			citus_find_token_name(debug_query_string) != NULL)
			edata->hide_stmt = true;
	}
	if (citus_prev_emit_log_hook)
		citus_prev_emit_log_hook(edata);
}

void
citus_log_init(void)
{
	citus_prev_emit_log_hook = emit_log_hook;
	emit_log_hook = citus_emit_log;
}
