/*
 * crm_security.c
 *		Module entry point: PG_MODULE_MAGIC, _PG_init (each module's settings and hooks),
 *		and version().
 *
 * Every setting is defined by the module that reads it, in that module's init function;
 * every hook and callback is installed by _PG_init through those functions, listed below,
 * and by nothing else (no module installs one at first use).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "apikey_hash.h"
#include "apikey_usage.h"
#include "audit.h"
#include "citus_context.h"
#include "context.h"
#include "context_status.h"
#include "crm_security.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "keystore.h"
#include "lockout.h"
#include "log_redact.h"
#include "perm_context.h"
#include "ratelimit.h"
#include "request_sign.h"
#include "security_events.h"
#include "shmem_table.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void
_PG_init(void)
{
	/* Setting crm_security.max_token_length. */
	jwt_init();
	crm_auth_errors_init();

	/*
	 * Settings crm_security.token, jwt_audience, jwt_issuer, clock_skew, require_exp,
	 * tenant_claim, role_claim, permissions_claim, trust_request_jwt_claims; and:
	 *	- ExecutorStart hook: erase a token left by an earlier transaction before a query;
	 *	- transaction callback: erase the token at commit, forget verified tokens at the end.
	 */
	ctx_init();
	/* emit_log_hook: a clear message for set_config() of crm_security.token. */
	ctx_status_init();
	/*
	 * emit_log_hook: no token or API key in a server log line (statements and their
	 * parameters, the SET LOCAL that Citus sends to a worker).
	 */
	log_redact_init();

	/* Relcache callback on jwt_keys: reload the key store after a change. */
	ks_init();

	/*
	 * Relcache callback on roles and role_grants, and subtransaction callback: recompute
	 * the cached effective permissions after a change or a rolled-back savepoint.
	 */
	perm_context_init();

	/*
	 * Setting crm_security.request_id; relcache callback: forget the descriptions of
	 * audited tables after a change; the actor's callback on pg_authid.
	 */
	audit_init();

	/*
	 * The audit log's hooks: ExecutorStart, ExecutorFinish and ProcessUtility (write a
	 * statement's entries together), transaction callbacks (write or discard them),
	 * object_access and ProcessUtility again (record a TRUNCATE no trigger records).
	 */
	audit_install_hooks();

	/* Settings crm_security.api_key_pepper and api_key_pepper_previous. */
	apikey_hash_init();

	/*
	 * Setting crm_security.api_key_usage_flush_interval; and, only while the library is
	 * preloaded (shared_preload_libraries), the setting api_key_usage_slots and the
	 * shmem_request and shmem_startup hooks that make the shared use counters of API keys.
	 */
	apikey_usage_init();

	/*
	 * Only while the library is preloaded: the settings request_nonce_slots,
	 * rate_limit_slots and lockout_slots, and the shmem_request and shmem_startup hooks that
	 * make the shared tables of nonces, rate limits and failed attempts (shmem_table.c).
	 */
	request_sign_init();
	ratelimit_init();
	lockout_init();
	sht_install_hooks();

	/*
	 * Arms the counting and logging of refused tokens and API keys; while preloaded, the
	 * shmem_request and shmem_startup hooks of their shared counters (view auth_failures).
	 */
	authfail_init();

	MarkGUCPrefixReserved("crm_security");
}

/* SQL function: version() returns text */
PG_FUNCTION_INFO_V1(crm_security_version);
Datum
crm_security_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CRM_SECURITY_VERSION));
}
