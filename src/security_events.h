/*
 * security_events.h
 *		Refused tokens and API keys: counted in shared memory (view auth_failures) and
 *		logged as one structured line each (security_events.c).
 */
#ifndef CRM_SECURITY_EVENTS_H
#define CRM_SECURITY_EVENTS_H

/* The shared counters when the library is being preloaded; arms the reporting. */
extern void authfail_init(void);

/*
 * One refusal: `kind` "token" or "api_key", `reason` a short word, `key_id` the key's id or
 * display prefix (NULL: none known).  Never given a secret.  Does nothing until
 * authfail_init() has run (code linked outside the server, as the fuzz targets).
 */
extern void authfail_report(const char *kind, const char *reason, const char *key_id);

/* A refused token, its reason taken from the refusal's detail (a fixed set of words). */
extern void authfail_report_token(const char *detail);

#endif							/* CRM_SECURITY_EVENTS_H */
