/*
 * crm_security.c
 *		Module entry point: PG_MODULE_MAGIC, settings, and module initialisation.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "audit.h"
#include "crm_security.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

/* Longest token, in bytes, that any function will look at. */
int			crm_max_token_length = 65536;

void
_PG_init(void)
{
	DefineCustomIntVariable("crm_security.max_token_length",
							"Longest token, in bytes, that is parsed at all.",
							"Longer tokens are refused before any decoding.",
							&crm_max_token_length,
							65536, 256, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	crypto_init();
	ctx_init();
	permission_init();
	audit_init();
	/*
	 * The audit log's hooks: ExecutorStart, ExecutorFinish and ProcessUtility (write a
	 * statement's entries together), transaction callbacks (write or discard them),
	 * object_access and ProcessUtility again (record a TRUNCATE no trigger records).
	 */
	audit_install_hooks();

	MarkGUCPrefixReserved("crm_security");
}

/* SQL function: version() returns text */
PG_FUNCTION_INFO_V1(crm_security_version);
Datum
crm_security_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CRM_SECURITY_VERSION));
}
