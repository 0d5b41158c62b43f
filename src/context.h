/*
 * context.h
 *		The verified claim context of the current transaction, for other modules.
 */
#ifndef CRM_CONTEXT_H
#define CRM_CONTEXT_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* The verified claims of the current transaction, or NULL when there is no context. */
extern Jsonb *ctx_claims(void);

/*
 * The same claims without a copy: owned by this module, valid until the claim context
 * or its settings change (read them, compare them, copy what must be kept).
 */
extern const Jsonb *ctx_claims_ref(void);

/* One claim of the current context by path (see ctx_jsonb_path_value) as text, or NULL. */
extern char *ctx_claim_text(const char *path);

/* "user", "service", "api_key", or NULL when there is no context. */
extern const char *ctx_actor_type(void);

/*
 * The one resolver of claim paths, used by claim() and for every claim setting.  A path is
 * a member name, or names joined by dots ("app_metadata.tenant_id"); names may contain dots
 * themselves ("https://crm.example.com/tenant").  At each level the longest member name that
 * is the whole remaining path, or the part of it before one of its dots, is taken, and the
 * rest is looked up inside that member; in an array the next segment is a decimal index.
 * A member named by the whole path therefore wins over a nested path spelling the same.
 * Sets *out (pointing into `claims`) and returns true when found; false when absent or
 * when `claims` is NULL.  A path that is empty or has an empty segment raises 22023.
 */
extern bool ctx_jsonb_path_value(Jsonb *claims, const char *path, JsonbValue *out);

/*
 * The same claim as text (strings without quotes, numbers and booleans as JSON, objects
 * and arrays as JSON), or NULL when absent or JSON null.
 */
extern char *ctx_jsonb_path_text(Jsonb *claims, const char *path);

/* Settings naming claims: crm_security.tenant_claim, role_claim, permissions_claim. */
extern char *ctx_tenant_claim;
extern char *ctx_role_claim;
extern char *ctx_permissions_claim;

/* The paths those settings hold (their defaults if ever empty). */
extern const char *ctx_tenant_claim_path(void);
extern const char *ctx_role_claim_path(void);
extern const char *ctx_permissions_claim_path(void);

/* The tenant of the current context as text (the claim tenant_claim names), or NULL. */
extern char *ctx_tenant_text(void);

/* Module initialisation (settings, callbacks), from _PG_init. */
extern void ctx_init(void);

#endif							/* CRM_CONTEXT_H */
