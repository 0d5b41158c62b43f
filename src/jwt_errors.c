/*
 * jwt_errors.c
 *		Why a token was refused, as a stable reason an application can branch on.
 *
 * Every refusal of a token has a reason (CrmAuthReason).  By default it is raised with
 * SQLSTATE 28000, as API.md's contract says; with crm_security.error_codes = 'specific'
 * (any role may set it: it changes only how a refusal is reported) each reason has its
 * own code in class 28 (28P10 ...; PostgreSQL's own 28P01 is not used) and the detail
 * starts with the reason's name.  The table is in docs/errors.md.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "crm_security.h"
#include "jwt_errors.h"
#include "security_events.h"

typedef struct CrmAuthReasonInfo
{
	const char *name;
	const char *sqlstate;		/* in 'specific' mode */
	const char *counter;		/* the reason auth_failures counts it under */
} CrmAuthReasonInfo;

static const CrmAuthReasonInfo crm_auth_reasons[CRM_AUTH_NREASONS] = {
	[CRM_AUTH_MALFORMED] = {"malformed", "28P10", "malformed"},
	[CRM_AUTH_ALGORITHM] = {"algorithm", "28P11", "algorithm"},
	[CRM_AUTH_UNKNOWN_KEY] = {"unknown_key", "28P12", "unknown_key"},
	[CRM_AUTH_DISABLED_KEY] = {"disabled_key", "28P13", "unknown_key"},
	[CRM_AUTH_KEY_NOT_VALID] = {"key_not_valid", "28P14", "unknown_key"},
	[CRM_AUTH_BAD_SIGNATURE] = {"bad_signature", "28P15", "bad_signature"},
	[CRM_AUTH_EXPIRED] = {"expired", "28P16", "expired"},
	[CRM_AUTH_NOT_YET_VALID] = {"not_yet_valid", "28P17", "not_yet_valid"},
	[CRM_AUTH_MISSING_EXP] = {"missing_exp", "28P18", "malformed"},
	[CRM_AUTH_AUDIENCE] = {"audience", "28P19", "audience"},
	[CRM_AUTH_ISSUER] = {"issuer", "28P1A", "issuer"},
	[CRM_AUTH_INVALID_CLAIM] = {"invalid_claim", "28P1B", "malformed"},
	[CRM_AUTH_CONTEXT] = {"context", "28P1C", "context"},
	[CRM_AUTH_SERVICE] = {"service", "28P1D", "context"},
	[CRM_AUTH_INVALID_CONTEXT] = {"invalid_context", "28P1E", "malformed"},
};

typedef enum
{
	CRM_ERRCODES_STANDARD,
	CRM_ERRCODES_SPECIFIC
} CrmErrorCodesMode;

static const struct config_enum_entry crm_error_codes_options[] = {
	{"standard", CRM_ERRCODES_STANDARD, false},
	{"specific", CRM_ERRCODES_SPECIFIC, false},
	{NULL, 0, false}
};

static int	crm_error_codes = CRM_ERRCODES_STANDARD;

void
crm_auth_errors_init(void)
{
	DefineCustomEnumVariable("crm_security.error_codes",
							 "How refused tokens are reported: standard (SQLSTATE 28000) or specific (one code of class 28 per reason).",
							 "Specific codes and the reason at the start of the detail are listed in docs/errors.md.",
							 &crm_error_codes, CRM_ERRCODES_STANDARD, crm_error_codes_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
}

const char *
crm_auth_reason_name(CrmAuthReason reason)
{
	if (reason < 0 || reason >= CRM_AUTH_NREASONS)
		reason = CRM_AUTH_MALFORMED;
	return crm_auth_reasons[reason].name;
}

int
crm_auth_sqlstate(CrmAuthReason reason)
{
	const char *s;

	if (crm_error_codes != CRM_ERRCODES_SPECIFIC)
		return CRM_ERRCODE_INVALID_AUTH;
	if (reason < 0 || reason >= CRM_AUTH_NREASONS)
		reason = CRM_AUTH_MALFORMED;
	s = crm_auth_reasons[reason].sqlstate;
	return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

int
crm_auth_errcode(CrmAuthReason reason)
{
	return errcode(crm_auth_sqlstate(reason));
}

char *
crm_auth_detail(CrmAuthReason reason, const char *detail)
{
	if (crm_error_codes != CRM_ERRCODES_SPECIFIC)
		return pstrdup(detail);
	return psprintf("%s: %s", crm_auth_reason_name(reason), detail);
}

int
crm_auth_errdetail(CrmAuthReason reason, const char *detail)
{
	return errdetail_internal("%s", crm_auth_detail(reason, detail));
}

const char *
crm_auth_bearer_hint(const char *token, int len)
{
	if (token != NULL && len >= 7 && pg_strncasecmp(token, "Bearer ", 7) == 0)
		return "The token starts with \"Bearer \": pass the token alone, without the scheme of the Authorization header.";
	return NULL;
}

void
crm_auth_refuse(CrmAuthReason reason, const char *what, const char *detail, const char *hint)
{
	if (reason < 0 || reason >= CRM_AUTH_NREASONS)
		reason = CRM_AUTH_MALFORMED;
	authfail_report("token", crm_auth_reasons[reason].counter, NULL);
	ereport(ERROR,
			(crm_auth_errcode(reason),
			 errmsg("invalid %s", what),
			 crm_auth_errdetail(reason, detail),
			 hint ? errhint("%s", hint) : 0,
			 errhidestmt(true)));
	pg_unreachable();
}
