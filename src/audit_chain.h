/*
 * audit_chain.h
 *		The hash chain of the audit log: sealing (audit_chain.c), retention and its purge
 *		records (audit_purge.c), what its verification (audit_verify.c) shares with them.
 */
#ifndef CRM_AUDIT_CHAIN_H
#define CRM_AUDIT_CHAIN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "audit_canonical.h"

/* Rows fetched at a time by the cursors over audit_log. */
#define AUDIT_FETCH 1000

/* Advisory lock key shared by seal_audit_log() and purge_audit_log(). */
#define AUDIT_LOCK_KEY INT64CONST(0x63726d5f61756474)	/* "crm_audt" */

/* Take the sealers' and purgers' transaction-level lock. */
extern void audit_lock(void);

/*
 * A purge record: the audit.purge entry purge_audit_log() writes, whose keyed hash
 * verified.  It says that the entries of every block up to through were deleted; this
 * purge deleted those of blocks first .. through, entries entries, all sealed before
 * cutoff; last_hash is the hash of block through.
 */
typedef struct AuditPurgeRecord
{
	int64		entry_id;
	int64		txid;
	int64		first;
	int64		through;
	TimestampTz cutoff;
	int64		entries;
	uint8		last_hash[AUDIT_HASH_LEN];
} AuditPurgeRecord;

/*
 * The purge records of audit_log whose keyed hash and content verify (a list of
 * AuditPurgeRecord *), in the order of the log.  Runs under SPI.
 */
extern List *audit_purge_records(bool read_only);

/* The largest "through" of a list of purge records, 0 when empty. */
extern int64 audit_purged_through(List *records);

#endif							/* CRM_AUDIT_CHAIN_H */
