/*
 * audit_admin.c
 *		enable_audit() and disable_audit(): the audit triggers of a table (a row trigger
 *		and a TRUNCATE trigger, with the excluded columns as their argument), and the
 *		TRUNCATE trigger of each of its partitions, which PostgreSQL does not clone.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "audit_entry.h"
#include "audit_rel.h"
#include "citus_context.h"

static int
audit_cmp_names(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a), (char *) lfirst(b));
}

/* Open a table that may be audited, or raise. */
static Relation
audit_open_target(Datum reloid)
{
	Relation	rel;
	Oid			relid = DatumGetObjectId(reloid);
	char		relkind;
	const AuditRelids *rels;

	/* Check ownership before taking a lock that would block the table's writers. */
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), get_rel_name(relid));

	rel = try_relation_open(relid, ShareRowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		char	   *name = pstrdup(RelationGetRelationName(rel));

		relation_close(rel, ShareRowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name)));
	}
	rels = audit_relids();
	if (relid == rels->log || relid == rels->blocks || relid == rels->purges)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot audit the audit log itself")));
	return rel;
}

/*
 * Run the command in q, if any, and empty q.  One command per SPI call: Citus cannot
 * propagate a string of several commands to the shards of a distributed table.
 */
static void
audit_exec(StringInfo q)
{
	if (q->len > 0 && SPI_execute(q->data, false, 0) < 0)
		elog(ERROR, "could not change the audit triggers");
	resetStringInfo(q);
}

/* The tgargs bytes of an existing trigger of ours, or NULL when there is none. */
static char *
audit_existing_trigger(Oid relid, const char *tgname, bool *exists)
{
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(tgname)};
	Oid			types[2] = {OIDOID, TEXTOID};
	int			rc;

	/* Every operator qualified: this runs under the caller's search_path. */
	rc = SPI_execute_with_args("SELECT pg_catalog.encode(tgargs, 'hex') FROM pg_catalog.pg_trigger "
							   "WHERE tgrelid OPERATOR(pg_catalog.=) $1 "
							   "AND tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name "
							   "AND tgfoid OPERATOR(pg_catalog.=) "
							   "'crm_security.audit_trigger()'::pg_catalog.regprocedure::pg_catalog.oid",
							   2, types, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	*exists = (SPI_processed == 1);
	if (!*exists)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * The TRUNCATE trigger on every partition of a partitioned table (all levels), with the
 * argument arg_literal (want_hex as tgargs); without arg_literal, dropped from them.
 * PostgreSQL clones the row trigger to partitions, but not statement triggers, and
 * TRUNCATE of a partition fires only the partition's own.  Runs under SPI.
 */
static void
audit_partition_triggers(Oid relid, const char *arg_literal, const char *want_hex)
{
	List	   *parts;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;
	parts = find_all_inheritors(relid, ShareRowExclusiveLock, NULL);
	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);
		char		kind = get_rel_relkind(part);
		bool		exists;
		char	   *have;
		char	   *qn;
		StringInfoData q;

		if (part == relid || (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE))
			continue;
		have = audit_existing_trigger(part, "crm_audit_truncate", &exists);
		if (arg_literal == NULL ? !exists :
			(exists && have != NULL && strcmp(have, want_hex) == 0))
			continue;
		qn = quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
										get_rel_name(part));
		initStringInfo(&q);
		if (exists)
			appendStringInfo(&q, "DROP TRIGGER crm_audit_truncate ON %s", qn);
		audit_exec(&q);
		if (arg_literal != NULL)
			appendStringInfo(&q,
							 "CREATE TRIGGER crm_audit_truncate AFTER TRUNCATE ON %s "
							 "FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_trigger(%s)",
							 qn, arg_literal);
		audit_exec(&q);
	}
}

/* The primary key index of a table to audit, or raise. */
static Oid
audit_require_pk(Relation rel)
{
	Oid			pkoid = RelationGetPrimaryKeyIndex(rel);

	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("Audit entries identify records by their primary key."),
				 errhint("Add a primary key, then enable auditing.")));
	return pkoid;
}

