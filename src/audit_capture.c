/*
 * audit_capture.c
 *		How entries come in: the row trigger audit_trigger() (INSERT, UPDATE, DELETE, and
 *		TRUNCATE where the table has its trigger), the TRUNCATE of an audited relation
 *		without one (through hooks), and application events through log_event().
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "audit_capture.h"
#include "audit_entry.h"
#include "audit_image.h"
#include "audit_personal.h"
#include "audit_rel.h"

/* Limits for log_event() arguments. */
#define AUDIT_MAX_NAME 200
#define AUDIT_MAX_RESOURCE_ID 1024
#define AUDIT_MAX_METADATA (1024 * 1024)

/* --------------------------------------------------------------------------------------
 * The row trigger
 * --------------------------------------------------------------------------------------
 */

/* Build and write the entry of one trigger event, with the pinned description info. */
static void
audit_row_entry(TriggerData *td, AuditRelInfo *info)
{
	TriggerEvent ev = td->tg_event;
	AuditEntry	e;

	audit_entry_init(&e, "row",
					 TRIGGER_FIRED_BY_INSERT(ev) ? "INSERT" :
					 TRIGGER_FIRED_BY_UPDATE(ev) ? "UPDATE" :
					 TRIGGER_FIRED_BY_DELETE(ev) ? "DELETE" : "TRUNCATE");
	if (info->npersonal > 0 && !TRIGGER_FIRED_BY_TRUNCATE(ev))
		audit_entry_assign_id(&e);
	audit_row_images(&e, td, info);
	e.values[AL_TABLE_NAME] = info->qualname_text;
	e.nulls[AL_TABLE_NAME] = false;
	audit_insert_entry(&e, true);
}

/* SQL function: audit_trigger() returns trigger */
PG_FUNCTION_INFO_V1(audit_trigger);
Datum
audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	AuditRelInfo *volatile info;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trigger() must be called as a trigger")));
	ev = td->tg_event;
	rel = td->tg_relation;
	if (!TRIGGER_FIRED_AFTER(ev) ||
		(TRIGGER_FIRED_BY_TRUNCATE(ev) ? !TRIGGER_FIRED_FOR_STATEMENT(ev) : !TRIGGER_FIRED_FOR_ROW(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trigger() must fire AFTER each row, or AFTER TRUNCATE for each statement"),
				 errhint("Use crm_security.enable_audit() to create audit triggers.")));

	info = audit_rel_info(rel, td->tg_trigger);
	PG_TRY();
	{
		audit_row_entry(td, info);
	}
	PG_FINALLY();
	{
		audit_rel_release(info);
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}

/* --------------------------------------------------------------------------------------
 * TRUNCATE of audited relations without a TRUNCATE trigger of their own
 * --------------------------------------------------------------------------------------
 *
 * A partition created or attached after enable_audit() has the row trigger (PostgreSQL
 * clones it) but not the TRUNCATE trigger, so truncating it, directly or through its
 * parent, would go unrecorded.  PostgreSQL tells the object access hook of every relation
 * a TRUNCATE is about to truncate (partitions, ONLY, CASCADE included); the relations
 * of the statement are collected there, and once it has succeeded, each one that has an
 * audit row trigger that fires and no audit TRUNCATE trigger gets its entry.
 */
static bool audit_truncate_collecting = false;
static List *audit_truncated = NIL;

static object_access_hook_type prev_object_access = NULL;
static ProcessUtility_hook_type prev_truncate_utility = NULL;

static void
audit_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
					void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_TRUNCATE && classId == RelationRelationId && audit_truncate_collecting)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		audit_truncated = list_append_unique_oid(audit_truncated, objectId);
		MemoryContextSwitchTo(old);
	}
}

/* Whether a trigger fires under the current session_replication_role. */
static bool
audit_trigger_fires(const Trigger *t)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return t->tgenabled == TRIGGER_FIRES_ON_REPLICA || t->tgenabled == TRIGGER_FIRES_ALWAYS;
	return t->tgenabled == TRIGGER_FIRES_ON_ORIGIN || t->tgenabled == TRIGGER_FIRES_ALWAYS;
}

/* Record the truncation of the relations in relids that no trigger of ours recorded. */
static void
audit_record_truncations(List *relids)
{
	Oid			nsp;
	Oid			fn;
	ListCell   *lc;

	if (relids == NIL)
		return;
	nsp = get_namespace_oid("crm_security", true);
	if (!OidIsValid(nsp))
		return;
	fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum("audit_trigger"),
						 PointerGetDatum(buildoidvector(NULL, 0)), ObjectIdGetDatum(nsp));
	if (!OidIsValid(fn))
		return;
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		LOCKTAG		tag;
		Relation	rel;
		bool		row = false;
		bool		trunc = false;

		/*
		 * Truncated relations are locked: one the name lookup saw but did not truncate
		 * (renamed meanwhile) is not.
		 */
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
		if (!LockHeldByMe(&tag, AccessExclusiveLock))
			continue;
		rel = try_relation_open(relid, NoLock);
		if (rel == NULL)
			continue;
		if (rel->trigdesc != NULL)
		{
			for (int i = 0; i < rel->trigdesc->numtriggers; i++)
			{
				const Trigger *t = &rel->trigdesc->triggers[i];

				if (t->tgfoid != fn)
					continue;
				if (TRIGGER_FOR_TRUNCATE(t->tgtype))
					trunc = true;	/* it records the truncation (or was disabled) */
				else if (TRIGGER_FOR_ROW(t->tgtype) && audit_trigger_fires(t))
					row = true;
			}
		}
		if (row && !trunc)
		{
			AuditEntry	e;

			audit_entry_init(&e, "row", "TRUNCATE");
			audit_set_text(&e, AL_TABLE_NAME, audit_rel_entry_name(rel));
			audit_insert_entry(&e, false);
		}
		relation_close(rel, NoLock);
	}
}

