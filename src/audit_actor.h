/*
 * audit_actor.h
 *		Who and where: the actor columns of audit entries (audit_actor.c).
 */
#ifndef CRM_AUDIT_ACTOR_H
#define CRM_AUDIT_ACTOR_H

#include "postgres.h"

struct AuditEntry;

/* The setting crm_security.request_id and the cache's invalidation, from audit_init(). */
extern void audit_actor_init(void);

/* Fill the columns actor_type .. client_addr of an entry, and their canonical text. */
extern void audit_fill_actor(struct AuditEntry *e);

/* The name of a role as entries record it ("?" for a dropped role). */
extern const char *audit_user_name(Oid roleid);

#endif							/* CRM_AUDIT_ACTOR_H */
