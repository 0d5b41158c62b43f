/*
 * context.h
 *		The verified claim context of the current transaction, for other modules.
 */
#ifndef CRM_CONTEXT_H
#define CRM_CONTEXT_H

#include "utils/jsonb.h"

/* The verified claims of the current transaction, or NULL when there is no context. */
extern Jsonb *ctx_claims(void);

/* One top-level or dotted-path claim as text, or NULL. */
extern char *ctx_claim_text(const char *path);

/* "user", "service", "api_key", or NULL when there is no context. */
extern const char *ctx_actor_type(void);

#endif							/* CRM_CONTEXT_H */
