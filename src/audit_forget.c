/*
 * audit_forget.c
 *		forget_subject(): a data subject's erasure (crypto-shredding, docs/privacy.md).
 *		The subject's data key rows are deleted from crm_security.audit_subject_keys, as
 *		the table's owner; no cache of this transaction keeps the key; the entries that
 *		held values under it are counted; and the erasure is itself an audit event that
 *		names the subject and its tenant, nothing of their data.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "audit_entry.h"
#include "audit_envelope.h"
#include "audit_subject_keys.h"
#include "crypto.h"

/* How many entries hold values under key_id (SPI connected, as owner). */
static int64
count_entries(int64 key_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {audit_envelope_key_pattern(key_id)};
	bool		isnull;

	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM crm_security.audit_log "
							  "WHERE " AUDIT_HOLDS_KEY_SQL,
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm_security.audit_log");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* SQL function: forget_subject(tenant_id text, subject text) returns bigint */
PG_FUNCTION_INFO_V1(audit_forget_subject);
Datum
audit_forget_subject(PG_FUNCTION_ARGS)
{
	char	   *tenant = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *subject = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	volatile int64 entries = 0;
	volatile int64 keys = 0;
	AuditKeysAsOwner own;
	JsonbParseState *st = NULL;
	JsonbValue	k,
				v;

	PreventCommandIfReadOnly("forget_subject()");
	audit_check_subject(subject, tenant);

	/* Nothing of this transaction may keep the key. */
	audit_subject_keys_reset();
	crm_aes_gcm_forget();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_keys_as_owner_begin(&own);
	PG_TRY();
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		args[2];
		uint64		n;

		args[0] = tenant ? CStringGetTextDatum(tenant) : CStringGetTextDatum(subject);
		args[1] = CStringGetTextDatum(subject);
		if (SPI_execute_with_args(tenant != NULL ?
								  "DELETE FROM crm_security.audit_subject_keys "
								  "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND subject OPERATOR(pg_catalog.=) $2 "
								  "RETURNING key_id" :
								  "DELETE FROM crm_security.audit_subject_keys "
								  "WHERE tenant_id IS NULL AND subject OPERATOR(pg_catalog.=) $1 "
								  "RETURNING key_id",
								  tenant ? 2 : 1, types, args, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not delete from crm_security.audit_subject_keys");
		n = SPI_processed;
		keys = (int64) n;
		if (n > 0)
		{
			int64	   *ids = palloc(sizeof(int64) * n);
			bool		isnull;

			for (uint64 i = 0; i < n; i++)
				ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
			for (uint64 i = 0; i < n; i++)
				entries += count_entries(ids[i]);
		}
	}
	PG_FINALLY();
	{
		audit_keys_as_owner_end(&own);
	}
	PG_END_TRY();
	SPI_finish();
	audit_subject_keys_reset();

	/* The event names the subject and the tenant, nothing of their data. */
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "entries";
	k.val.string.len = 7;
	pushJsonbValue(&st, WJB_KEY, &k);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(entries);
	pushJsonbValue(&st, WJB_VALUE, &v);
	k.val.string.val = "keys_destroyed";
	k.val.string.len = 14;
	pushJsonbValue(&st, WJB_KEY, &k);
	v.val.numeric = int64_to_numeric(keys);
	pushJsonbValue(&st, WJB_VALUE, &v);
	k.val.string.val = "subject_tenant_id";
	k.val.string.len = 17;
	pushJsonbValue(&st, WJB_KEY, &k);
	if (tenant != NULL)
	{
		v.type = jbvString;
		v.val.string.val = tenant;
		v.val.string.len = strlen(tenant);
	}
	else
		v.type = jbvNull;
	pushJsonbValue(&st, WJB_VALUE, &v);
	audit_internal_event("audit.forget", "subject", subject,
						 JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
	PG_RETURN_INT64(entries);
}
