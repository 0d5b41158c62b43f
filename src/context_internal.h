/*
 * context_internal.h
 *		Contexts that the extension signs itself (context_internal.c): API-key contexts and
 *		service tokens, carried as tokens of the internal key (keystore_internal.h).
 */
#ifndef CRM_CONTEXT_INTERNAL_H
#define CRM_CONTEXT_INTERNAL_H

#include "utils/jsonb.h"

typedef enum CtxActor
{
	CTX_ACTOR_USER = 0,			/* a token of an outside issuer, or trusted request claims */
	CTX_ACTOR_API_KEY,
	CTX_ACTOR_SERVICE
} CtxActor;

/*
 * The claims of the extension's own tokens.  They are read only from tokens that the
 * internal key verified; the same names in any other token mean nothing to the extension.
 */
#define CTX_INTERNAL_ACTOR_CLAIM	"crm_actor_type"
#define CTX_INTERNAL_TENANT_CLAIM	"tenant_id"
#define CTX_INTERNAL_PERMS_CLAIM	"permissions"

/*
 * The actor of claims that the internal key verified, after the checks of its kind: a
 * service token's service and audience against service_registry (read afresh) and
 * crm_security.service_audience.  Raises 28000 otherwise.
 */
extern CtxActor ctx_internal_actor(const Jsonb *claims);

/*
 * Why `service` may not present a token for `audience` (a sentence), or NULL: both must be
 * registered and enabled in service_registry, and the registry must let service call
 * audience.  Read with a fresh snapshot (the query's in parallel mode); the table is read
 * directly, whatever the caller's rights.
 */
extern const char *ctx_service_refusal(const char *service, const char *audience);

/* "user", "api_key", "service". */
extern const char *ctx_actor_name(CtxActor actor);

/* The setting crm_security.service_audience, from ctx_init(). */
extern void ctx_internal_init(void);

#endif							/* CRM_CONTEXT_INTERNAL_H */
