/*
 * context_tenant.c
 *		The tenant and role of the claim context, and the settings that rule them:
 *		crm_security.require_membership and crm_security.role_source.
 *
 * A token with a tenant claim gives that tenant, as it always did.  A token without one
 * (Supabase Auth, most identity providers) gets it from the user's memberships in
 * tenant_members: the tenant asked for with set_claim_context(token, tenant_id), or the
 * user's only membership.  Neither the tenant nor the role so resolved is in the token, and
 * no resolved value is ever carried to another process: set_claim_context puts the tenant
 * in the setting crm_security.requested_tenant, an input that every process (parallel
 * worker, Citus worker) checks again against the verified token's user and the tables.
 * A value put there by hand gives what set_claim_context(token, value) gives, or an error.
 *
 * The result is computed once per context generation (ctx_generation()), so once per
 * transaction and context: one index probe into tenant_members and one into tenants.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "claim_path.h"
#include "context.h"
#include "context_checks.h"
#include "context_tenant.h"
#include "tenants.h"

typedef enum CtxRoleSource
{
	CTX_ROLE_MEMBERSHIP,
	CTX_ROLE_TOKEN
} CtxRoleSource;

static const struct config_enum_entry ctx_role_source_options[] = {
	{"membership", CTX_ROLE_MEMBERSHIP, false},
	{"token", CTX_ROLE_TOKEN, false},
	{NULL, 0, false}
};

/* Settings. */
static bool ctx_require_membership = false;
static int	ctx_role_source = CTX_ROLE_MEMBERSHIP;

/* The resolution of the current context, valid for one context generation. */
static MemoryContext ctx_tenant_mcxt = NULL;
static bool ctx_tenant_valid = false;
static uint64 ctx_tenant_gen = 0;
static CtxTenant ctx_tenant_res;

static void
ctx_tenant_assign_bool(bool newval, void *extra)
{
	ctx_tenant_valid = false;
	ctx_generation_bump();
}

static void
ctx_tenant_assign_enum(int newval, void *extra)
{
	ctx_tenant_valid = false;
	ctx_generation_bump();
}

void
ctx_tenant_init(void)
{
	DefineCustomBoolVariable("crm_security.require_membership",
							 "Whether the tenant claim of a token must also be a membership of its user in tenant_members.",
							 NULL, &ctx_require_membership, false, PGC_SUSET, 0,
							 NULL, ctx_tenant_assign_bool, NULL);
	DefineCustomEnumVariable("crm_security.role_source",
							 "Where app_role() comes from when both a membership and the token name a role.",
							 "membership: the membership's role; token: the token's role claim.",
							 &ctx_role_source, CTX_ROLE_MEMBERSHIP, ctx_role_source_options,
							 PGC_SUSET, 0, NULL, ctx_tenant_assign_enum, NULL);
	ctx_tenant_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security tenant resolution",
											ALLOCSET_SMALL_SIZES);
	/* The cache of memberships and tenants, emptied by relcache invalidations. */
	tenants_init();
}

/* The one refusal for a tenant the user may not use: it never says whether it exists. */
static void
ctx_not_member(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("not a member of the requested tenant"),
			 errdetail("The tenant does not exist, or the user has no enabled, unexpired membership in it."),
			 errhint("A member is added with crm_security.add_tenant_member().")));
}

/* A tenant the user may use, but that is disabled: no context. */
static void
ctx_check_enabled(const char *tenant)
{
	if (tenants_state(tenant) == TENANT_DISABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the tenant is disabled"),
				 errdetail("A disabled tenant gives no claim context.")));
}

