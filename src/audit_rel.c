/*
 * audit_rel.c
 *		Relations of the audit log: the extension's own tables (resolved once per backend),
 *		and the cached description of each audited table, for its trigger: which columns
 *		make its key and its row image, pinned by running triggers and rebuilt after a
 *		relcache invalidation.
 *
 * The row trigger is the hot path.  Per table we cache (by trigger, invalidated through
 * the relcache) the primary key columns and the stored columns with their conversion
 * plans (audit_image.c), so that a row becomes jsonb without catalog or SPI work; a
 * running trigger pins the description it uses, since user code run while a row image is
 * built (a cast to json) may change the table and fire the trigger again.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "audit_image.h"
#include "audit_rel.h"
#include "citus_context.h"

static AuditRelids audit_rels;
/* Set by a relcache invalidation of one of them: look them up again at the next use. */
static bool audit_rels_stale = true;

/* The cache: the trigger's OID to its table's current description. */
typedef struct AuditRelEntry
{
	Oid			tgoid;			/* hash key */
	AuditRelInfo *info;			/* NULL until built */
} AuditRelEntry;

static HTAB *audit_rel_cache = NULL;
/* Counts relcache invalidations, so that a description built across one is not kept. */
static uint64 audit_rel_inval_count = 0;

void
audit_rel_invalidate(Oid relid)
{
	/*
	 * Mark the OIDs for a new lookup, without clearing them: a caller may hold the pointer
	 * that audit_relids() returned across code that accepts invalidation messages (a lock,
	 * nextval), and must still find the OIDs there.  Under load a full reset (InvalidOid)
	 * arrives at any such point.
	 */
	if (relid == InvalidOid || relid == audit_rels.log || relid == audit_rels.seq ||
		relid == audit_rels.blocks || relid == audit_rels.purges)
		audit_rels_stale = true;
	audit_rel_inval_count++;
	if (audit_rel_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		AuditRelEntry *ent;

		hash_seq_init(&status, audit_rel_cache);
		while ((ent = hash_seq_search(&status)) != NULL)
		{
			if (ent->info != NULL && (relid == InvalidOid || ent->info->relid == relid))
				ent->info->valid = false;
		}
	}
}

static Oid
audit_lookup_rel(const char *name)
{
	Oid			nsp = get_namespace_oid("crm_security", false);
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation crm_security.%s is missing", name);
	return relid;
}

const AuditRelids *
audit_relids(void)
{
	AuditRelids fresh;

	if (!audit_rels_stale && OidIsValid(audit_rels.log) && OidIsValid(audit_rels.seq) &&
		OidIsValid(audit_rels.blocks) && OidIsValid(audit_rels.purges))
		return &audit_rels;
	/*
	 * Looked up first and copied at once, so that the struct never holds a partial set; an
	 * invalidation that arrives during the lookups leaves it stale for the next call.
	 */
	audit_rels_stale = false;
	fresh.seq = audit_lookup_rel("audit_log_id_seq");
	fresh.blocks = audit_lookup_rel("audit_blocks");
	fresh.purges = audit_lookup_rel("audit_purges");
	fresh.log = audit_lookup_rel("audit_log");
	audit_rels = fresh;
	return &audit_rels;
}

char *
audit_rel_qualname(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

char *
audit_rel_entry_name(Relation rel)
{
	const char *table = citus_shard_table_name(rel);	/* a Citus shard: its table */

	return table != NULL ? pstrdup(table) : audit_rel_qualname(rel);
}

/* The names of a text[] literal. */
static List *
audit_literal_names(const char *literal)
{
	List	   *names = NIL;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	arr = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, (char *) literal, TEXTOID, -1));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
		if (!enulls[i])
			names = lappend(names, TextDatumGetCString(elems[i]));
	return names;
}

/*
 * The trigger's arguments: the excluded columns (a text[] literal), and when there are
 * personal columns, these (another) and the subject column ('' for the primary key).
 */
