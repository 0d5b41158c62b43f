/*
 * audit_write.h
 *		Writing formed audit entries into audit_log, a statement's entries together
 *		(audit_write.c).
 */
#ifndef CRM_AUDIT_WRITE_H
#define CRM_AUDIT_WRITE_H

#include "postgres.h"

#include "utils/relcache.h"

/*
 * Write one entry.  rel is audit_log, opened by the caller; values and nulls are its
 * columns (audit_layout.h).  With batch, the entry may wait for the end of its statement;
 * without, it is written before this returns, after the entries waiting before it.
 */
extern void audit_write_entry(Relation rel, Datum *values, bool *nulls, bool batch);

/*
 * Add an entry to the batch of the current subtransaction if it can join it, without
 * opening audit_log; false when it must go through audit_write_entry() instead.
 */
extern bool audit_write_append(Oid relid, Datum *values, bool *nulls);

/* A relcache invalidation of relid (InvalidOid: of every relation). */
extern void audit_write_invalidate(Oid relid);

/*
 * ExecutorStart_hook, ExecutorFinish_hook, ProcessUtility_hook and the transaction and
 * subtransaction callbacks that write waiting entries before anything can look for them,
 * and discard them with their subtransaction.
 */
extern void audit_write_install_hooks(void);

#endif							/* CRM_AUDIT_WRITE_H */
