/*
 * context_checks.h
 *		Check hooks of the claim context's settings (context_checks.c).
 */
#ifndef CRM_CONTEXT_CHECKS_H
#define CRM_CONTEXT_CHECKS_H

#include "utils/guc.h"

#define CTX_TENANT_GUC "crm_security.requested_tenant"

/* The longest tenant id: the tables' and the setting's limit, in bytes. */
#define CTX_MAX_TENANT_LEN 256

/* The longest request id set_claim_context() takes, in bytes. */
#define CTX_MAX_REQUEST_ID_LEN 256

/* crm_security.clock_skew: an interval or seconds, 0 to 1 day; *extra holds the seconds. */
extern bool ctx_clock_skew_check(char **newval, void **extra, GucSource source);

/* A claim name or dotted path: not empty, no empty segment. */
extern bool ctx_claim_path_check(char **newval, void **extra, GucSource source);

/* crm_security.requested_tenant: from a session only, at most CTX_MAX_TENANT_LEN bytes. */
extern bool ctx_requested_tenant_check(char **newval, void **extra, GucSource source);

#endif							/* CRM_CONTEXT_CHECKS_H */