/*
 * The excluded column names of enable_audit() (arr, or NULL for none), checked against
 * the table and its primary key: sorted, without duplicates.
 */
/* The number of the live column `name` of rel; 42703 when there is none. */
static AttrNumber
audit_column_attnum(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of relation \"%s\" does not exist",
					name, RelationGetRelationName(rel))));
	return InvalidAttrNumber;
}

/* Whether attnum is a key column of the index pkrel. */
static bool
audit_is_key_column(Relation pkrel, AttrNumber attnum)
{
	for (int k = 0; k < pkrel->rd_index->indnkeyatts; k++)
		if (pkrel->rd_index->indkey.values[k] == attnum)
			return true;
	return false;
}

static List *
audit_excluded_columns(Relation rel, Oid pkoid, ArrayType *arr)
{
	List	   *excluded = NIL;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	Relation	pkrel;
	ListCell   *lc;

	if (arr == NULL)
		return NIL;
	pkrel = index_open(pkoid, AccessShareLock);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("excluded columns must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		AttrNumber	attnum;
		bool		dup = false;

		if (enulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("excluded column names cannot be null")));
		name = TextDatumGetCString(elems[i]);
		attnum = audit_column_attnum(rel, name);
		if (audit_is_key_column(pkrel, attnum))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot exclude primary key column \"%s\"", name),
					 errdetail("Audit entries identify records by their primary key.")));
		foreach(lc, excluded)
			if (strcmp(lfirst(lc), name) == 0)
				dup = true;
		if (!dup)
			excluded = lappend(excluded, name);
	}
	index_close(pkrel, AccessShareLock);
	list_sort(excluded, audit_cmp_names);
	return excluded;
}

/* A text[] literal of names. */
static char *
audit_names_literal(List *names)
{
	int			n = list_length(names);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, names)
		elems[i++] = CStringGetTextDatum(lfirst(lc));
	return OidOutputFunctionCall(F_ARRAY_OUT,
								 PointerGetDatum(construct_array(elems, n, TEXTOID, -1,
																 false, TYPALIGN_INT)));
}

/* Append one trigger argument to the SQL list and to the hex of tgargs. */
static void
audit_add_argument(StringInfo sql, StringInfo hex, const char *arg)
{
	size_t		len = strlen(arg);

	if (sql->len > 0)
		appendStringInfoString(sql, ", ");
	appendStringInfoString(sql, quote_literal_cstr(arg));
	enlargeStringInfo(hex, len * 2 + 3);
	hex->len += hex_encode(arg, len, hex->data + hex->len);
	/* tgargs ends each argument with a zero byte */
	appendStringInfoString(hex, "00");
}

/*
 * The trigger arguments as an SQL list: the text[] literal of the sorted excluded names
 * and, with personal columns, the literal of theirs and the subject column ('' for the
 * primary key); *want_hex is how pg_trigger.tgargs holds them, in hex.
 */
static char *
audit_trigger_argument(List *excluded, List *personal, const char *subject, char **want_hex)
{
	StringInfoData sql;
	StringInfoData hex;

	initStringInfo(&sql);
	initStringInfo(&hex);
	audit_add_argument(&sql, &hex, audit_names_literal(excluded));
	if (personal != NIL)
	{
		audit_add_argument(&sql, &hex, audit_names_literal(personal));
		audit_add_argument(&sql, &hex, subject ? subject : "");
	}
	*want_hex = hex.data;
	return sql.data;
}

/*
 * The personal columns of enable_audit() (arr, or NULL for none), checked: columns of the
 * table, neither a primary key column nor the tenant column (they identify the entry and
 * the key), not excluded, not the subject column; sorted, without duplicates.
 */
