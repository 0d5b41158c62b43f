/*
 * audit.h
 *		The audit log module's entry points for _PG_init (audit.c).
 */
#ifndef CRM_AUDIT_H
#define CRM_AUDIT_H

/* Settings and invalidation callbacks. */
extern void audit_init(void);

/*
 * The hooks the audit log needs, chained in front of those installed before:
 * ExecutorStart_hook, ExecutorFinish_hook and ProcessUtility_hook (write a statement's
 * entries), transaction and subtransaction callbacks (write or discard them), then
 * object_access_hook and ProcessUtility_hook again (record a TRUNCATE no trigger records).
 */
extern void audit_install_hooks(void);

#endif							/* CRM_AUDIT_H */
