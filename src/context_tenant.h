/*
 * context_tenant.h
 *		The tenant and role of the claim context (context_tenant.c): from the token's
 *		claims, or from the user's memberships in tenant_members.
 */
#ifndef CRM_CONTEXT_TENANT_H
#define CRM_CONTEXT_TENANT_H

#include "utils/jsonb.h"

#include "context_internal.h"

typedef struct CtxTenant
{
	char	   *tenant;			/* the resolved tenant, or NULL */
	char	   *role;			/* the resolved application role, or NULL */
	char	   *member_role;	/* the role of the membership used, or NULL */
	bool		from_membership;	/* the tenant came from a membership, not a claim */
} CtxTenant;

/*
 * Resolve the tenant and role of verified `claims` (NULL: no context) of `actor` for the
 * requested tenant `requested` (NULL: none), by the rules of docs/context.md, "Where the
 * tenant comes from"; the extension's own tokens (API keys, services) name their tenant
 * or none, without memberships.  Raises 42501 for a tenant the user may not use, 22023 for a bad tenant id or
 * when the user belongs to several tenants and none was asked for.  Results in the
 * current memory context.
 */
extern void ctx_tenant_resolve(const Jsonb *claims, CtxActor actor, const char *requested,
							   CtxTenant *out);

/* The tenant and role of the current context, resolved once per context generation. */
extern const CtxTenant *ctx_tenant_current(void);

/* Keep `res` as the resolution of the current context (set_claim_context resolved it). */
extern void ctx_tenant_remember(const CtxTenant *res);

/* The settings crm_security.require_membership and crm_security.role_source. */
extern void ctx_tenant_init(void);

#endif							/* CRM_CONTEXT_TENANT_H */
