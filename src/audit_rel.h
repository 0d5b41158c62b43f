/*
 * audit_rel.h
 *		Relations the audit log works with: its own tables, found once per backend, and
 *		the cached description of each audited table (audit_rel.c).
 */
#ifndef CRM_AUDIT_REL_H
#define CRM_AUDIT_REL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "commands/trigger.h"
#include "utils/relcache.h"

/* The extension's audit relations, resolved once per backend and reset by invalidation. */
typedef struct AuditRelids
{
	Oid			log;			/* audit_log */
	Oid			seq;			/* audit_log_id_seq */
	Oid			blocks;			/* audit_blocks */
	Oid			purges;			/* audit_purges */
} AuditRelids;

/*
 * The relations, looked up again after an invalidation of one of them.  The OIDs the pointer
 * shows are never cleared: a caller may keep it across code that accepts invalidations.
 */
extern const AuditRelids *audit_relids(void);

/*
 * The cached description of one audited table, for one audit trigger.  It lives in its
 * own memory context, allocated there too.  A running trigger pins it: user code run
 * while the trigger builds a row image (a cast to json, an output function) may change
 * the table (rename its columns) and write to it, and the nested trigger then finds the
 * description stale and builds a new one; the old one is freed only when the last call
 * using it has ended.
 */
typedef struct AuditRelInfo
{
	Oid			relid;
	bool		valid;			/* false once invalidated: the next call rebuilds */
	bool		retired;		/* no longer in the cache: freed when unpinned */
	int			pins;			/* calls of the trigger using it now */
	MemoryContext cxt;			/* holds this struct and everything it points to */
	char	   *qualname;
	Datum		qualname_text;
	int			nkey;
	AttrNumber *key_attnums;
	int			nrow;
	AttrNumber *row_attnums;
	TupleDesc	row_desc;		/* the stored columns, for UPDATE's changed columns */
	struct AuditCol *key_cols;	/* how each becomes jsonb (audit_image.c) */
	struct AuditCol *row_cols;
	Datum	   *row_names;		/* the stored columns' names as text */
	char	  **row_elems;		/* ... as array_out() writes them in changed_columns */
	/* Personal data (docs/privacy.md): the personal columns' names, none when 0. */
	int			npersonal;
	char	  **personal;
	AttrNumber	subject_attnum;	/* the subject column; invalid: the primary key */
	AttrNumber	tenant_attnum;	/* the tenant_id column; invalid: the entry's tenant */
} AuditRelInfo;

/*
 * The description of the audited table rel for trigger, pinned: the caller must call
 * audit_rel_release() when done with it, error or not.
 */
extern AuditRelInfo *audit_rel_info(Relation rel, Trigger *trigger);
extern void audit_rel_release(AuditRelInfo *info);

/* A relcache invalidation of relid (InvalidOid: of every relation). */
extern void audit_rel_invalidate(Oid relid);

/* The schema-qualified, quoted name of a relation. */
extern char *audit_rel_qualname(Relation rel);

/* The name an entry gives the relation: a Citus shard's distributed table, else itself. */
extern char *audit_rel_entry_name(Relation rel);

#endif							/* CRM_AUDIT_REL_H */
