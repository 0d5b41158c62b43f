/*
 * context.c
 *		The claim context of the current transaction.
 *
 * The context travels as the signed token itself, in the setting crm_security.token, which
 * set_claim_context() sets transaction-locally.  Settings reach parallel workers (and, with
 * SET LOCAL, Citus workers), C variables do not.  Every process that reads the context
 * verifies the token against its own copy of the key store and keeps the result
 * (token_cache.c), keyed by the SHA-256 of the token, for as long as the key store version,
 * the verification settings and the token's exp allow; the token is current for the rest of
 * the transaction.  Anyone may put a token there, but only a token that verifies
 * gives a context, which is nothing more than set_claim_context() gives.
 *
 * The setting never outlives a transaction: it can only be set from a session (not by
 * ALTER ROLE/DATABASE SET, the configuration file or connection options), and whatever is
 * left in it at commit is erased, so even a session-level SET ends with its transaction.
 * A value that is there without having been set in the current transaction (left before
 * the library was loaded, and restored by the rollback of the transaction that loaded it)
 * is never a context, and is erased before the next query starts, so that no parallel
 * worker receives it.  In trust mode (crm_security.trust_request_jwt_claims) the same holds
 * for request.jwt.claims.
 *
 * Every value derived from the context (claims, user, tenant, role, actor type) is read
 * through this file, and ctx_generation() says when any of them may have changed.  The
 * SQL functions are context_sql.c's; claims are found by path by claim_path.c.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "claim_path.h"
#include "context.h"
#include "context_checks.h"
#include "context_internal.h"
#include "context_tenant.h"
#include "crm_security.h"
#include "crypto.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "keys.h"
#include "keystore.h"
#include "settings.h"
#include "token_cache.h"

#define CTX_TOKEN_GUC "crm_security.token"
#define CTX_REQUEST_CLAIMS_GUC "request.jwt.claims"

/* Settings. */
static char *ctx_token = NULL;
static char *ctx_requested = NULL;	/* an input of the tenant resolution only */
static char *ctx_jwt_audience = NULL;
static char *ctx_jwt_issuer = NULL;
static char *ctx_clock_skew_text = NULL;
static double ctx_clock_skew = 0;	/* seconds, from ctx_clock_skew_text */
static bool ctx_require_exp = true;
static bool ctx_trust_request_claims = false;
static char *ctx_tenant_claim = NULL;
static char *ctx_role_claim = NULL;
static char *ctx_permissions_claim = NULL;

/* Bumped by the assign hooks: every change of the token, of the verification settings. */
static uint64 ctx_token_gen = 0;
static uint64 ctx_settings_gen = 0;

/*
 * The generation of the context (ctx_generation(), see context.h): bumped by every assign
 * hook of a setting the context is derived from, whenever a token becomes the current one,
 * at the end of every transaction, and when request.jwt.claims is seen to change in trust
 * mode.  Starts at 1, so that a zeroed cache key never matches.
 */
static uint64 ctx_gen = 1;

/*
 * The entry of token_cache.c that holds the token in the setting, as of this value of
 * ctx_token_gen (valid while the entry still has the id it had).
 */
static MemoryContext ctx_mcxt = NULL;
static TcEntry *ctx_current = NULL;
static uint64 ctx_current_id = 0;
static uint64 ctx_current_gen = 0;

#define CTX_HAS_CURRENT() \
	(ctx_current != NULL && ctx_current->id == ctx_current_id && ctx_current_gen == ctx_token_gen)

/* request.jwt.claims, when trusted. */
static char *ctx_request_text = NULL;
static Jsonb *ctx_request_claims = NULL;

/*
 * What ctx_generation() last saw in request.jwt.claims: ctx_request_empty (no value),
 * ctx_request_text (the value parsed last), or NULL (a value not parsed, or nothing seen).
 */
static const char ctx_request_empty[] = "";
static const char *ctx_request_seen = NULL;

static ExecutorStart_hook_type ctx_prev_executor_start = NULL;

static void ctx_forget(void);

/* ---------------------------------------------------------------------------------------
 * Settings
 * --------------------------------------------------------------------------------------- */

