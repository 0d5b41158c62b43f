/*
 * audit_canonical.h
 *		The canonical forms of audit entries and blocks (docs/audit.md, "Canonical forms")
 *		and their SHA-256 hashes.
 */
#ifndef CRM_AUDIT_CANONICAL_H
#define CRM_AUDIT_CANONICAL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "crypto.h"

#define AUDIT_HASH_LEN CRM_SHA256_LEN

/* The fields of a block that its hash covers (a row of audit_blocks but its hash). */
typedef struct AuditBlock
{
	int64		block_id;
	uint8		prev_hash[AUDIT_HASH_LEN];
	int64		txid_lo;
	int64		txid_hi;
	int64		entry_count;
	uint8		entries_hash[AUDIT_HASH_LEN];
	TimestampTz sealed_at;
} AuditBlock;

/* The canonical text of one audit_log column value (AL_ index col), appended to buf. */
extern void audit_put_value(StringInfo buf, int col, Datum value, bool isnull);

/*
 * The hash of an entry's canonical form (every column but entry_hash).  texts and
 * textlens, when not NULL, hold already rendered canonical texts of some columns (NULL
 * where not); actor_canon, when not NULL, holds the canonical fields actor_type ..
 * client_addr as audit_put_value() writes them.
 */
extern void audit_entry_hash(const Datum *values, const bool *nulls, const char *const *texts,
							 const int *textlens, const char *actor_canon, int actor_canon_len,
							 uint8 *out);

/* The hash of a block's canonical form. */
extern void audit_block_hash(const AuditBlock *b, uint8 *out);

/* A bytea of len bytes. */
extern bytea *audit_bytea(const uint8 *data, int len);

#endif							/* CRM_AUDIT_CANONICAL_H */
