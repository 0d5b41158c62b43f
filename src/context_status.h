/*
 * context_status.h
 *		Warnings about how a claim context is set (context_status.c).
 */
#ifndef CRM_CONTEXT_STATUS_H
#define CRM_CONTEXT_STATUS_H

/*
 * After set_claim_context() set a context: a WARNING when there is no transaction block
 * (the context ends with the statement), and, once per role in a process, when the current
 * role bypasses row-level security (superuser or BYPASSRLS: no policy applies to it).
 */
extern void ctx_usage_warnings(void);

/*
 * Install the emit_log_hook that gives set_config('crm_security.token', ...) by a role that
 * is not superuser a clear message (from _PG_init).
 */
extern void ctx_status_init(void);

#endif							/* CRM_CONTEXT_STATUS_H */
