/*
 * citus_shard.c
 *		The distributed table of a Citus shard, for the audit entries written on a worker.
 *
 * On a worker the audit trigger of a distributed table fires in the shard
 * (public.deals_102008).  Its entries name the distributed table instead (public.deals), as
 * on a single node, so that the whole cluster's audit reads the same.  Citus's metadata,
 * synced to every worker (pg_dist_shard: shard id -> logicalrelid, pg_dist_placement: the
 * node group of each placement), says which: a relation is a shard when its name ends in
 * _<shard id>, that shard has a placement on this node's group, and Citus's shard_name() of
 * that shard is the relation's own name in the distributed table's schema (a table created
 * by hand with a shard's name on a node that holds no placement of it stays itself).
 * Without Citus, or without its metadata on this node, a relation is itself.
 *
 * The answer, shard or not, is kept per backend by relation OID and dropped at the
 * relation's relcache invalidation (a shard is created and dropped, never renamed into
 * another shard).  No link to Citus: its catalog is read by SQL.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "citus_context.h"
#include "relcache_callbacks.h"

typedef struct CitusShardEntry
{
	Oid			relid;			/* hash key */
	char	   *table;			/* the distributed table's qualified name, or NULL */
} CitusShardEntry;

static HTAB *citus_shard_cache = NULL;

static void
citus_shard_forget(CitusShardEntry *ent)
{
	if (ent->table != NULL)
		pfree(ent->table);
	(void) hash_search(citus_shard_cache, &ent->relid, HASH_REMOVE, NULL);
}

static void
citus_shard_relcache_callback(Datum arg, Oid relid)
{
	CitusShardEntry *ent;

	if (citus_shard_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		ent = hash_search(citus_shard_cache, &relid, HASH_FIND, NULL);
		if (ent != NULL)
			citus_shard_forget(ent);
	}
	else
	{
		HASH_SEQ_STATUS status;

		hash_seq_init(&status, citus_shard_cache);
		while ((ent = hash_seq_search(&status)) != NULL)
			citus_shard_forget(ent);
	}
}

/* The shard id at the end of a relation's name (_<digits>), or 0. */
static int64
citus_shard_id_of(const char *relname)
{
	const char *us = strrchr(relname, '_');
	const char *p;
	int64		id = 0;

	if (us == NULL || us[1] == '\0' || strlen(us + 1) > 18)
		return 0;
	for (p = us + 1; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return 0;
		id = id * 10 + (*p - '0');
	}
	return id;
}

/* Look it up in Citus's metadata on this node: a palloc'd qualified name, or NULL. */
static char *
citus_shard_lookup(Relation rel, int64 shardid)
{
	const char *relname = RelationGetRelationName(rel);
	Oid			types[3] = {INT8OID, OIDOID, TEXTOID};
	Datum		values[3];
	char	   *res = NULL;
	int			nest;

	values[0] = Int64GetDatum(shardid);
	values[1] = ObjectIdGetDatum(RelationGetNamespace(rel));
	values[2] = CStringGetTextDatum(relname);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * shard_name() is schema-qualified outside public; compared with both spellings.  The
	 * distributed table's name is formatted here, as format_type does for regclass.
	 */
	if (SPI_execute_with_args(
							  "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) "
							  "  FROM pg_catalog.pg_dist_shard s "
							  "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid "
							  "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
							  " WHERE s.shardid OPERATOR(pg_catalog.=) $1 "
							  "   AND c.relnamespace OPERATOR(pg_catalog.=) $2 "
							  "   AND pg_catalog.shard_name(s.logicalrelid, s.shardid) OPERATOR(pg_catalog.=) ANY "
							  "       (ARRAY[pg_catalog.quote_ident($3), pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident($3)]) "
							  "   AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p "
							  "                WHERE p.shardid OPERATOR(pg_catalog.=) s.shardid "
							  "                  AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g))",
							  3, types, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			res = MemoryContextStrdup(TopMemoryContext, v);
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return res;
}

const char *
citus_shard_table_name(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	CitusShardEntry *ent;
	bool		found;
	int64		shardid;
	char	   *table = NULL;

	if (citus_shard_cache != NULL)
	{
		ent = hash_search(citus_shard_cache, &relid, HASH_FIND, NULL);
		if (ent != NULL)
			return ent->table;
	}
	shardid = citus_shard_id_of(RelationGetRelationName(rel));
	if (shardid > 0 && citus_present())
		table = citus_shard_lookup(rel, shardid);

	if (citus_shard_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CitusShardEntry);
		citus_shard_cache = hash_create("crm_security Citus shards", 64, &ctl,
										HASH_ELEM | HASH_BLOBS);
		crm_register_relcache_callback(citus_shard_relcache_callback, (Datum) 0);
	}
	ent = hash_search(citus_shard_cache, &relid, HASH_ENTER, &found);
	if (found && ent->table != NULL)
		pfree(ent->table);
	ent->table = table;
	return ent->table;
}
