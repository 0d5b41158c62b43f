/*
 * context_internal.c
 *		Which actor a verified token stands for, and the checks of the extension's own
 *		tokens at every verification; the setting crm_security.service_audience.
 *
 * The actor type is decided by the key that verified a token, never by its claims: a token
 * of any outside issuer is a user's, whatever it says (its "crm_actor_type" or "iss" claims
 * included; keystore.c refuses one that claims the extension's issuer).  Only a token that
 * the extension's own key verified (keystore_internal.c) is read for "crm_actor_type":
 *	- "api_key": made by set_api_key_context() after the key was verified and its use
 *	  counted (apikey_context.c); nothing is looked up again here, in workers neither;
 *	- "service": made by issue_service_token() (service_token.c), and checked here at every
 *	  verification, in every process: the service and its audience registered and enabled,
 *	  the call allowed by service_registry, and the audience the one this database is
 *	  (crm_security.service_audience, when set).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "claim_path.h"
#include "context.h"
#include "context_internal.h"
#include "crm_security.h"
#include "json_util.h"
#include "jwt_errors.h"

static char *ctx_service_audience = NULL;

static void
ctx_service_audience_assign(const char *newval, void *extra)
{
	ctx_generation_bump();
}

void
ctx_internal_init(void)
{
	DefineCustomStringVariable("crm_security.service_audience",
							   "The audience that service tokens must name to give a context here (empty: any service the registry lets the caller call).",
							   NULL, &ctx_service_audience, "", PGC_SUSET, 0,
							   NULL, ctx_service_audience_assign, NULL);
}

const char *
ctx_actor_name(CtxActor actor)
{
	switch (actor)
	{
		case CTX_ACTOR_API_KEY:
			return "api_key";
		case CTX_ACTOR_SERVICE:
			return "service";
		default:
			return "user";
	}
}

/*
 * A token of the extension's own key that gives no context here: 28000, or with
 * crm_security.error_codes = 'specific' the reason's code (docs/errors.md): "context" for
 * a token naming no or an unknown actor, "service" for a service token the registry or
 * crm_security.service_audience refuses.
 */
static void
ctx_internal_refuse(CrmAuthReason reason, const char *detail)
{
	crm_auth_refuse(reason, "token", detail, NULL);
}

/* One row of service_registry: whether it exists, is enabled, and may call `callee`. */
typedef struct CtxService
{
	bool		exists;
	bool		enabled;
	bool		may_call;
} CtxService;

static void
ctx_service_read(Relation rel, Relation idx, Snapshot snap, const char *service,
				 const char *callee, CtxService *out)
{
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	a_enabled = get_attnum(RelationGetRelid(rel), "enabled");
	AttrNumber	a_may_call = get_attnum(RelationGetRelid(rel), "may_call");

	if (a_enabled == InvalidAttrNumber || a_may_call == InvalidAttrNumber)
		elog(ERROR, "crm_security.service_registry is not as the extension made it");
	memset(out, 0, sizeof(*out));
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(service));
	key.sk_collation = idx->rd_indcollation[0];
	scan = index_beginscan(rel, idx, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	slot = table_slot_create(rel, NULL);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		out->exists = true;
		d = slot_getattr(slot, a_enabled, &isnull);
		out->enabled = !isnull && DatumGetBool(d);
		d = slot_getattr(slot, a_may_call, &isnull);
		if (!isnull && callee != NULL)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n,
						i;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &n);
			for (i = 0; i < n && !out->may_call; i++)
				if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), callee) == 0)
					out->may_call = true;
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
}

const char *
ctx_service_refusal(const char *service, const char *audience)
{
	Oid			nsp = get_namespace_oid("crm_security", false);
	Oid			relid = get_relname_relid("service_registry", nsp);
	Oid			idxid = get_relname_relid("service_registry_pkey", nsp);
	Relation	rel,
				idx;
	Snapshot	snap;
	CtxService	caller,
				callee;

	if (!OidIsValid(relid) || !OidIsValid(idxid))
		elog(ERROR, "table crm_security.service_registry is missing");
	rel = table_open(relid, AccessShareLock);
	idx = index_open(idxid, AccessShareLock);
	/* Read afresh: a service disabled a moment ago is refused now (not in parallel mode). */
	if (IsInParallelMode())
		snap = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	else
		snap = RegisterSnapshot(GetLatestSnapshot());
	ctx_service_read(rel, idx, snap, service, audience, &caller);
	ctx_service_read(rel, idx, snap, audience, NULL, &callee);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (!caller.exists)
		return "The service is not registered in service_registry.";
	if (!caller.enabled)
		return "The service is disabled in service_registry.";
	if (!callee.exists)
		return "The audience is not a service registered in service_registry.";
	if (!callee.enabled)
		return "The audience is a service disabled in service_registry.";
	if (!caller.may_call)
		return "The registry does not let the service call the audience.";
	return NULL;
}

CtxActor
ctx_internal_actor(const Jsonb *claims)
{
	char	   *actor = claim_path_text(claims, CTX_INTERNAL_ACTOR_CLAIM);
	char	   *sub = claim_path_text(claims, "sub");

	if (actor == NULL || sub == NULL)
		ctx_internal_refuse(CRM_AUTH_CONTEXT, "The token of the extension's key names no actor.");
	if (strcmp(actor, "api_key") == 0)
		return CTX_ACTOR_API_KEY;
	if (strcmp(actor, "service") == 0)
	{
		JsonbValue *aud = json_member((JsonbContainer *) &claims->root, "aud");
		char	   *audience;
		const char *why;

		if (aud == NULL || aud->type != jbvString)
			ctx_internal_refuse(CRM_AUTH_SERVICE, "The service token has no audience.");
		audience = pnstrdup(aud->val.string.val, aud->val.string.len);
		if (ctx_service_audience != NULL && ctx_service_audience[0] != '\0' &&
			strcmp(audience, ctx_service_audience) != 0)
			ctx_internal_refuse(CRM_AUTH_SERVICE, "The service token's audience is not crm_security.service_audience.");
		why = ctx_service_refusal(sub, audience);
		if (why != NULL)
			ctx_internal_refuse(CRM_AUTH_SERVICE, why);
		return CTX_ACTOR_SERVICE;
	}
	ctx_internal_refuse(CRM_AUTH_CONTEXT, "The token of the extension's key names an unknown actor.");
	return CTX_ACTOR_USER;		/* keep compiler quiet */
}