static pg_noinline void
audit_trigger_args(Trigger *trigger, List **excluded, List **personal, char **subject)
{
	*excluded = NIL;
	*personal = NIL;
	*subject = NULL;
	if (trigger->tgnargs == 0)
		return;
	if (trigger->tgnargs != 1 && trigger->tgnargs != 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit trigger \"%s\" has unexpected arguments", trigger->tgname),
				 errhint("Use crm_security.enable_audit() to create audit triggers.")));
	*excluded = audit_literal_names(trigger->tgargs[0]);
	if (trigger->tgnargs == 3)
	{
		*personal = audit_literal_names(trigger->tgargs[1]);
		if (trigger->tgargs[2][0] != '\0')
			*subject = pstrdup(trigger->tgargs[2]);
	}
}

/* The attribute number of a column by name, or InvalidAttrNumber. */
static AttrNumber
audit_attnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

static TupleDesc
audit_project_desc(TupleDesc src, const AttrNumber *attnums, int n)
{
	TupleDesc	desc = CreateTemplateTupleDesc(n);

	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src, attnums[i] - 1);

		TupleDescInitEntry(desc, i + 1, NameStr(att->attname), att->atttypid,
						   att->atttypmod, att->attndims);
		TupleDescInitEntryCollation(desc, i + 1, att->attcollation);
	}
	return desc;
}

/* Let go of a description pinned by audit_rel_info(); the last user frees a stale one. */
void
audit_rel_release(AuditRelInfo *info)
{
	Assert(info->pins > 0);
	info->pins--;
	if (info->pins == 0 && info->retired)
		MemoryContextDelete(info->cxt);
}

/* Take a cached description out of the cache: freed now, or by its last user. */
static void
audit_rel_retire(AuditRelEntry *ent)
{
	AuditRelInfo *old = ent->info;

	ent->info = NULL;
	if (old == NULL)
		return;
	old->retired = true;
	if (old->pins == 0)
		MemoryContextDelete(old->cxt);
}

static AuditRelInfo *audit_rel_fill(Relation rel, MemoryContext cxt, Oid pkoid, List *excluded,
									 List *personal, const char *subject);

/* Build the description of rel for trigger, in a new memory context. */
static AuditRelInfo *
audit_rel_build(Relation rel, Trigger *trigger)
{
	AuditRelInfo *info;
	MemoryContext cxt;
	MemoryContext old;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			pkoid;
	List	   *excluded;
	List	   *personal;
	char	   *subject;
	ListCell   *lc;

	audit_trigger_args(trigger, &excluded, &personal, &subject);
	/* Personal columns and the subject column fail closed likewise: never store in clear. */
	foreach(lc, personal)
	{
		if (audit_attnum(desc, lfirst(lc)) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("personal column \"%s\" of audited table \"%s\" does not exist",
							(char *) lfirst(lc), RelationGetRelationName(rel)),
					 errhint("Run crm_security.enable_audit() again with the current column names.")));
	}
	if (subject != NULL && audit_attnum(desc, subject) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("subject column \"%s\" of audited table \"%s\" does not exist",
						subject, RelationGetRelationName(rel)),
				 errhint("Run crm_security.enable_audit() again with the current column names.")));
	/* Fail closed: an exclusion that names nothing may be a renamed secret column. */
	foreach(lc, excluded)
	{
		const char *name = lfirst(lc);
		bool		hit = false;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
				hit = true;
		}
		if (!hit)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("excluded column \"%s\" of audited table \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errhint("Run crm_security.enable_audit() again with the current column names.")));
	}

	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audited table \"%s\" has no primary key", RelationGetRelationName(rel))));

	cxt = AllocSetContextCreate(CacheMemoryContext, "crm_security audit table",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		info = audit_rel_fill(rel, cxt, pkoid, excluded, personal, subject);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return info;
}

