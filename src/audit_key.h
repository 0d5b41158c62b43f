/*
 * audit_key.h
 *		The entry key under which entry hashes are computed (audit_key.c).
 */
#ifndef CRM_AUDIT_KEY_H
#define CRM_AUDIT_KEY_H

#include "postgres.h"

#define AUDIT_KEY_LEN 32

/* HMAC-SHA256 of data under the entry key into out[32]; loads or creates the key. */
extern void audit_key_mac(const void *data, size_t len, uint8 *out);

#endif							/* CRM_AUDIT_KEY_H */
