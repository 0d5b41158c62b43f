/*
 * apikey_verify.c
 *		Verification of API keys and the key material of their lifecycle:
 *		verify_api_key(), _api_key_new() (what create_api_key() and rotate_api_key() in
 *		sql/70_api_keys.sql store).
 *
 * A key is looked up by its hash in api_key_secrets (one index probe, joined to its
 * api_keys row by primary key), never by scanning or comparing keys, so its time says
 * nothing about the key.  Every row is read afresh: a revocation or a change of a key's
 * networks is seen by the next verification in every session.  Nothing here puts the key,
 * its hash or the pepper in a message; every error raised below keeps the statement (which
 * carries the key) out of the server log.
 *
 * apikey_verify() is the one verification: verify_api_key() returns its row, and
 * set_api_key_context() (apikey_context.c) carries the same row as the claims of a token
 * signed by the extension's own key (docs/api-keys.md, "The API-key context").
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "apikey_format.h"
#include "apikey_hash.h"
#include "apikey_usage.h"
#include "apikey_verify.h"
#include "crm_security.h"
#include "crypto.h"
#include "keys.h"
#include "security_events.h"

/* The id (or display prefix) of the key being verified, for auth_failures; NULL: none. */
static const char *apikey_refusing = NULL;

/* Why a key was refused, in the detail of the 28000 error. */
static void
apikey_refuse(const char *reason, const char *detail)
{
	authfail_report("api_key", reason, apikey_refusing);
	ereport(ERROR,
			(errcode(CRM_ERRCODE_INVALID_AUTH),
			 errmsg("invalid API key"),
			 errdetail_internal("%s", detail),
			 errhidestmt(true)));
}

static const char *apikey_lookup_sql =
"SELECT k.id, k.tenant_id, k.scopes, k.name, k.revoked_at, k.expires_at, s.valid_until,"
"       k.allowed_services, k.allowed_ips, k.rate_limit_per_minute, k.rate_limit_per_day,"
"       s.hash_scheme"
"  FROM crm_security.api_key_secrets AS s"
"  JOIN crm_security.api_keys AS k ON k.id OPERATOR(pg_catalog.=) s.key_id"
" WHERE s.key_hash OPERATOR(pg_catalog.=) $1";

static SPIPlanPtr apikey_lookup_plan = NULL;

/* The row of the key whose hash under `scheme` is `hash`, stored under that scheme. */
static HeapTuple
apikey_lookup(const char *key, int len, ApiKeyHashScheme scheme, TupleDesc *desc)
{
	unsigned char hash[CRM_SHA256_LEN];
	bytea	   *arg;
	Datum		value;
	bool		isnull;
	char	   *stored;
	Oid			type = BYTEAOID;

	if (!apikey_hash(key, len, scheme, hash))
		return NULL;
	arg = palloc(VARHDRSZ + CRM_SHA256_LEN);
	SET_VARSIZE(arg, VARHDRSZ + CRM_SHA256_LEN);
	memcpy(VARDATA(arg), hash, CRM_SHA256_LEN);
	value = PointerGetDatum(arg);
	if (SPI_execute_plan(crm_keep_plan(&apikey_lookup_plan, apikey_lookup_sql, 1, &type),
						 &value, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up an API key");
	if (SPI_processed != 1)
		return NULL;
	*desc = SPI_tuptable->tupdesc;
	stored = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], *desc, 12, &isnull));
	/* A hash found under another scheme than it was stored with is no match. */
	if (strcmp(stored, apikey_scheme_name(scheme == APIKEY_SCHEME_HMAC_PREVIOUS ?
											  APIKEY_SCHEME_HMAC : scheme)) != 0)
		return NULL;
	return SPI_tuptable->vals[0];
}

/* `ip` as an IPv4 address when it is IPv4-mapped IPv6, or IPv4 as IPv4-mapped; else NULL. */
static inet *
apikey_other_form(const inet *ip)
{
	inet	   *alt = palloc0(sizeof(inet));
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ip_family(ip) == PGSQL_AF_INET6 && memcmp(ip_addr(ip), mapped, 12) == 0)
	{
		ip_family(alt) = PGSQL_AF_INET;
		ip_bits(alt) = 32;
		memcpy(ip_addr(alt), ip_addr(ip) + 12, 4);
	}
	else if (ip_family(ip) == PGSQL_AF_INET)
	{
		ip_family(alt) = PGSQL_AF_INET6;
		ip_bits(alt) = 128;
		memcpy(ip_addr(alt), mapped, 12);
		memcpy(ip_addr(alt) + 12, ip_addr(ip), 4);
	}
	else
		return NULL;
	SET_INET_VARSIZE(alt);
	return alt;
}

/* Whether `ip` (a host address) lies in one of the networks of `nets` (cidr[]). */
static bool
apikey_network_allows(ArrayType *nets, inet *ip)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	inet	   *alt = apikey_other_form(ip);

	deconstruct_array(nets, CIDROID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (DatumGetBool(DirectFunctionCall2(network_subeq, PointerGetDatum(ip), elems[i])))
			return true;
		if (alt && DatumGetBool(DirectFunctionCall2(network_subeq, PointerGetDatum(alt), elems[i])))
			return true;
	}
	return false;
}