/* A compact JWS: three base64url segments.  Returns a detail for what is wrong, or NULL. */
static const char *
ctx_token_syntax(const char *tok, size_t len)
{
	static bool table_ready = false;
	static bool b64url[256];
	size_t		i;
	int			dots = 0;

	if (!table_ready)
	{
		const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

		for (i = 0; alphabet[i]; i++)
			b64url[(unsigned char) alphabet[i]] = true;
		table_ready = true;
	}
	if (!jwt_length_allowed(len))
		return "The token is longer than crm_security.max_token_length.";
	for (i = 0; i < len; i++)
	{
		unsigned char c = tok[i];

		if (c == '.')
			dots++;
		else if (!b64url[c])
			return "The token is not three base64url segments.";
	}
	if (dots != 2)
		return "The token is not three base64url segments.";
	return NULL;
}

static bool
ctx_token_check(char **newval, void **extra, GucSource source)
{
	const char *detail;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	/*
	 * Only a session may put a token here, for its current transaction.  A value stored by
	 * ALTER ROLE/DATABASE SET, in the configuration file or sent as a connection option
	 * would outlive transactions, so it is refused (ALTER ... SET fails at once).
	 */
	if (source != PGC_S_SESSION)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("parameter \"%s\" can only be set within a transaction", CTX_TOKEN_GUC);
		GUC_check_errhint("Use crm_security.set_claim_context().");
		return false;
	}
	detail = ctx_token_syntax(*newval, strlen(*newval));
	if (detail != NULL)
	{
		/* The default message would quote the value: a token never goes into a message. */
		const char *hint = crm_auth_bearer_hint(*newval, (int) strlen(*newval));

		GUC_check_errcode(crm_auth_sqlstate(CRM_AUTH_MALFORMED));
		GUC_check_errmsg("invalid token");
		GUC_check_errdetail("%s", crm_auth_detail(CRM_AUTH_MALFORMED, detail));
		if (hint != NULL)
			GUC_check_errhint("%s", hint);
		return false;
	}
	return true;
}

static void
ctx_token_assign(const char *newval, void *extra)
{
	ctx_token_gen++;
	ctx_gen++;
}

static const char *
ctx_token_show(void)
{
	return (ctx_token && ctx_token[0]) ? "(token)" : "";
}

static void
ctx_settings_assign_str(const char *newval, void *extra)
{
	ctx_settings_gen++;
	ctx_gen++;
}

static void
ctx_clock_skew_assign(const char *newval, void *extra)
{
	ctx_clock_skew = extra ? *(double *) extra : 0;
	ctx_settings_gen++;
	ctx_gen++;
}

static void
ctx_settings_assign_bool(bool newval, void *extra)
{
	ctx_settings_gen++;
	ctx_gen++;
}

/*
 * The settings that select claims (tenant_claim, role_claim, permissions_claim) and trust
 * mode change what the context gives, not which tokens verify.
 */
static void
ctx_derived_assign_str(const char *newval, void *extra)
{
	ctx_gen++;
}

static void
ctx_derived_assign_bool(bool newval, void *extra)
{
	ctx_gen++;
}

/* ---------------------------------------------------------------------------------------
 * Transaction boundaries
 * --------------------------------------------------------------------------------------- */

static void
ctx_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A token set with plain SET (not LOCAL) would survive the commit; erase it, so
			 * that the next transaction (another client, behind a pooler) starts without.
			 * Not in a parallel worker: it restores the leader's settings in a transaction
			 * of its own, whose commit must keep them.
			 */
			if (ctx_token != NULL && ctx_token[0] != '\0' && !IsParallelWorker())
				setting_erase(CTX_TOKEN_GUC, 0);
			if (ctx_requested != NULL && ctx_requested[0] != '\0' && !IsParallelWorker())
				setting_erase(CTX_TENANT_GUC, 0);

			/*
			 * In trust mode request.jwt.claims is a context too, and ends the same way.
			 * (Without it the setting is not ours: Supabase's auth.*() may read it.)
			 */
			if (ctx_trust_request_claims && !IsParallelWorker())
			{
				const char *s = GetConfigOption(CTX_REQUEST_CLAIMS_GUC, true, false);

				if (s != NULL && s[0] != '\0')
					setting_erase(CTX_REQUEST_CLAIMS_GUC, 0);
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			ctx_forget();
			break;
		default:
			break;
	}
}

/*
 * At the end of a transaction: no token is current any more.  Verified tokens of outside
 * issuers stay in token_cache.c, each for as long as its key store version, settings and
 * exp hold; the extension's own tokens are dropped.
 */
static void
ctx_forget(void)
{
	tc_end_of_transaction();
	ctx_current = NULL;
	ctx_current_id = 0;
	ctx_request_text = NULL;
	ctx_request_claims = NULL;
	ctx_request_seen = NULL;
	ctx_gen++;
	if (ctx_mcxt)
		MemoryContextReset(ctx_mcxt);
}