void
ctx_tenant_resolve(const Jsonb *claims, CtxActor actor, const char *requested, CtxTenant *out)
{
	char	   *user,
			   *claim_tenant,
			   *claim_role;
	char	   *member_tenant = NULL,
			   *member_role = NULL;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			n;

	memset(out, 0, sizeof(*out));
	if (requested != NULL)
	{
		if (requested[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant id must not be empty"),
					 errhint("Pass NULL to use the token's tenant or the user's only membership.")));
		if (strlen(requested) > CTX_MAX_TENANT_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant id is too long"),
					 errdetail("A tenant id is at most %d bytes.", CTX_MAX_TENANT_LEN)));
	}
	if (claims == NULL)
	{
		if (requested != NULL)
			ctx_not_member();
		return;
	}
	if (actor != CTX_ACTOR_USER)
	{
		/*
		 * The extension's own token: an API key's tenant is the key's, authoritative
		 * (memberships are people's); a service has none.  No role.
		 */
		if (actor == CTX_ACTOR_API_KEY)
			out->tenant = claim_path_text(claims, CTX_INTERNAL_TENANT_CLAIM);
		if (requested != NULL && (out->tenant == NULL || strcmp(requested, out->tenant) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the requested tenant is not the token's tenant"),
					 errdetail("An API key or service context is valid for its own tenant only.")));
		if (out->tenant != NULL)
			ctx_check_enabled(out->tenant);
		return;
	}
	user = claim_path_text(claims, "sub");
	claim_tenant = claim_path_text(claims, ctx_tenant_claim_path());
	claim_role = claim_path_text(claims, ctx_role_claim_path());

	if (claim_tenant != NULL)
	{
		/* The token names its tenant: as before, and the request must agree with it. */
		if (requested != NULL && strcmp(requested, claim_tenant) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the requested tenant is not the token's tenant"),
					 errdetail("A token with a tenant claim is valid for that tenant only.")));
		if (ctx_require_membership)
		{
			if (user == NULL ||
				tenants_memberships(user, claim_tenant, now, &member_tenant, &member_role) == 0)
				ctx_not_member();
		}
		ctx_check_enabled(claim_tenant);
		out->tenant = claim_tenant;
	}
	else if (user == NULL)
	{
		/* No user, no membership. */
		if (requested != NULL)
			ctx_not_member();
	}
	else
	{
		n = tenants_memberships(user, requested, now, &member_tenant, &member_role);
		if (requested != NULL && n == 0)
			ctx_not_member();
		if (n > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the user is a member of several tenants"),
					 errdetail("The token has no tenant claim, and no tenant was requested."),
					 errhint("Name the tenant: crm_security.set_claim_context(token, tenant_id).")));
		if (n == 1)
		{
			ctx_check_enabled(member_tenant);
			out->tenant = member_tenant;
			out->from_membership = true;
		}
	}

	out->member_role = member_role;
	if (member_role != NULL && !(ctx_role_source == CTX_ROLE_TOKEN && claim_role != NULL))
		out->role = member_role;
	else
		out->role = claim_role;
}

static char *
ctx_tenant_copy(const char *s)
{
	return s != NULL ? MemoryContextStrdup(ctx_tenant_mcxt, s) : NULL;
}

static void
ctx_tenant_store(const CtxTenant *res, uint64 gen)
{
	ctx_tenant_valid = false;
	MemoryContextReset(ctx_tenant_mcxt);
	ctx_tenant_res.tenant = ctx_tenant_copy(res->tenant);
	ctx_tenant_res.role = ctx_tenant_copy(res->role);
	ctx_tenant_res.member_role = ctx_tenant_copy(res->member_role);
	ctx_tenant_res.from_membership = res->from_membership;
	ctx_tenant_gen = gen;
	ctx_tenant_valid = true;
}

void
ctx_tenant_remember(const CtxTenant *res)
{
	(void) ctx_claims_ref();
	ctx_tenant_store(res, ctx_generation());
}

const CtxTenant *
ctx_tenant_current(void)
{
	const Jsonb *claims;
	uint64		gen;
	CtxTenant	res;

	/* The context first (it may verify the token), then its generation (context.h). */
	claims = ctx_claims_ref();
	gen = ctx_generation();
	if (ctx_tenant_valid && ctx_tenant_gen == gen)
		return &ctx_tenant_res;
	ctx_tenant_resolve(claims, ctx_actor(), claims != NULL ? ctx_requested_tenant() : NULL, &res);
	ctx_tenant_store(&res, gen);
	return &ctx_tenant_res;
}
