/*
 * audit_subject_keys.h
 *		Data keys of data subjects, for the personal values of the audit log
 *		(audit_subject_keys.c, docs/privacy.md).
 */
#ifndef CRM_AUDIT_SUBJECT_KEYS_H
#define CRM_AUDIT_SUBJECT_KEYS_H

#include "postgres.h"

#include "crypto.h"

/* The longest subject id accepted, in bytes. */
#define AUDIT_SUBJECT_MAX 1024

/*
 * A subject id (not NULL, not empty, at most AUDIT_SUBJECT_MAX bytes) and a tenant id
 * (NULL: none; at most as long) that a key can be made and found for; 22023 otherwise.
 */
extern void audit_check_subject(const char *subject, const char *tenant);

/*
 * The data key of (tenant, subject) into key[CRM_GCM_KEY_LEN], created if there is none;
 * returns its key id.  tenant may be NULL (no tenant).
 */
extern int64 audit_subject_key(const char *tenant, const char *subject, uint8 *key);

/* The data key with this key id into key; false when it does not exist (erased). */
extern bool audit_subject_key_by_id(int64 key_id, uint8 *key);

/* Forget every data key cached by this transaction. */
extern void audit_subject_keys_reset(void);

/*
 * Run SQL on the key table as its owner (callers have no privilege on it), as a
 * security-restricted operation; the end restores the caller's user.
 */
typedef struct AuditKeysAsOwner
{
	Oid			save_userid;
	int			save_sec;
} AuditKeysAsOwner;

extern void audit_keys_as_owner_begin(AuditKeysAsOwner *s);
extern void audit_keys_as_owner_end(AuditKeysAsOwner *s);

#endif							/* CRM_AUDIT_SUBJECT_KEYS_H */