/* The description itself, in cxt (current). */
static AuditRelInfo *
audit_rel_fill(Relation rel, MemoryContext cxt, Oid pkoid, List *excluded, List *personal,
			   const char *subject)
{
	AuditRelInfo *info;
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	pkrel;
	ListCell   *lc;

	info = palloc0(sizeof(AuditRelInfo));
	info->cxt = cxt;
	info->relid = RelationGetRelid(rel);

	info->qualname = audit_rel_entry_name(rel);
	info->qualname_text = CStringGetTextDatum(info->qualname);

	pkrel = index_open(pkoid, AccessShareLock);
	info->nkey = pkrel->rd_index->indnkeyatts;
	info->key_attnums = palloc(sizeof(AttrNumber) * info->nkey);
	for (int i = 0; i < info->nkey; i++)
		info->key_attnums[i] = pkrel->rd_index->indkey.values[i];
	index_close(pkrel, AccessShareLock);

	info->row_attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	info->nrow = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		skip = att->attisdropped;

		foreach(lc, excluded)
			if (strcmp(NameStr(att->attname), (char *) lfirst(lc)) == 0)
				skip = true;
		if (!skip)
			info->row_attnums[info->nrow++] = att->attnum;
	}
	info->row_desc = audit_project_desc(desc, info->row_attnums, info->nrow);
	info->key_cols = audit_image_cols(desc, info->key_attnums, info->nkey, cxt);
	info->row_cols = audit_image_cols(desc, info->row_attnums, info->nrow, cxt);
	info->row_names = palloc(sizeof(Datum) * Max(info->nrow, 1));
	info->row_elems = palloc(sizeof(char *) * Max(info->nrow, 1));
	for (int i = 0; i < info->nrow; i++)
	{
		Form_pg_attribute att = TupleDescAttr(info->row_desc, i);
		ArrayType  *one;
		char	   *s;

		info->row_names[i] = CStringGetTextDatum(NameStr(att->attname));
		/* array_out() itself says how it quotes this name: "{name}" minus the braces. */
		one = construct_array(&info->row_names[i], 1, TEXTOID, -1, false, TYPALIGN_INT);
		s = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(one));
		if (strlen(s) < 2 || s[0] != '{' || s[strlen(s) - 1] != '}')
			elog(ERROR, "unexpected array output \"%s\"", s);
		info->row_elems[i] = pnstrdup(s + 1, strlen(s) - 2);
	}
	info->npersonal = list_length(personal);
	info->personal = palloc(sizeof(char *) * Max(info->npersonal, 1));
	{
		int			i = 0;

		foreach(lc, personal)
			info->personal[i++] = pstrdup(lfirst(lc));
	}
	info->subject_attnum = subject ? audit_attnum(desc, subject) : InvalidAttrNumber;
	info->tenant_attnum = info->npersonal > 0 ? audit_attnum(desc, "tenant_id") : InvalidAttrNumber;
	return info;
}

/* The description of rel for trigger, pinned (see audit_rel.h). */
AuditRelInfo *
audit_rel_info(Relation rel, Trigger *trigger)
{
	AuditRelEntry *ent;
	AuditRelInfo *info;
	bool		found;
	uint64		count;

	if (audit_rel_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(AuditRelEntry);
		audit_rel_cache = hash_create("crm_security audited tables", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS);
	}
	ent = hash_search(audit_rel_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		ent->info = NULL;
	if (ent->info != NULL && ent->info->valid && ent->info->relid == RelationGetRelid(rel))
	{
		ent->info->pins++;
		return ent->info;
	}
	/* Stale: out of the cache now, freed when no running call uses it any more. */
	audit_rel_retire(ent);

	count = audit_rel_inval_count;
	info = audit_rel_build(rel, trigger);
	/*
	 * Building opens the index, which may process invalidations: a description built
	 * across one serves this call only.  The entry is looked up again, as the cache may
	 * have changed meanwhile.
	 */
	info->pins = 1;
	info->valid = (count == audit_rel_inval_count);
	ent = hash_search(audit_rel_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		ent->info = NULL;
	if (info->valid)
	{
		audit_rel_retire(ent);
		ent->info = info;
	}
	else
		info->retired = true;
	return info;
}
