/*
 * ratelimit.h
 *		rate_limit(): GCRA over a shared table (ratelimit.c).
 */
#ifndef CRM_RATELIMIT_H
#define CRM_RATELIMIT_H

/* Settings, and the shared table when the library is being preloaded. */
extern void ratelimit_init(void);

/* Whether the shared table exists (the library was preloaded). */
extern bool ratelimit_shared(void);

/*
 * One GCRA decision of rate_limit() for a limit of the extension's own (an API key's),
 * with a burst of max_requests: true when allowed (counted at once); else *retry_ns is the
 * time until it would be.  `domain` keeps these keys apart from rate_limit()'s own.  Only
 * when ratelimit_shared().
 */
extern bool ratelimit_decide(const char *domain, const void *key, size_t len,
							 int32 max_requests, int64 per_ns, int64 *retry_ns);

/* Undo one allowed decision of ratelimit_decide() (a later limit refused the request). */
extern void ratelimit_refund(const char *domain, const void *key, size_t len,
							 int32 max_requests, int64 per_ns);

#endif							/* CRM_RATELIMIT_H */