/* Whether `service` is one of `services` (text[]). */
static bool
apikey_service_allows(ArrayType *services, text *service)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	int			len = VARSIZE_ANY_EXHDR(service);

	deconstruct_array(services, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *s;

		if (nulls[i])
			continue;
		s = DatumGetTextPP(elems[i]);
		if (VARSIZE_ANY_EXHDR(s) == len && memcmp(VARDATA_ANY(s), VARDATA_ANY(service), len) == 0)
			return true;
	}
	return false;
}

/*
 * The effective scopes: the stored ones, then what they imply (as the seeds define): a
 * lone "admin" implies everything ("*"), and a scope whose last segment is "write" implies
 * the same scope ending in "read".
 */
static Datum
apikey_effective_scopes(ArrayType *scopes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				m;
	Datum	   *out;

	deconstruct_array(scopes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	out = palloc(sizeof(Datum) * (2 * n + 1));
	m = 0;
	for (i = 0; i < n; i++)
		if (!nulls[i])
			out[m++] = elems[i];
	for (i = 0; i < n; i++)
	{
		char	   *s;
		int			len;
		char	   *implied = NULL;
		int			j;

		if (nulls[i])
			continue;
		s = TextDatumGetCString(elems[i]);
		len = strlen(s);
		if (strcmp(s, "admin") == 0)
			implied = "*";
		else if (len >= 5 && strcmp(s + len - 5, "write") == 0 &&
				 (len == 5 || s[len - 6] == ':'))
		{
			implied = psprintf("%.*sread", len - 5, s);
		}
		if (implied == NULL)
			continue;
		for (j = 0; j < m; j++)
			if (strcmp(TextDatumGetCString(out[j]), implied) == 0)
				break;
		if (j == m)
			out[m++] = CStringGetTextDatum(implied);
	}
	return PointerGetDatum(construct_array(out, m, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Verify `key` (NULL: none given) for `service` and `client_ip` (either may be NULL), count
 * the use, and fill *out in the current memory context; raise 28000 (or 53400 over a
 * limit, 22023 for a client address with a netmask) otherwise.  Runs with the rights of its
 * caller, who has switched to the tables' owner (crm_verify_api_key).
 */
void
apikey_verify(text *keyt, text *service, inet *client_ip, ApiKeyVerified *out)
{
	const char *key;
	int			len;
	HeapTuple	row;
	TupleDesc	desc = NULL;
	bool		isnull;
	Datum		v;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int32		per_minute = 0,
				per_day = 0;
	MemoryContext outer = CurrentMemoryContext;

	apikey_refusing = NULL;
	if (keyt == NULL)
		apikey_refuse("malformed", "No API key was given.");
	if (toast_raw_datum_size(PointerGetDatum(keyt)) > VARHDRSZ + APIKEY_MAX_LEN)
		apikey_refuse("malformed", "The API key is not well-formed: it is longer than any key.");
	keyt = pg_detoast_datum_packed(keyt);
	key = VARDATA_ANY(keyt);
	len = VARSIZE_ANY_EXHDR(keyt);
	if (!apikey_format_ok(key, len))
		apikey_refuse("malformed", "The API key is not well-formed: its prefix, length or checksum is wrong.");
	apikey_refusing = apikey_display_prefix(key, len);
	if (client_ip && ip_bits(client_ip) != (ip_family(client_ip) == PGSQL_AF_INET ? 32 : 128))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("client address must be a host address"),
				 errdetail("The address has a netmask of %d bits.", ip_bits(client_ip)),
				 errhidestmt(true)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* The current scheme first; the others only for a key not found under it. */
	row = apikey_lookup(key, len, apikey_current_scheme(), &desc);
	if (row == NULL && apikey_current_scheme() == APIKEY_SCHEME_HMAC)
		row = apikey_lookup(key, len, APIKEY_SCHEME_SHA256, &desc);
	if (row == NULL)
		row = apikey_lookup(key, len, APIKEY_SCHEME_HMAC_PREVIOUS, &desc);
	if (row == NULL)
		apikey_refuse("unknown", "The API key is unknown.");
	apikey_refusing = DatumGetCString(DirectFunctionCall1(uuid_out, SPI_getbinval(row, desc, 1, &isnull)));

	if (!heap_attisnull(row, 5, desc))
		apikey_refuse("revoked", "The API key was revoked.");
	out->valid_until = DT_NOEND;
	v = SPI_getbinval(row, desc, 6, &isnull);
	if (!isnull && DatumGetTimestampTz(v) <= now)
		apikey_refuse("expired", "The API key expired.");
	if (!isnull)
		out->valid_until = DatumGetTimestampTz(v);
	v = SPI_getbinval(row, desc, 7, &isnull);
	if (!isnull && DatumGetTimestampTz(v) <= now)
		apikey_refuse("expired", "The API key was replaced by a rotation and its grace period has ended.");
	if (!isnull && DatumGetTimestampTz(v) < out->valid_until)
		out->valid_until = DatumGetTimestampTz(v);
	v = SPI_getbinval(row, desc, 8, &isnull);
	if (!isnull && (service == NULL || !apikey_service_allows(DatumGetArrayTypeP(v), service)))
		apikey_refuse("service", "The API key may not be used for this service.");
	v = SPI_getbinval(row, desc, 9, &isnull);
	if (!isnull && (client_ip == NULL || !apikey_network_allows(DatumGetArrayTypeP(v), client_ip)))
		apikey_refuse("network", "The API key may not be used from this address.");
	v = SPI_getbinval(row, desc, 10, &isnull);
	if (!isnull)
		per_minute = DatumGetInt32(v);
	v = SPI_getbinval(row, desc, 11, &isnull);
	if (!isnull)
		per_day = DatumGetInt32(v);

	/* The result, in the caller's memory, before the row's memory goes with SPI. */
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		memcpy(&out->id, DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull)), sizeof(out->id));
		v = SPI_getbinval(row, desc, 2, &isnull);
		out->tenant_id = isnull ? NULL : DatumGetTextPCopy(v);
		out->scopes = DatumGetArrayTypeP(apikey_effective_scopes(
			DatumGetArrayTypeP(SPI_getbinval(row, desc, 3, &isnull))));
		out->name = DatumGetTextPCopy(SPI_getbinval(row, desc, 4, &isnull));
		MemoryContextSwitchTo(spi);
	}

	apikey_usage_count(&out->id, per_minute, per_day, client_ip);
	SPI_finish();
}

/*
 * The owner of the API key tables (the extension's owner), whose rights verification runs
 * with.  Looked up per call (three catalog cache probes): no cache to go stale when the
 * extension is dropped and created again.
 */
Oid
apikey_tables_owner(void)
{
	return crm_table_owner("api_keys");
}

/*
 * SQL function: verify_api_key(api_key text, service text DEFAULT NULL,
 *		client_ip inet DEFAULT NULL) returns table(id uuid, tenant_id text, scopes text[],
 *		name text)
 * Any role may verify a key it holds; the tables stay unreadable.  The lookup and the count
 * run as the tables' owner, switched to here rather than by SECURITY DEFINER: the function
 * manager's switch also sets the function's search_path on every call, which measured as
 * a third of the cost of a verification, and every statement run below is qualified
 * throughout (schemas and operators), so the caller's search_path changes nothing.  An
 * error restores the caller's identity with the (sub)transaction's abort.
 */
PG_FUNCTION_INFO_V1(crm_verify_api_key);
Datum
crm_verify_api_key(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ApiKeyVerified k;
	Datum		result[4];
	bool		result_nulls[4] = {false, false, false, false};

	Oid			save_userid;
	int			save_sec_context;

	keys_hide_statement_push(&hide);
	InitMaterializedSRF(fcinfo, 0);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(apikey_tables_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	apikey_verify(PG_ARGISNULL(0) ? NULL : (text *) PG_GETARG_POINTER(0),
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
				  PG_ARGISNULL(2) ? NULL : PG_GETARG_INET_P(2),
				  &k);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	result[0] = UUIDPGetDatum(&k.id);
	result_nulls[1] = k.tenant_id == NULL;
	result[1] = PointerGetDatum(k.tenant_id);
	result[2] = PointerGetDatum(k.scopes);
	result[3] = PointerGetDatum(k.name);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, result, result_nulls);
	keys_hide_statement_pop(&hide);
	PG_RETURN_NULL();
}

/*
 * SQL function: _api_key_new(prefix text, OUT api_key text, OUT key_hash bytea,
 *		OUT hash_scheme text, OUT display_prefix text) returns record
 * A new key and what is stored of it, for create_api_key() and rotate_api_key().
 */
PG_FUNCTION_INFO_V1(crm_api_key_new);
Datum
crm_api_key_new(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);
	int			plen = VARSIZE_ANY_EXHDR(prefix);
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	char	   *key;
	int			len;
	bytea	   *hash = palloc(VARHDRSZ + CRM_SHA256_LEN);
	ApiKeyHashScheme scheme = apikey_current_scheme();

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	apikey_prefix_check(VARDATA_ANY(prefix), plen);
	key = apikey_generate(VARDATA_ANY(prefix), plen);
	len = strlen(key);
	SET_VARSIZE(hash, VARHDRSZ + CRM_SHA256_LEN);
	(void) apikey_hash(key, len, scheme, (unsigned char *) VARDATA(hash));
	values[0] = CStringGetTextDatum(key);
	values[1] = PointerGetDatum(hash);
	values[2] = CStringGetTextDatum(apikey_scheme_name(scheme));
	values[3] = CStringGetTextDatum(apikey_display_prefix(key, len));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
