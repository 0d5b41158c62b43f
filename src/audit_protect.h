/*
 * audit_protect.h
 *		Append-only protection of the audit tables (audit_protect.c).
 */
#ifndef CRM_AUDIT_PROTECT_H
#define CRM_AUDIT_PROTECT_H

#include "postgres.h"

#include "commands/trigger.h"
#include "utils/relcache.h"

/*
 * Delete the entries of audit_log whose txid is below txid_hi, the one deletion the
 * protection lets through; returns how many.  The caller is connected to SPI.
 */
extern uint64 audit_protect_purge_entries(int64 txid_hi);

/*
 * Whether a trigger of audit_log is the extension's own insert guard (audit_protect() of
 * the same schema, BEFORE, per row): the writer's fast path may go around it, since every
 * entry the writer makes passes it.
 */
extern bool audit_protect_is_guard(Relation rel, const Trigger *trigger);

#endif							/* CRM_AUDIT_PROTECT_H */
