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

/*
 * Every refused token, key or signature is reported with this SQLSTATE (class 28), as
 * API.md requires.
 */
#define CRM_ERRCODE_INVALID_AUTH ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION

/* The owner of a relation, and of the extension's table crm_security.<relname> (rel_owner.c). */
extern Oid	crm_rel_owner(Oid relid);
extern Oid	crm_table_owner(const char *relname);

#endif							/* CRM_SECURITY_H */
