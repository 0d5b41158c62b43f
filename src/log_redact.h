/*
 * log_redact.h
 *		Credentials out of the server log (log_redact.c).
 */
#ifndef CRM_LOG_REDACT_H
#define CRM_LOG_REDACT_H

/*
 * A copy of s (palloc'd) with every compact JWT/JWS/JWE, well-formed API key and value
 * assigned to crm_security.token replaced by a placeholder; NULL when s holds none.
 */
extern char *log_redact(const char *s);

/* emit_log_hook: redact every line sent to the server log.  From _PG_init. */
extern void log_redact_init(void);

#endif							/* CRM_LOG_REDACT_H */
