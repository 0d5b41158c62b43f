/*
 * permission.h
 *		Permission strings and the effective permissions of the claim context.
 */
#ifndef CRM_PERMISSION_H
#define CRM_PERMISSION_H

/* Longest well-formed permission, in bytes. */
#define PERM_MAX_LENGTH 1024

/*
 * Number of segments of a well-formed permission, 0 when it is malformed (empty, empty
 * segment, a byte outside printable ASCII, whitespace, a '*' inside a longer segment,
 * longer than PERM_MAX_LENGTH).
 */
extern int	perm_segments(const char *s, int len);

/* Whether granted `g` satisfies the well-formed required `r` (see permission.c). */
extern bool perm_match(const char *g, int glen, const char *r, int rlen);

/* Whether the claim context holds `required` (a malformed one is never held). */
extern bool perm_context_can(const char *required, int len);

/* Module initialisation (relcache and subtransaction callbacks), from _PG_init. */
extern void permission_init(void);

#endif							/* CRM_PERMISSION_H */
