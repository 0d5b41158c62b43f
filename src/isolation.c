/*
 * isolation.c
 *		The tenant of the claim context, typed for comparison with a tenant column.
 *
 * Isolation policies compare the tenant column with one of these, so that the value is an
 * index key.  A tenant claim that is not a valid value of the type gives NULL, and so no
 * rows, rather than an error: the check fails closed and cannot be turned into an error
 * oracle.  The accepted forms are deliberately narrow (canonical uuid, optionally without
 * hyphens; decimal integers), so a value they accept is always accepted by the type's own
 * input function.  The tenant itself is the claim context's (ctx_tenant_text()), the
 * same value as tenant_id(), permissions() and the audit log use.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "context.h"

static int
iso_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Canonical 8-4-4-4-12 form or 32 hex digits; anything else is not a tenant. */
static bool
iso_parse_uuid(const char *s, pg_uuid_t *out)
{
	size_t		len = strlen(s);
	int			n = 0;
	size_t		i;

	if (len != 36 && len != 32)
		return false;
	for (i = 0; i < len; i++)
	{
		int			hi,
					lo;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (s[i] != '-')
				return false;
			continue;
		}
		if (i + 1 >= len)
			return false;
		hi = iso_hex(s[i]);
		lo = iso_hex(s[i + 1]);
		if (hi < 0 || lo < 0 || n >= UUID_LEN)
			return false;
		out->data[n++] = (unsigned char) (hi << 4 | lo);
		i++;
	}
	return n == UUID_LEN;
}

/* Optional '-', 1 to 19 decimal digits, within [min, max]. */
static bool
iso_parse_int(const char *s, int64 min, int64 max, int64 *out)
{
	bool		neg = false;
	uint64		v = 0;
	int			digits = 0;

	if (*s == '-')
	{
		neg = true;
		s++;
	}
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9' || ++digits > 19)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (digits == 0)
		return false;
	if (neg)
	{
		uint64		limit = (uint64) (-(min + 1)) + 1;

		if (v > limit)
			return false;
		*out = (v == (uint64) PG_INT64_MAX + 1) ? PG_INT64_MIN : -(int64) v;
	}
	else
	{
		if (v > (uint64) max)
			return false;
		*out = (int64) v;
	}
	return true;
}

/* SQL function: tenant_id_uuid() returns uuid */
PG_FUNCTION_INFO_V1(crm_tenant_id_uuid);
Datum
crm_tenant_id_uuid(PG_FUNCTION_ARGS)
{
	char	   *t = ctx_tenant_text();
	pg_uuid_t  *u;

	if (t == NULL)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	if (!iso_parse_uuid(t, u))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(u);
}

/* SQL function: tenant_id_bigint() returns bigint */
PG_FUNCTION_INFO_V1(crm_tenant_id_bigint);
Datum
crm_tenant_id_bigint(PG_FUNCTION_ARGS)
{
	char	   *t = ctx_tenant_text();
	int64		v;

	if (t == NULL || !iso_parse_int(t, PG_INT64_MIN, PG_INT64_MAX, &v))
		PG_RETURN_NULL();
	PG_RETURN_INT64(v);
}

/* SQL function: tenant_id_int() returns integer */
PG_FUNCTION_INFO_V1(crm_tenant_id_int);
Datum
crm_tenant_id_int(PG_FUNCTION_ARGS)
{
	char	   *t = ctx_tenant_text();
	int64		v;

	if (t == NULL || !iso_parse_int(t, PG_INT32_MIN, PG_INT32_MAX, &v))
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) v);
}

/* SQL function: tenant_id_text() returns text */
PG_FUNCTION_INFO_V1(crm_tenant_id_text);
Datum
crm_tenant_id_text(PG_FUNCTION_ARGS)
{
	char	   *t = ctx_tenant_text();

	/* An empty tenant is no tenant: it must not match rows whose tenant was left empty. */
	if (t == NULL || t[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(t));
}
