/*
 * keys_pem.h
 *		PEM blocks (keys_pem.c).
 */
#ifndef CRM_KEYS_PEM_H
#define CRM_KEYS_PEM_H

#include "keys.h"

/*
 * Decode the PEM block in `data` (NUL-terminated, `len` bytes) into `key`; returns NULL, or
 * why it cannot be used (a sentence for a detail).  Never raises for bad input.
 */
extern const char *keys_pem_parse(CrmKey *key, const char *data, int len);

#endif							/* CRM_KEYS_PEM_H */
