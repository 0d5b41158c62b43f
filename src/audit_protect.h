/*
 * audit_protect.h
 *		Append-only protection of the audit tables (audit_protect.c).
 */
#ifndef CRM_AUDIT_PROTECT_H
#define CRM_AUDIT_PROTECT_H

#include "postgres.h"

/*
 * Delete the entries of audit_log whose txid is below txid_hi, the one deletion the
 * protection lets through; returns how many.  The caller is connected to SPI.
 */
extern uint64 audit_protect_purge_entries(int64 txid_hi);

#endif							/* CRM_AUDIT_PROTECT_H */
