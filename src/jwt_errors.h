/*
 * jwt_errors.h
 *		Why a token was refused: stable reasons, their SQLSTATEs, and the refusal itself
 *		(jwt_errors.c).  Table of reasons and codes: docs/errors.md.
 */
#ifndef CRM_JWT_ERRORS_H
#define CRM_JWT_ERRORS_H

typedef enum CrmAuthReason
{
	CRM_AUTH_MALFORMED = 0,		/* not a compact token, bad JSON or base64url, too long */
	CRM_AUTH_ALGORITHM,			/* alg none, unsupported, not allowed, not the key's */
	CRM_AUTH_UNKNOWN_KEY,		/* no key of the kid, or for the algorithm */
	CRM_AUTH_DISABLED_KEY,		/* the key is disabled */
	CRM_AUTH_KEY_NOT_VALID,		/* the key is outside its validity window */
	CRM_AUTH_BAD_SIGNATURE,
	CRM_AUTH_EXPIRED,
	CRM_AUTH_NOT_YET_VALID,
	CRM_AUTH_MISSING_EXP,
	CRM_AUTH_AUDIENCE,
	CRM_AUTH_ISSUER,
	CRM_AUTH_INVALID_CLAIM,		/* a registered claim of the wrong type */
	CRM_AUTH_CONTEXT,			/* a token of the extension's key naming no or an unknown actor */
	CRM_AUTH_SERVICE,			/* a service token the service registry refuses */
	CRM_AUTH_INVALID_CONTEXT,	/* the settings that carry a context hold no usable one */
	CRM_AUTH_NREASONS
} CrmAuthReason;

/* The reason's stable name ("expired", ...). */
extern const char *crm_auth_reason_name(CrmAuthReason reason);

/*
 * The SQLSTATE of a refusal: 28000, or with crm_security.error_codes = 'specific' the
 * reason's own code of class 28 (28P10 ...).
 */
extern int	crm_auth_errcode(CrmAuthReason reason);

/* The same SQLSTATE as a value (for GUC_check_errcode). */
extern int	crm_auth_sqlstate(CrmAuthReason reason);

/*
 * The detail of a refusal: as it is, or in 'specific' mode prefixed by the reason's name
 * and a colon ("expired: The token expired at ..."); palloc'd.  crm_auth_errdetail() is
 * errdetail() of it.
 */
extern char *crm_auth_detail(CrmAuthReason reason, const char *detail);
extern int	crm_auth_errdetail(CrmAuthReason reason, const char *detail);

/*
 * Count the refusal in auth_failures (kind "token") and raise it: "invalid <what>", the
 * reason's SQLSTATE and detail, the statement kept out of the log.  `hint` may be NULL.
 */
extern void crm_auth_refuse(CrmAuthReason reason, const char *what, const char *detail,
							const char *hint) pg_attribute_noreturn();

/* The hint for a token that starts with "Bearer ", or NULL. */
extern const char *crm_auth_bearer_hint(const char *token, int len);

/* The setting crm_security.error_codes, from _PG_init. */
extern void crm_auth_errors_init(void);

#endif							/* CRM_JWT_ERRORS_H */