/*
 * Before a query starts: erase a token, or in trust mode a request.jwt.claims, that was not
 * set in this transaction.  The accessors of this process already ignore such a value;
 * erasing it keeps it from parallel workers, which receive the settings without their
 * history.  Not in parallel mode, where settings cannot change (the query that entered it
 * started here first).
 */
static void
ctx_erase_stale(void)
{
	if (IsParallelWorker() || IsInParallelMode() || !IsTransactionState())
		return;
	if (ctx_token != NULL && ctx_token[0] != '\0' &&
		!CTX_HAS_CURRENT() &&
		!setting_set_in_this_transaction(CTX_TOKEN_GUC))
		setting_erase(CTX_TOKEN_GUC, 0);
	if (ctx_requested != NULL && ctx_requested[0] != '\0' &&
		!setting_set_in_this_transaction(CTX_TENANT_GUC))
		setting_erase(CTX_TENANT_GUC, 0);
	if (ctx_trust_request_claims)
	{
		const char *s = GetConfigOption(CTX_REQUEST_CLAIMS_GUC, true, false);

		if (s != NULL && s[0] != '\0' &&
			!(ctx_request_text != NULL && strcmp(ctx_request_text, s) == 0) &&
			!setting_set_in_this_transaction(CTX_REQUEST_CLAIMS_GUC))
			setting_erase(CTX_REQUEST_CLAIMS_GUC, 0);
	}
}

