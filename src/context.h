/*
 * context.h
 *		The verified claim context of the current transaction, for other modules.
 */
#ifndef CRM_CONTEXT_H
#define CRM_CONTEXT_H

#include "utils/jsonb.h"

/* The verified claims of the current transaction, or NULL when there is no context. */
extern Jsonb *ctx_claims(void);

/*
 * The same claims without a copy: owned by this module, valid until the claim context
 * or its settings change (read them, compare them, copy what must be kept).
 */
extern const Jsonb *ctx_claims_ref(void);

/* One top-level or dotted-path claim as text, or NULL. */
extern char *ctx_claim_text(const char *path);

/* "user", "service", "api_key", or NULL when there is no context. */
extern const char *ctx_actor_type(void);

/*
 * One claim of `claims` by a dotted path ("app_metadata.tenant_id"; a member whose name is
 * the whole path wins; a number selects an array element), as text (strings without
 * quotes, objects and arrays as JSON), or NULL when absent or JSON null.
 */
extern char *ctx_jsonb_path_text(Jsonb *claims, const char *path);

/* Settings naming claims: crm_security.tenant_claim, role_claim, permissions_claim. */
extern char *ctx_tenant_claim;
extern char *ctx_role_claim;
extern char *ctx_permissions_claim;

/* Module initialisation (settings, callbacks), from _PG_init. */
extern void ctx_init(void);

/* Key store (keystore.c). */
struct JwtVerifyOptions;
extern void ks_init(void);
extern uint64 ks_current_version(void);
extern Jsonb *ks_verify_token(const char *token, int len, const struct JwtVerifyOptions *opts);

#endif							/* CRM_CONTEXT_H */
