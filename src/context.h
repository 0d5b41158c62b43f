/*
 * context.h
 *		The verified claim context of the current transaction (context.c), and every value
 *		derived from it: other modules read these and resolve no claim themselves.
 */
#ifndef CRM_CONTEXT_H
#define CRM_CONTEXT_H

#include "utils/jsonb.h"

#include "context_internal.h"

/* The verified claims of the current transaction (a copy), or NULL when there is none. */
extern Jsonb *ctx_claims(void);

/*
 * The same claims without a copy: owned by this module, valid until the claim context
 * or its settings change (read them, compare them, copy what must be kept).
 */
extern const Jsonb *ctx_claims_ref(void);

/* One claim of the current context by path (see claim_path.h) as text, or NULL. */
extern char *ctx_claim_text(const char *path);

/* "user", "service", "api_key", or NULL when there is no context. */
extern const char *ctx_actor_type(void);

/*
 * The actor of the current context (CTX_ACTOR_USER also without one): decided by the key
 * that verified the token, never by its claims (context_internal.c).
 */
extern CtxActor ctx_actor(void);

/* The user: claim "sub" as text, or NULL (user_id()). */
extern char *ctx_user_id_text(void);

/*
 * The tenant, resolved (context_tenant.c): the claim crm_security.tenant_claim names, or,
 * for a token without one, the tenant of the user's membership (tenant_members) that
 * set_claim_context(token, tenant_id) chose; NULL without either (tenant_id()).  The typed
 * accessors of isolation.c (tenant_id_uuid() ...), permissions and the audit use it.
 * Raises when the membership no longer holds (a parallel worker of a transaction whose
 * membership was removed since): it fails closed.
 */
extern char *ctx_tenant_text(void);

/*
 * The role, resolved: the membership's role, or the claim crm_security.role_claim names
 * (which one wins: crm_security.role_source), or NULL (app_role()).
 */
extern char *ctx_role_text(void);

/* The role of the membership the tenant was resolved with, or NULL. */
extern char *ctx_member_role_text(void);

/* The claim paths of crm_security.tenant_claim and crm_security.role_claim. */
extern const char *ctx_tenant_claim_path(void);
extern const char *ctx_role_claim_path(void);

/* crm_security.requested_tenant when set in this transaction (or in a worker), else NULL. */
extern const char *ctx_requested_tenant(void);

/*
 * The path of the context's permissions: what crm_security.permissions_claim holds (its
 * default if ever empty); for the extension's own tokens, "permissions".
 */
extern const char *ctx_permissions_claim_path(void);

/*
 * The generation of the claim context: a per-process number that changes whenever what
 * the functions above return may change, so that a cache of values derived from the
 * context (the effective permissions, the audit actor) can be keyed by it alone.
 *
 * It changes when
 *	- crm_security.token is assigned (SET, set_config(), set_claim_context(),
 *	  clear_claim_context(), the end of a SET LOCAL, a rolled-back savepoint, an erasure);
 *	- a setting the context is derived from is assigned: jwt_audience, jwt_issuer,
 *	  clock_skew, require_exp, tenant_claim, role_claim, permissions_claim,
 *	  trust_request_jwt_claims, requested_tenant, require_membership, role_source;
 *	- a token becomes the current context (verified, or its verification taken up again);
 *	- a transaction ends (commit, abort, prepare; in parallel workers too);
 *	- in trust mode without a token, request.jwt.claims is seen to hold another value than
 *	  at the previous call, or a value not parsed yet (which changes it at every call).
 *
 * Promise: two calls that return the same number see the same context, so every accessor
 * above returns the same value (or raises the same way) between them.  It never returns an
 * earlier value again.  It is conservative: it may change when nothing did.  It costs no
 * allocation and never raises (in trust mode without a token: one settings lookup and one
 * string comparison).  It verifies nothing: the first accessor call after a change may
 * verify the token, which changes the generation once more.  So, to cache a value:
 *		g = ctx_generation(); if the cache holds g (and, if wanted, this transaction), use it;
 *		otherwise call an accessor (ctx_claims_ref()), read g = ctx_generation() again,
 *		compute the value from the accessors, and store it under that g.
 * A change during the computation then leaves a key that no later call returns.
 */
extern uint64 ctx_generation(void);

/* Change the generation: for the context's own settings kept in other files. */
extern void ctx_generation_bump(void);

/*
 * set_claim_context(): verify `token` (a refused one raises 28000 and leaves the context
 * as it was), resolve its tenant and role (`tenant`: the requested tenant or NULL; a
 * refusal raises and leaves the context as it was), make it the context for the rest of
 * the transaction, set crm_security.request_id to `request_id` unless NULL, and set the
 * compatibility settings request.jwt.claims and request.jwt.claim.sub/role/email.
 * Returns a copy of the claims.
 */
extern Jsonb *ctx_set_token(const char *token, size_t len, const char *tenant,
							const char *request_id);

/* clear_claim_context(): no context, and empty compatibility settings. */
extern void ctx_clear(void);

/*
 * Module initialisation, from _PG_init: the settings, the ExecutorStart hook and the
 * transaction callback.
 */
extern void ctx_init(void);

#endif							/* CRM_CONTEXT_H */
