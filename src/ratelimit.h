/*
 * ratelimit.h
 *		rate_limit(): GCRA over a shared table (ratelimit.c).
 */
#ifndef CRM_RATELIMIT_H
#define CRM_RATELIMIT_H

/* Settings, and the shared table when the library is being preloaded. */
extern void ratelimit_init(void);

#endif							/* CRM_RATELIMIT_H */
