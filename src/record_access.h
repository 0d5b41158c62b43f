/*
 * record_access.h
 *		Record-level access inside a tenant (record_access.c, record_access_admin.c).
 *		The SQL functions are the module's interface; nothing else is shared.
 */
#ifndef CRM_RECORD_ACCESS_H
#define CRM_RECORD_ACCESS_H

#endif							/* CRM_RECORD_ACCESS_H */
