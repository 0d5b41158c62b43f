/*
 * perm_context.h
 *		The effective permissions of the claim context (perm_context.c).
 */
#ifndef CRM_PERM_CONTEXT_H
#define CRM_PERM_CONTEXT_H

/* Module initialisation (relcache and subtransaction callbacks), from _PG_init. */
extern void perm_context_init(void);

#endif							/* CRM_PERM_CONTEXT_H */
