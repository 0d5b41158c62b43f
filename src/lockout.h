/*
 * lockout.h
 *		Failed attempts and lockouts shared by all sessions (lockout.c).
 */
#ifndef CRM_LOCKOUT_H
#define CRM_LOCKOUT_H

/* Settings, and the shared table when the library is being preloaded. */
extern void lockout_init(void);

#endif							/* CRM_LOCKOUT_H */
