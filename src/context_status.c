/*
 * context_status.c
 *		Warnings about how a claim context is set, where the mistake would otherwise pass
 *		in silence: a context set outside a transaction block ends at once (the next
 *		statement runs without it), and a role that bypasses row-level security sees every
 *		tenant whatever its context says.  Why tenant_id() is NULL is context_status()'s
 *		(sql/30_context.sql).
 *
 *		And one message made clear: crm_security.token is readable by superusers only
 *		(GUC_SUPERUSER_ONLY), so set_config('crm_security.token', ...) by another role,
 *		which reads back what it set, fails with PostgreSQL's "must be superuser ... to
 *		examine".  An emit_log_hook gives that error a message that says what to do instead.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/elog.h"
#include "miscadmin.h"
#include "utils/acl.h"

#include "context_status.h"

/* The last role warned about bypassing row-level security in this process. */
static Oid	ctx_warned_role = InvalidOid;

void
ctx_usage_warnings(void)
{
	Oid			role = GetUserId();

	if (!IsTransactionBlock())
		ereport(WARNING,
				(errmsg("claim context set outside a transaction block"),
				 errdetail("The context lasts until the end of the current transaction, which is this statement."),
				 errhint("Call crm_security.set_claim_context() after BEGIN, in the transaction of the queries it is for.")));
	if (role != ctx_warned_role && (superuser_arg(role) || has_bypassrls_privilege(role)))
	{
		ctx_warned_role = role;
		ereport(WARNING,
				(errmsg("row-level security does not apply to the current role"),
				 errdetail("The role is a superuser or has BYPASSRLS: tenant isolation policies are not evaluated for its queries, whatever the claim context."),
				 errhint("Connect the application as a role without SUPERUSER and BYPASSRLS.")));
	}
}

static emit_log_hook_type ctx_prev_emit_log_hook = NULL;

static void
ctx_emit_log(ErrorData *edata)
{
	if (edata->elevel == ERROR && edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE &&
		edata->message != NULL && strstr(edata->message, "to examine \"crm_security.token\"") != NULL)
	{
		/* EmitErrorReport() runs in ErrorContext: the strings belong there. */
		edata->message = pstrdup("crm_security.token is readable by superusers only, and set_config() reads back what it sets");
		edata->detail = pstrdup("The setting carries the token of the claim context; SHOW and current_setting() would show it.");
		edata->hint = pstrdup("Call crm_security.set_claim_context(token), or use SET LOCAL crm_security.token.");
	}
	if (ctx_prev_emit_log_hook)
		ctx_prev_emit_log_hook(edata);
}

void
ctx_status_init(void)
{
	ctx_prev_emit_log_hook = emit_log_hook;
	emit_log_hook = ctx_emit_log;
}