static List *
audit_personal_columns(Relation rel, Oid pkoid, ArrayType *arr, List *excluded,
					   const char *subject)
{
	List	   *personal = NIL;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	Relation	pkrel;
	ListCell   *lc;

	if (arr == NULL)
		return NIL;
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("personal columns must be a one-dimensional array")));
	pkrel = index_open(pkoid, AccessShareLock);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		AttrNumber	attnum;
		bool		dup = false;

		if (enulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("personal column names cannot be null")));
		name = TextDatumGetCString(elems[i]);
		attnum = audit_column_attnum(rel, name);
		if (audit_is_key_column(pkrel, attnum))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("primary key column \"%s\" cannot be personal", name),
					 errdetail("Audit entries identify records by their primary key, in clear.")));
		if (strcmp(name, "tenant_id") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant column \"%s\" cannot be personal", name),
					 errdetail("The tenant of a row chooses the data key of its personal values.")));
		if (subject != NULL && strcmp(name, subject) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("subject column \"%s\" cannot be personal", name),
					 errdetail("The subject id names the data key and is recorded in clear by forget_subject()."),
					 errhint("Use an identifier that is not itself personal data, such as a customer number.")));
		foreach(lc, excluded)
			if (strcmp(lfirst(lc), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" cannot be both excluded and personal", name)));
		foreach(lc, personal)
			if (strcmp(lfirst(lc), name) == 0)
				dup = true;
		if (!dup)
			personal = lappend(personal, name);
	}
	index_close(pkrel, AccessShareLock);
	list_sort(personal, audit_cmp_names);
	return personal;
}

/* The subject column of enable_audit(), checked; NULL for the primary key. */
static char *
audit_subject_column(Relation rel, bool isnull, Datum d)
{
	char	   *name;

	if (isnull)
		return NULL;
	name = pstrdup(NameStr(*DatumGetName(d)));
	(void) audit_column_attnum(rel, name);
	return name;
}

/* DROP TRIGGER statements for the triggers of ours that exist on qualname. */
static void
audit_append_drops(StringInfo q, const char *qualname, bool row_exists, bool trunc_exists)
{
	if (row_exists)
		appendStringInfo(q, "DROP TRIGGER crm_audit_row ON %s", qualname);
	audit_exec(q);
	if (trunc_exists)
		appendStringInfo(q, "DROP TRIGGER crm_audit_truncate ON %s", qualname);
	audit_exec(q);
}

/*
 * Give rel the audit triggers with the argument arg_literal (want_hex as tgargs), and its
 * partitions their TRUNCATE trigger.  Returns false when the table already had exactly
 * these triggers.  Runs under SPI.
 */
static bool
audit_set_triggers(Relation rel, const char *qualname, const char *arg_literal,
				   const char *want_hex)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *have_row;
	char	   *have_trunc;
	bool		row_exists;
	bool		trunc_exists;
	StringInfoData q;

	have_row = audit_existing_trigger(relid, "crm_audit_row", &row_exists);
	have_trunc = audit_existing_trigger(relid, "crm_audit_truncate", &trunc_exists);
	if (row_exists && trunc_exists && have_row && have_trunc &&
		strcmp(have_row, want_hex) == 0 && strcmp(have_trunc, want_hex) == 0)
	{
		/* Already audited exactly so: only partitions added since may lack a trigger. */
		audit_partition_triggers(relid, arg_literal, want_hex);
		return false;
	}

	initStringInfo(&q);
	audit_append_drops(&q, qualname, row_exists, trunc_exists);
	appendStringInfo(&q,
					 "CREATE TRIGGER crm_audit_row AFTER INSERT OR UPDATE OR DELETE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION crm_security.audit_trigger(%s)",
					 qualname, arg_literal);
	audit_exec(&q);
	appendStringInfo(&q,
					 "CREATE TRIGGER crm_audit_truncate AFTER TRUNCATE ON %s "
					 "FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_trigger(%s)",
					 qualname, arg_literal);
	audit_exec(&q);
	audit_partition_triggers(relid, arg_literal, want_hex);
	return true;
}

