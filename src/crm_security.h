/*
 * crm_security.h
 *		Declarations shared by every module of crm_security.
 */
#ifndef CRM_SECURITY_H
#define CRM_SECURITY_H

#include "postgres.h"

#ifndef CRM_SECURITY_VERSION
#define CRM_SECURITY_VERSION "unknown"
#endif

/* Settings (crm_security.c). */
extern int	crm_max_token_length;

/* Module initialisers, called once from _PG_init. */
extern void crypto_init(void);
extern void ctx_init(void);
extern void permission_init(void);
extern void audit_init(void);

/*
 * Every refused token, key or signature is reported with this SQLSTATE (class 28), as
 * API.md requires.
 */
#define CRM_ERRCODE_INVALID_AUTH ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION

#endif							/* CRM_SECURITY_H */
