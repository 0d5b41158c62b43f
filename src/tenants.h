/*
 * tenants.h
 *		Lookups in tenants and tenant_members (tenants.c), by index, for the resolution of
 *		the context's tenant.
 */
#ifndef CRM_TENANTS_H
#define CRM_TENANTS_H

#include "datatype/timestamp.h"

typedef enum TenantState
{
	TENANT_UNKNOWN,				/* no row in tenants (or no table) */
	TENANT_ENABLED,
	TENANT_DISABLED
} TenantState;

/*
 * The usable memberships (enabled, unexpired at `now`) of `user`: in `tenant` only, or,
 * with `tenant` NULL, in any tenant, stopping at the second.  Returns how many were found
 * (0, 1 or 2); the first one's tenant and role (NULL when the row has none) are returned
 * through *found_tenant and *found_role, palloc'd.  Reads with the active snapshot,
 * bypassing privileges and row level security (it is the trusted resolver).
 */
extern int	tenants_memberships(const char *user, const char *tenant, TimestampTz now,
								char **found_tenant, char **found_role);

/* Whether `tenant` is a row of tenants, and enabled. */
extern TenantState tenants_state(const char *tenant);

#endif							/* CRM_TENANTS_H */