static void
audit_push_names(JsonbParseState **st, const char *key, List *names)
{
	JsonbValue	k,
				v;
	ListCell   *lc;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, names)
	{
		v.type = jbvString;
		v.val.string.val = lfirst(lc);
		v.val.string.len = strlen(lfirst(lc));
		pushJsonbValue(st, WJB_ELEM, &v);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/*
 * The metadata of the audit.enable event: {"exclude_columns": [...]}, and with personal
 * columns "personal_columns" and "subject_column" (null: the primary key).
 */
static Jsonb *
audit_enable_metadata(List *excluded, List *personal, const char *subject)
{
	JsonbParseState *st = NULL;
	JsonbValue	k,
				v;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	audit_push_names(&st, "exclude_columns", excluded);
	if (personal != NIL)
	{
		audit_push_names(&st, "personal_columns", personal);
		k.type = jbvString;
		k.val.string.val = "subject_column";
		k.val.string.len = strlen("subject_column");
		pushJsonbValue(&st, WJB_KEY, &k);
		if (subject != NULL)
		{
			v.type = jbvString;
			v.val.string.val = (char *) subject;
			v.val.string.len = strlen(subject);
		}
		else
			v.type = jbvNull;
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * SQL function: enable_audit(tbl regclass, exclude_columns text[], personal_columns text[],
 * subject_column name) returns void
 */
PG_FUNCTION_INFO_V1(audit_enable);
Datum
audit_enable(PG_FUNCTION_ARGS)
{
	Relation	rel;
	List	   *excluded;
	List	   *personal;
	char	   *subject;
	Oid			pkoid;
	char	   *qualname;
	char	   *arg_literal;
	char	   *want_hex;
	bool		changed;
	int			nest;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table to audit cannot be null")));
	rel = audit_open_target(PG_GETARG_DATUM(0));
	pkoid = audit_require_pk(rel);
	excluded = audit_excluded_columns(rel, pkoid, PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
	subject = PG_NARGS() > 3 ? audit_subject_column(rel, PG_ARGISNULL(3), PG_GETARG_DATUM(3)) : NULL;
	personal = PG_NARGS() > 2 ?
		audit_personal_columns(rel, pkoid, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2),
							   excluded, subject) : NIL;
	if (subject != NULL && personal == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a subject column needs personal columns"),
				 errdetail("The subject column chooses the data key of personal values.")));
	arg_literal = audit_trigger_argument(excluded, personal, subject, &want_hex);

	qualname = audit_rel_qualname(rel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nest = citus_allow_triggers();	/* citus.enable_unsafe_triggers, for this call */
	changed = audit_set_triggers(rel, qualname, arg_literal, want_hex);
	citus_allow_triggers_end(nest);
	SPI_finish();
	if (changed)
		audit_internal_event("audit.enable", "table", qualname, audit_enable_metadata(excluded, personal, subject));
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* SQL function: disable_audit(tbl regclass) returns void */
PG_FUNCTION_INFO_V1(audit_disable);
Datum
audit_disable(PG_FUNCTION_ARGS)
{
	Relation	rel;
	char	   *qualname;
	bool		row_exists;
	bool		trunc_exists;
	StringInfoData q;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table cannot be null")));
	rel = audit_open_target(PG_GETARG_DATUM(0));
	qualname = audit_rel_qualname(rel);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) audit_existing_trigger(RelationGetRelid(rel), "crm_audit_row", &row_exists);
	(void) audit_existing_trigger(RelationGetRelid(rel), "crm_audit_truncate", &trunc_exists);
	if (row_exists || trunc_exists)
	{
		initStringInfo(&q);
		audit_append_drops(&q, qualname, row_exists, trunc_exists);
	}
	audit_partition_triggers(RelationGetRelid(rel), NULL, NULL);
	SPI_finish();
	if (row_exists || trunc_exists)
		audit_internal_event("audit.disable", "table", qualname, NULL);
	relation_close(rel, NoLock);
	PG_RETURN_VOID();
}
