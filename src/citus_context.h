/*
 * citus_context.h
 *		Citus support: whether Citus runs in this database, and the claim context's settings
 *		sent to the worker nodes (citus_context.c).
 */
#ifndef CRM_CITUS_CONTEXT_H
#define CRM_CITUS_CONTEXT_H

struct RelationData;

/* Whether Citus is loaded in this process and installed in this database. */
extern bool citus_present(void);

/*
 * Send the context's settings (crm_security.token, crm_security.requested_tenant,
 * crm_security.request_id) as they are now to the nodes of the current distributed
 * transaction, and to every node it reaches later.  Nothing without Citus.
 */
extern void citus_ctx_propagate(void);

/*
 * citus.enable_unsafe_triggers = on until citus_allow_triggers_end() (triggers on a
 * distributed table need it); returns a GUC nest level, or -1 without Citus.
 */
extern int	citus_allow_triggers(void);
extern void citus_allow_triggers_end(int nest);

/*
 * The qualified name of the distributed table whose shard rel is, when rel is a shard held
 * by this node (citus_shard.c); NULL otherwise, and without Citus.  Cached per backend.
 */
extern const char *citus_shard_table_name(struct RelationData *rel);

/* A Citus function by name (dlsym), or an error naming it. */
extern void *citus_function(const char *name);

#endif							/* CRM_CITUS_CONTEXT_H */
