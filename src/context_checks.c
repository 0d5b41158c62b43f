/*
 * context_checks.c
 *		Check hooks of the claim context's settings (context.c defines the settings):
 *		crm_security.clock_skew, the claim paths, crm_security.requested_tenant.
 */
#include "postgres.h"

#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "context_checks.h"

/*
 * crm_security.clock_skew: an interval ('30 seconds', '2 min', 'PT30S') or a number of
 * seconds ('30'), from 0 to one day.  Parsed without raising, as a check hook must.
 */
bool
ctx_clock_skew_check(char **newval, void **extra, GucSource source)
{
	char		workbuf[MAXDATELEN + 1];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf, dtype = 0, dterr;
	struct pg_itm_in itm;
	Interval	iv;
	double		secs;
	double	   *parsed;

	if (*newval == NULL || strlen(*newval) > MAXDATELEN)
	{
		GUC_check_errdetail("The clock skew is an interval or a number of seconds.");
		return false;
	}
	dterr = ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm);
	if (dterr == DTERR_BAD_FORMAT)
		dterr = DecodeISO8601Interval(*newval, &dtype, &itm);
	if (dterr != 0 || dtype != DTK_DELTA || itmin2interval(&itm, &iv) != 0)
	{
		GUC_check_errdetail("The clock skew is an interval or a number of seconds.");
		return false;
	}
	secs = (double) iv.day * SECS_PER_DAY + (double) iv.time / USECS_PER_SEC;
	if (iv.month != 0 || secs < 0 || secs > SECS_PER_DAY)
	{
		GUC_check_errdetail("The clock skew is between 0 and 1 day, without months.");
		return false;
	}
	parsed = malloc(sizeof(double));
	if (parsed == NULL)
		return false;
	*parsed = secs;
	*extra = parsed;
	return true;
}

/* A claim name or dotted path: not empty, no empty segment. */
bool
ctx_claim_path_check(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;
	size_t		len;

	if (p == NULL || p[0] == '\0')
	{
		GUC_check_errdetail("A claim name cannot be empty.");
		return false;
	}
	len = strlen(p);
	if (p[0] == '.' || p[len - 1] == '.' || strstr(p, "..") != NULL)
	{
		GUC_check_errdetail("A dotted claim path cannot have an empty segment.");
		return false;
	}
	return true;
}

/*
 * crm_security.requested_tenant: the tenant asked for with set_claim_context(token,
 * tenant_id), or the one it resolved, for other processes to resolve it again.  Only an
 * input: every process checks it against the memberships of the verified token's user, so
 * a value put there by hand gives what set_claim_context(token, value) would give.  Set
 * for a transaction only, like the token.
 */
bool
ctx_requested_tenant_check(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (source != PGC_S_SESSION)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("parameter \"%s\" can only be set within a transaction", CTX_TENANT_GUC);
		GUC_check_errhint("Use crm_security.set_claim_context(token, tenant_id).");
		return false;
	}
	if (strlen(*newval) > CTX_MAX_TENANT_LEN)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("tenant id is too long");
		GUC_check_errdetail("A tenant id is at most %d bytes.", CTX_MAX_TENANT_LEN);
		return false;
	}
	return true;
}