/* The ProcessUtility hook installed before ours, or the standard one. */
static void
audit_next_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_truncate_utility)
		prev_truncate_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
							  dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

static void
audit_truncate_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	List	   *volatile saved_list;
	volatile bool saved_collecting;

	if (!IsA(pstmt->utilityStmt, TruncateStmt))
	{
		audit_next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}
	/* A TRUNCATE run by a trigger of this one collects its own relations. */
	saved_list = audit_truncated;
	saved_collecting = audit_truncate_collecting;
	audit_truncated = NIL;
	audit_truncate_collecting = true;
	PG_TRY();
	{
		audit_next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		audit_truncate_collecting = false;
		audit_record_truncations(audit_truncated);
	}
	PG_FINALLY();
	{
		audit_truncated = saved_list;
		audit_truncate_collecting = saved_collecting;
	}
	PG_END_TRY();
}

void
audit_capture_install_hooks(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = audit_object_access;
	prev_truncate_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_truncate_utility;
}

/* --------------------------------------------------------------------------------------
 * log_event
 * --------------------------------------------------------------------------------------
 */

static char *
audit_text_arg(FunctionCallInfo fcinfo, int argno, const char *what, int maxlen, bool required)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("audit event %s cannot be null", what)));
		return NULL;
	}
	t = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(t);
	if (required && len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event %s cannot be empty", what)));
	if (len > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event %s is too long", what),
				 errdetail("The limit is %d bytes; it has %d.", maxlen, len)));
	return text_to_cstring(t);
}

/*
 * SQL function: log_event(action text, resource_type text, resource_id text, result text,
 * metadata jsonb, subject text, personal_keys text[]) returns bigint; the install script
 * of an older version declares only the first five.
 */
PG_FUNCTION_INFO_V1(audit_log_event);
Datum
audit_log_event(PG_FUNCTION_ARGS)
{
	AuditEntry	e;
	char	   *action;
	char	   *rtype;
	char	   *rid;
	char	   *result;

	/* The entry is written below the executor, which would otherwise check this. */
	PreventCommandIfReadOnly("log_event()");
	action = audit_text_arg(fcinfo, 0, "action", AUDIT_MAX_NAME, true);
	rtype = audit_text_arg(fcinfo, 1, "resource type", AUDIT_MAX_NAME, false);
	rid = audit_text_arg(fcinfo, 2, "resource id", AUDIT_MAX_RESOURCE_ID, false);
	result = audit_text_arg(fcinfo, 3, "result", AUDIT_MAX_NAME, false);
	/* audit.enable, audit.disable, audit.purge: verification trusts the extension's own. */
	if (strncmp(action, "audit.", 6) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event actions beginning with \"audit.\" are reserved"),
				 errdetail("The extension records its own audit.enable, audit.disable and audit.purge events.")));

	audit_entry_init(&e, "event", action);
	audit_set_text(&e, AL_RESOURCE_TYPE, rtype);
	audit_set_text(&e, AL_RESOURCE_ID, rid);
	audit_set_text(&e, AL_RESULT, result);
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *md = PG_GETARG_JSONB_P(4);

		if (VARSIZE(md) > AUDIT_MAX_METADATA)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("audit event metadata is too large"),
					 errdetail("The limit is %d bytes.", AUDIT_MAX_METADATA)));
		e.values[AL_METADATA] = JsonbPGetDatum(md);
		e.nulls[AL_METADATA] = false;
	}
	/* Personal values of the metadata, encrypted for a data subject (docs/privacy.md). */
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
	{
		char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(5));
		char	   *tenant;

		if (e.nulls[AL_METADATA])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an audit event with a data subject needs metadata")));
		tenant = e.nulls[AL_TENANT_ID] ? NULL : TextDatumGetCString(e.values[AL_TENANT_ID]);
		audit_entry_assign_id(&e);
		e.values[AL_METADATA] =
			JsonbPGetDatum(audit_personal_metadata(DatumGetJsonbP(e.values[AL_METADATA]),
												   DatumGetInt64(e.values[AL_ID]), tenant, subject,
												   PG_ARGISNULL(6) ? NULL : PG_GETARG_ARRAYTYPE_P(6)));
	}
	else if (PG_NARGS() > 6 && !PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("personal metadata keys need a data subject")));
	PG_RETURN_INT64(audit_insert_entry(&e, false));
}