static void
ctx_executor_start(QueryDesc *queryDesc, int eflags)
{
	ctx_erase_stale();
	if (ctx_prev_executor_start)
		ctx_prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
ctx_init(void)
{
	DefineCustomStringVariable(CTX_TOKEN_GUC,
							   "The signed token that carries the claim context of the current transaction.",
							   "Set by crm_security.set_claim_context(); honoured only when it verifies.",
							   &ctx_token, "",
							   PGC_USERSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ctx_token_check, ctx_token_assign, ctx_token_show);
	DefineCustomStringVariable(CTX_TENANT_GUC,
							   "The tenant asked for in the current transaction (an input of the tenant resolution).",
							   "Set by crm_security.set_claim_context(token, tenant_id); checked against tenant_members.",
							   &ctx_requested, "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ctx_requested_tenant_check, ctx_derived_assign_str, NULL);
	DefineCustomStringVariable("crm_security.jwt_audience",
							   "Audience that every context token must name in \"aud\" (empty: not checked).",
							   NULL, &ctx_jwt_audience, "", PGC_SUSET, 0,
							   NULL, ctx_settings_assign_str, NULL);
	DefineCustomStringVariable("crm_security.jwt_issuer",
							   "Issuer that every context token must name in \"iss\" (empty: not checked).",
							   NULL, &ctx_jwt_issuer, "", PGC_SUSET, 0,
							   NULL, ctx_settings_assign_str, NULL);
	DefineCustomStringVariable("crm_security.clock_skew",
							   "Leeway for the exp and nbf claims of context tokens.",
							   "An interval or a number of seconds, at most one day.",
							   &ctx_clock_skew_text, "0", PGC_SUSET, 0,
							   ctx_clock_skew_check, ctx_clock_skew_assign, NULL);
	DefineCustomBoolVariable("crm_security.require_exp",
							 "Whether context tokens must carry an exp claim.",
							 NULL, &ctx_require_exp, true, PGC_SUSET, 0,
							 NULL, ctx_settings_assign_bool, NULL);
	DefineCustomStringVariable("crm_security.tenant_claim",
							   "Claim (or dotted path) that tenant_id() returns.",
							   NULL, &ctx_tenant_claim, "tenant_id", PGC_SUSET, 0,
							   ctx_claim_path_check, ctx_derived_assign_str, NULL);
	DefineCustomStringVariable("crm_security.role_claim",
							   "Claim (or dotted path) that app_role() returns.",
							   NULL, &ctx_role_claim, "role", PGC_SUSET, 0,
							   ctx_claim_path_check, ctx_derived_assign_str, NULL);
	DefineCustomStringVariable("crm_security.permissions_claim",
							   "Claim (or dotted path) that holds the token's permissions.",
							   NULL, &ctx_permissions_claim, "permissions", PGC_SUSET, 0,
							   ctx_claim_path_check, ctx_derived_assign_str, NULL);
	DefineCustomBoolVariable("crm_security.trust_request_jwt_claims",
							 "Use request.jwt.claims as the claim context when no token is set.",
							 "Only for deployments where PostgREST has verified the token already.",
							 &ctx_trust_request_claims, false, PGC_SUSET, 0,
							 NULL, ctx_derived_assign_bool, NULL);

	ctx_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security claim context",
									 ALLOCSET_SMALL_SIZES);
	tc_init();
	RegisterXactCallback(ctx_xact_callback, NULL);
	ctx_prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = ctx_executor_start;

	/*
	 * A token set before the library was loaded (a placeholder then) may come from an
	 * earlier transaction, which nothing erased: drop it.  One set in this transaction
	 * (SET LOCAL propagated by Citus, say) has a stacked prior value and stays: it ends
	 * with the transaction like any other.
	 */
	if (ctx_token != NULL && ctx_token[0] != '\0' && !IsParallelWorker() &&
		!InitializingParallelWorker && !setting_set_in_this_transaction(CTX_TOKEN_GUC))
		setting_erase(CTX_TOKEN_GUC, WARNING);
	if (ctx_requested != NULL && ctx_requested[0] != '\0' && !IsParallelWorker() &&
		!InitializingParallelWorker && !setting_set_in_this_transaction(CTX_TENANT_GUC))
		setting_erase(CTX_TENANT_GUC, WARNING);

	/* crm_security.require_membership, role_source (context_tenant.c). */
	ctx_tenant_init();
	/* crm_security.service_audience (context_internal.c). */
	ctx_internal_init();

	/* The same for request.jwt.claims in trust mode (a SET made before the library loaded). */
	if (ctx_trust_request_claims && !IsParallelWorker() && !InitializingParallelWorker)
	{
		const char *s = GetConfigOption(CTX_REQUEST_CLAIMS_GUC, true, false);

		if (s != NULL && s[0] != '\0' && !setting_set_in_this_transaction(CTX_REQUEST_CLAIMS_GUC))
			setting_erase(CTX_REQUEST_CLAIMS_GUC, WARNING);
	}
}

/* ---------------------------------------------------------------------------------------
 * Verification and the current context
 * --------------------------------------------------------------------------------------- */

/* A palloc'd copy of a Jsonb (or NULL). */
static Jsonb *
ctx_copy(Jsonb *j)
{
	Jsonb	   *c;

	if (j == NULL)
		return NULL;
	c = palloc(VARSIZE(j));
	memcpy(c, j, VARSIZE(j));
	return c;
}

static void
ctx_verify_options(JwtVerifyOptions *opts)
{
	jwt_options_init(opts);
	opts->audience = (ctx_jwt_audience && ctx_jwt_audience[0]) ? ctx_jwt_audience : NULL;
	opts->issuer = (ctx_jwt_issuer && ctx_jwt_issuer[0]) ? ctx_jwt_issuer : NULL;
	opts->leeway = ctx_clock_skew;
	opts->require_exp = ctx_require_exp;
}

/* Verify `token` now and remember the result; returns its entry. */
static TcEntry *
ctx_verify_and_cache(const char *token, size_t len, const unsigned char *hash)
{
	JwtVerifyOptions opts;
	Jsonb	   *claims;
	TimestampTz until;
	bool		internal;
	CtxActor	actor;

	ctx_verify_options(&opts);
	claims = ks_verify_token(token, (int) len, &opts, &until, &internal);
	actor = internal ? ctx_internal_actor(claims) : CTX_ACTOR_USER;	/* context_internal.c */
	return tc_store(hash, claims, ctx_settings_gen, ks_current_version(), until, actor);
}

/* Make `e` the entry of the token in the setting. */
static void
ctx_make_current(TcEntry *e)
{
	ctx_current = e;
	ctx_current_id = e->id;
	ctx_current_gen = ctx_token_gen;
	ctx_gen++;
}

/*
 * The claims that request.jwt.claims holds, when a superuser chose to trust it: only a
 * value set in this transaction (PostgREST sets it with set_config(..., true)).  One left by
 * an earlier transaction (set while trust mode was off, before the library was loaded, or
 * as a connection option) is no context.  A parallel worker has the leader's settings
 * without their history; the leader erased a stale value before the query started.
 */
static Jsonb *
ctx_trusted_request_claims(void)
{
	const char *s = GetConfigOption(CTX_REQUEST_CLAIMS_GUC, true, false);
	JsonLexContext *lex;
	Jsonb	   *j;
	MemoryContext old;

	if (s == NULL || s[0] == '\0')
		return NULL;
	if (ctx_request_text != NULL && strcmp(ctx_request_text, s) == 0)
		return ctx_request_claims;
	if (!IsParallelWorker() && !setting_set_in_this_transaction(CTX_REQUEST_CLAIMS_GUC))
		return NULL;

	lex = makeJsonLexContextCstringLen(pstrdup(s), strlen(s), GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		crm_auth_refuse(CRM_AUTH_INVALID_CONTEXT, "claim context",
						"request.jwt.claims is not valid JSON.", NULL);
	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
	if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		crm_auth_refuse(CRM_AUTH_INVALID_CONTEXT, "claim context",
						"request.jwt.claims is not a JSON object.", NULL);
	old = MemoryContextSwitchTo(ctx_mcxt);
	ctx_request_text = pstrdup(s);
	ctx_request_claims = ctx_copy(j);
	MemoryContextSwitchTo(old);
	ctx_gen++;
	return ctx_request_claims;
}

/*
 * The verified claims of the current transaction (owned by this module: do not modify or
 * free), or NULL.  A token in the setting that does not verify raises 28000.
 */
static Jsonb *
ctx_current_claims(void)
{
	size_t		len;
	unsigned char hash[32];
	TcEntry    *e;

	if (ctx_token == NULL || ctx_token[0] == '\0')
	{
		/* Without this setting, request.jwt.claims is never read. */
		if (ctx_trust_request_claims)
			return ctx_trusted_request_claims();
		return NULL;
	}

	/* Fast path: the setting has not changed since its token was verified. */
	if (CTX_HAS_CURRENT() && ctx_current->settings_gen == ctx_settings_gen)
		return ctx_current->claims;

	/*
	 * A token that was not set in this transaction was left by an earlier one (set before
	 * the library was loaded, and restored by the rollback of the transaction that loaded
	 * it and erased it): no context.  Parallel workers have no history of settings.
	 */
	if (!IsParallelWorker() && !setting_set_in_this_transaction(CTX_TOKEN_GUC))
		return NULL;

	len = strlen(ctx_token);
	if (ctx_token_syntax(ctx_token, len) != NULL)
		crm_auth_refuse(CRM_AUTH_INVALID_CONTEXT, "claim context",
						"crm_security.token does not hold a token.", NULL);
	crm_sha256(ctx_token, len, hash);
	e = tc_lookup(hash, ctx_settings_gen, ks_current_version(), GetCurrentTimestamp());
	if (e == NULL)
		e = ctx_verify_and_cache(ctx_token, len, hash);
	ctx_make_current(e);
	return e->claims;
}

Jsonb *
ctx_claims(void)
{
	return ctx_copy(ctx_current_claims());
}

const Jsonb *
ctx_claims_ref(void)
{
	return ctx_current_claims();
}

CtxActor
ctx_actor(void)
{
	/* When a token is the context (trusted request.jwt.claims are a user's). */
	if (ctx_current_claims() != NULL && ctx_token != NULL && ctx_token[0] != '\0' &&
		CTX_HAS_CURRENT())
		return ctx_current->actor;
	return CTX_ACTOR_USER;
}

const char *
ctx_actor_type(void)
{
	return ctx_current_claims() != NULL ? ctx_actor_name(ctx_actor()) : NULL;
}

char *
ctx_claim_text(const char *path)
{
	return claim_path_text(ctx_current_claims(), path);
}

/* The setting naming a claim, or its default (the check hooks keep it from being empty). */
static const char *
ctx_setting_or(const char *v, const char *dflt)
{
	return (v != NULL && v[0] != '\0') ? v : dflt;
}

const char *
ctx_permissions_claim_path(void)
{
	/* The extension's own tokens hold their scopes under a fixed name. */
	if (ctx_actor() != CTX_ACTOR_USER)
		return CTX_INTERNAL_PERMS_CLAIM;
	return ctx_setting_or(ctx_permissions_claim, "permissions");
}

char *
ctx_user_id_text(void)
{
	return ctx_claim_text("sub");
}

const char *
ctx_tenant_claim_path(void)
{
	return ctx_setting_or(ctx_tenant_claim, "tenant_id");
}

const char *
ctx_role_claim_path(void)
{
	return ctx_setting_or(ctx_role_claim, "role");
}

/*
 * The requested tenant: only a value set in this transaction (a parallel worker has the
 * leader's settings without their history; the leader erased a stale one), else NULL.
 */
const char *
ctx_requested_tenant(void)
{
	if (ctx_requested == NULL || ctx_requested[0] == '\0')
		return NULL;
	if (!IsParallelWorker() && !setting_set_in_this_transaction(CTX_TENANT_GUC))
		return NULL;
	return ctx_requested;
}

static char *
ctx_pstrdup_or_null(const char *s)
{
	return s != NULL ? pstrdup(s) : NULL;
}

char *
ctx_tenant_text(void)
{
	return ctx_pstrdup_or_null(ctx_tenant_current()->tenant);
}

char *
ctx_role_text(void)
{
	return ctx_pstrdup_or_null(ctx_tenant_current()->role);
}

char *
ctx_member_role_text(void)
{
	return ctx_pstrdup_or_null(ctx_tenant_current()->member_role);
}

/*
 * In trust mode without a token, request.jwt.claims is the context, and it has no hook of
 * ours: compare it with what was seen last.  A value that was not parsed (yet) counts as a
 * change every time, so that it is never taken for the one that was.
 */
static void
ctx_see_request_claims(void)
{
	const char *s = GetConfigOption(CTX_REQUEST_CLAIMS_GUC, true, false);
	const char *state;

	if (s == NULL || s[0] == '\0')
		state = ctx_request_empty;
	else if (ctx_request_text != NULL && strcmp(ctx_request_text, s) == 0)
		state = ctx_request_text;
	else
		state = NULL;
	if (state == NULL || state != ctx_request_seen)
	{
		ctx_gen++;
		ctx_request_seen = state;
	}
}

void
ctx_generation_bump(void)
{
	ctx_gen++;
}

uint64
ctx_generation(void)
{
	if (ctx_trust_request_claims && (ctx_token == NULL || ctx_token[0] == '\0'))
		ctx_see_request_claims();
	return ctx_gen;
}

/* ---------------------------------------------------------------------------------------
 * Setting and clearing the context
 * --------------------------------------------------------------------------------------- */

/* The compatibility settings that Supabase's auth.*() and PostgREST read. */
static void
ctx_set_request_settings(const Jsonb *claims)
{
	setting_set_local("request.jwt.claims",
				  claims ? JsonbToCString(NULL, (JsonbContainer *) &claims->root, VARSIZE(claims)) : NULL);
	setting_set_local("request.jwt.claim.sub", claim_path_text(claims, "sub"));
	setting_set_local("request.jwt.claim.role", claim_path_text(claims, "role"));
	setting_set_local("request.jwt.claim.email", claim_path_text(claims, "email"));
}

Jsonb *
ctx_set_token(const char *token, size_t len, const char *tenant, const char *request_id)
{
	unsigned char hash[32];
	TcEntry    *e;
	Jsonb	   *claims;
	CtxTenant	res;

	/*
	 * Verify first (or find a user's token verified earlier, under the same key store and
	 * settings, and not expired): a refused token leaves the context as it was.
	 * Verification checks the syntax too; the setting's check hook checks it again when
	 * the token is stored.
	 */
	crm_sha256(token, len, hash);
	e = tc_lookup(hash, ctx_settings_gen, ks_current_version(), GetCurrentTimestamp());
	/* The extension's own tokens are checked afresh (service registry, service_audience). */
	if (e == NULL || e->one_xact)
		e = ctx_verify_and_cache(token, len, hash);
	claims = e->claims;

	/* The tenant and role: a refusal also leaves the context as it was. */
	ctx_tenant_resolve(claims, e->actor, tenant, &res);

	setting_set_local(CTX_TOKEN_GUC, token);
	/* What other processes need to resolve the same tenant: the tenant, not the role. */
	{
		const char *input = res.from_membership ? res.tenant : tenant;

		/* (Setting it costs: not when it stays empty.) */
		if (input != NULL || (ctx_requested != NULL && ctx_requested[0] != '\0'))
			setting_set_local(CTX_TENANT_GUC, input);
	}
	if (request_id != NULL)
		setting_set_local("crm_security.request_id", request_id);
	ctx_make_current(e);
	ctx_set_request_settings(claims);
	ctx_tenant_remember(&res);
	return ctx_copy(claims);
}

void
ctx_clear(void)
{
	setting_set_local(CTX_TOKEN_GUC, "");
	setting_set_local(CTX_TENANT_GUC, "");
	ctx_set_request_settings(NULL);
}
