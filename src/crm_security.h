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

/* The caller's user and settings while running as the owner of an extension table. */
typedef struct CrmAsOwner
{
	Oid			save_userid;
	int			save_sec;
	int			nest;
} CrmAsOwner;

extern void crm_as_owner_begin(CrmAsOwner *st, const char *relname);
extern void crm_as_owner_end(CrmAsOwner *st);

/*
 * The plan in *slot, prepared (SPI connected) and kept for the life of the backend on
 * first use.
 */
struct _SPI_plan;
extern struct _SPI_plan *crm_keep_plan(struct _SPI_plan **slot, const char *sql, int nargs,
									   Oid *types);

#endif							/* CRM_SECURITY_H */
