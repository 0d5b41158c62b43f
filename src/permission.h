/*
 * permission.h
 *		Permission strings: grammar, matching and prepared sets (permission.c).
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

/*
 * A granted list prepared for many checks (one hash probe plus the wildcard patterns).
 * permset_build takes `n` strings (the malformed ones are left out: they never match);
 * the strings must outlive the set, which is allocated in the current memory context.
 */
typedef struct PermSet PermSet;

extern PermSet *permset_build(const char **strs, const int *lens, int n);

/* Whether the set holds the well-formed `r`. */
extern bool permset_match(const PermSet *ps, const char *r, int rlen);

#endif							/* CRM_PERMISSION_H */
