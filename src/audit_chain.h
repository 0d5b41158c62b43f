/*
 * audit_chain.h
 *		The hash chain of the audit log: sealing and retention (audit_chain.c), what its
 *		verification (audit_verify.c) shares with them.
 */
#ifndef CRM_AUDIT_CHAIN_H
#define CRM_AUDIT_CHAIN_H

#include "postgres.h"

/* Rows fetched at a time by the cursors over audit_log. */
#define AUDIT_FETCH 1000

/* The last block whose entries were purged, 0 when none.  Runs under SPI. */
extern int64 audit_purged_through(bool read_only);

#endif							/* CRM_AUDIT_CHAIN_H */
