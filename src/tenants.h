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
 * through *found_tenant and *found_role, palloc'd.  Bypasses privileges and row level
 * security (it is the trusted resolver).  Cached per backend until the tables change (see
 * tenants.c); parallel workers read with the query's snapshot.
 */
extern int	tenants_memberships(const char *user, const char *tenant, TimestampTz now,
								char **found_tenant, char **found_role);

/* Whether `tenant` is a row of tenants, and enabled (cached like memberships). */
extern TenantState tenants_state(const char *tenant);

/* The relcache callback that empties this process's cache after a change of the tables. */
extern void tenants_init(void);

#endif							/* CRM_TENANTS_H */
