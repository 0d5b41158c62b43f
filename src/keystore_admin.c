/*
 * keystore_admin.c
 *		What may enter the key store (table crm_security.jwt_keys): the row check of the
 *		trigger jwt_keys_validate(), and the administration functions add_jwt_key() and
 *		import_jwks().  The store in memory and verification against it are keystore.c's.
 *
 * Every key they add, update or disable is logged and recorded as a security event by
 * crm_security._jwt_key_changed() (sql/30_context.sql), in the statement that changes the
 * row: kid, algorithm, issuer, never key material.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "crm_security.h"
#include "keys.h"
#include "keys_jwk.h"
#include "keystore.h"
#include "keystore_settings.h"
#include "keystore_internal.h"

/* The longest key ID, and the most keys one JWKS may bring (the check on the table and JWKS parsing). */
#define KS_MAX_KID_BYTES	256
#define KS_MAX_JWKS_KEYS	256

/* JWK members that only a private key has. */
static bool
ks_jwk_has_private_members(Jsonb *jwk)
{
	static const char *const names[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
	JsonbValue *kty = getKeyJsonValueFromContainer(&jwk->root, "kty", 3, NULL);
	int			i;

	if (kty != NULL && kty->type == jbvString && kty->val.string.len == 3 &&
		memcmp(kty->val.string.val, "oct", 3) == 0)
		return false;
	for (i = 0; i < lengthof(names); i++)
		if (getKeyJsonValueFromContainer(&jwk->root, names[i], strlen(names[i]), NULL) != NULL)
			return true;
	return false;
}

static void
ks_refuse_private(const char *kid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("the key store holds public keys only"),
			 errdetail("The key \"%s\" is a private key.", kid),
			 errhint("Give the public key (a public JWK, an SPKI PEM or a certificate)."),
			 errhidestmt(true)));
}

/*
 * Check a key for the store: parse it, refuse private asymmetric keys and keys that cannot
 * verify `algname` (or, without one, the algorithm its JWK names or implies).  Returns the
 * algorithm.  A private JWK is refused by its members, before anything is decoded.
 */
static const CrmAlg *
ks_check_key(const char *kid, const char *algname, text *key, Jsonb *jwk)
{
	MemoryContext tmp;
	CrmKeySet  *set;
	CrmKey	   *k;
	const CrmAlg *alg = NULL;

	if (algname != NULL)
	{
		alg = crm_alg_lookup(algname);
		if (alg == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 crm_name_quotable(algname) ?
					 errmsg("unrecognized algorithm \"%s\"", algname) :
					 errmsg("unrecognized algorithm"),
					 errhidestmt(true)));
	}
	if (jwk != NULL)
	{
		if (!JB_ROOT_IS_OBJECT(jwk) || JB_ROOT_IS_SCALAR(jwk))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid JWK"),
					 errdetail("A JWK is a JSON object.")));
		if (getKeyJsonValueFromContainer(&jwk->root, "keys", 4, NULL) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a JWKS is not one key"),
					 errhint("Use crm_security.import_jwks() for a JWKS.")));
		if (ks_jwk_has_private_members(jwk))
			ks_refuse_private(kid);
	}
	else if (alg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an algorithm is required for a key given as text")));

	tmp = AllocSetContextCreate(CurrentMemoryContext, "jwt_keys check", ALLOCSET_SMALL_SIZES);
	if (key != NULL)
		set = keys_parse_text(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), tmp);
	else
		set = keys_parse_jsonb(jwk, false, tmp);
	if (set->nkeys != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key is not exactly one key")));
	k = set->keys[0];

	if (k->type != CRM_KEY_OCT && k->is_private)
		ks_refuse_private(kid);
	if (jwk != NULL && k->kid != NULL && strcmp(k->kid, kid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid \"%s\" does not match the JWK", kid),
				 errdetail("The JWK names a different key ID.")));

	if (alg == NULL)
		alg = k->bound_alg;
	if (alg == NULL)
	{
		/* A JWK without "alg": the algorithm its key type implies. */
		switch (k->type)
		{
			case CRM_KEY_OCT:
				alg = crm_alg_lookup("HS256");
				break;
			case CRM_KEY_RSA:
				alg = crm_alg_lookup(k->pss_only ? "PS256" : "RS256");
				break;
			case CRM_KEY_EC:
				alg = crm_alg_lookup(k->ec_nid == NID_secp384r1 ? "ES384" :
									 k->ec_nid == NID_secp521r1 ? "ES512" : "ES256");
				break;
			case CRM_KEY_OKP:
				alg = crm_alg_lookup("EdDSA");
				break;
		}
		if (alg == NULL)
			elog(ERROR, "no algorithm for a key of type %d", (int) k->type);
	}
	keys_check(k, alg, CRM_KEY_FOR_VERIFY);
	keys_free_set(set);
	MemoryContextDelete(tmp);
	return alg;
}

/*
 * The constraints of a jwt_keys row that do not need the key, each with a message of its
 * own: PostgreSQL's message for a violated constraint shows the whole row, secret included.
 * Also used by the administration functions before they touch the table.
 */
static void
ks_check_row(const char *kid, const char *issuer, bool has_nbf, TimestampTz nbf,
			 bool has_naf, TimestampTz naf)
{
	if (kid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a key needs a kid")));
	if (kid[0] == '\0' || strlen(kid) > KS_MAX_KID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("a key ID must be 1 to %d bytes long", KS_MAX_KID_BYTES)));
	if (issuer != NULL && issuer[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("an issuer must not be empty"),
				 errhint("Give NULL for a key that is not bound to an issuer.")));
	if (has_nbf && has_naf && !(nbf < naf))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("the validity window of key \"%s\" ends before it starts", kid),
				 errdetail("not_before must be earlier than not_after.")));
}

/* SQL function: jwt_keys_validate() returns trigger (BEFORE INSERT OR UPDATE, each row) */
PG_FUNCTION_INFO_V1(crm_jwt_keys_validate);
Datum
crm_jwt_keys_validate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	int			a_alg;
	Datum		d;
	bool		isnull;
	char	   *kid = NULL,
			   *algname = NULL,
			   *issuer = NULL;
	text	   *key = NULL;
	Jsonb	   *jwk = NULL;
	bool		has_nbf,
				has_naf;
	TimestampTz nbf = 0,
				naf = 0;
	const CrmAlg *alg;
	ErrorContextCallback hide;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		elog(ERROR, "jwt_keys_validate() must be a BEFORE INSERT OR UPDATE row trigger");
	keys_hide_statement_push(&hide);

	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	d = heap_getattr(tup, ks_attnum(desc, "kid"), desc, &isnull);
	if (!isnull)
		kid = TextDatumGetCString(d);
	d = heap_getattr(tup, ks_attnum(desc, "issuer"), desc, &isnull);
	if (!isnull)
		issuer = TextDatumGetCString(d);
	d = heap_getattr(tup, ks_attnum(desc, "not_before"), desc, &isnull);
	has_nbf = !isnull;
	if (!isnull)
		nbf = DatumGetTimestampTz(d);
	d = heap_getattr(tup, ks_attnum(desc, "not_after"), desc, &isnull);
	has_naf = !isnull;
	if (!isnull)
		naf = DatumGetTimestampTz(d);
	ks_check_row(kid, issuer, has_nbf, nbf, has_naf, naf);
	kss_check_key_row(tup, desc, kid);	/* audience, leeway (keystore_settings.c) */

	/*
	 * The extension's own signing key: only keystore_internal.c writes a row of its kid
	 * or issuer, and nothing else changes that row (not disable_jwt_key(), not an
	 * import_jwks() of the same kid): an update is checked against the old row too.
	 */
	if (!ks_internal_writing())
	{
		bool		reserved = ks_internal_reserved(kid, issuer);

		if (!reserved && TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		{
			char	   *old_kid = NULL,
					   *old_issuer = NULL;

			d = heap_getattr(td->tg_trigtuple, ks_attnum(desc, "kid"), desc, &isnull);
			if (!isnull)
				old_kid = TextDatumGetCString(d);
			d = heap_getattr(td->tg_trigtuple, ks_attnum(desc, "issuer"), desc, &isnull);
			if (!isnull)
				old_issuer = TextDatumGetCString(d);
			reserved = ks_internal_reserved(old_kid, old_issuer);
		}
		if (reserved)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the key ID \"%s\" and the issuer \"%s\" are reserved",
							KS_INTERNAL_KID, KS_INTERNAL_ISSUER),
					 errdetail("They belong to the extension's own signing key, which only the extension writes."),
					 errhint("To replace that key, delete its row: the next use creates a new one.")));
	}

	(void) heap_getattr(tup, ks_attnum(desc, "enabled"), desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the enabled flag of key \"%s\" must not be null", kid)));
	(void) heap_getattr(tup, ks_attnum(desc, "created_at"), desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the creation time of key \"%s\" must not be null", kid)));

	a_alg = ks_attnum(desc, "algorithm");
	d = heap_getattr(tup, a_alg, desc, &isnull);
	if (!isnull)
		algname = TextDatumGetCString(d);
	d = heap_getattr(tup, ks_attnum(desc, "key"), desc, &isnull);
	if (!isnull)
		key = DatumGetTextPP(d);
	d = heap_getattr(tup, ks_attnum(desc, "jwk"), desc, &isnull);
	if (!isnull)
		jwk = DatumGetJsonbP(d);
	if ((key == NULL) == (jwk == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a key needs either a secret or PEM text, or a JWK")));

	alg = ks_check_key(kid, algname, key, jwk);
	if (algname == NULL || strcmp(algname, alg->name) != 0)
	{
		Datum		v = CStringGetTextDatum(alg->name);
		bool		n = false;

		tup = heap_modify_tuple_by_cols(tup, desc, 1, &a_alg, &v, &n);
	}
	keys_hide_statement_pop(&hide);
	return PointerGetDatum(tup);
}

/* ----------------------------------------------------------------
 * Administration functions
 *
 * Written in C so that every error they raise, PostgreSQL's included (a unique violation, a
 * cancel), keeps the statement, which carries the key, out of the server log; they never
 * let a constraint of the table fail with the row in its message.  SQL runs through SPI with
 * parameters, so no key is ever part of a statement's text.
 * ----------------------------------------------------------------
 */

/*
 * The columns of a changed row that its log line and security event name, and the call
 * that logs and records the change (n: the changed rows; never the key material).
 */
#define KS_RETURNING \
	" RETURNING kid, algorithm, issuer, not_before, not_after, (xmax OPERATOR(pg_catalog.=) 0) AS inserted"
#define KS_LOG_CHANGE(action, via) \
	"crm_security._jwt_key_changed(" action ", pg_catalog.jsonb_build_object(" \
	"'kid', n.kid, 'algorithm', n.algorithm, 'issuer', n.issuer, 'not_before', n.not_before, " \
	"'not_after', n.not_after, 'via', " via "))"

/*
 * Whether crm_security._jwt_key_changed(text, jsonb) exists: a 0.1.0 install that runs this
 * library before ALTER EXTENSION ... UPDATE has no such function, and its key changes are
 * then not logged (they worked as in 0.1.0).
 */
static bool
ks_can_log(void)
{
	Oid			argtypes[2] = {TEXTOID, JSONBOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("crm_security"),
												makeString("_jwt_key_changed")),
									 2, argtypes, true));
}

/* `log` when the change can be logged, else a plain column of the changed rows. */
#define KS_LOGGED(log) (ks_can_log() ? (log) : "n.kid")

static uint64
ks_spi(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args() failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

static void
ks_require(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", what)));
}

/* The key (kid, issuer) exists already: 23505 with a message of our own. */
static void
ks_refuse_duplicate(Datum kid, Datum issuer, bool issuer_null)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {kid, issuer};
	char		nulls[2] = {' ', issuer_null ? 'n' : ' '};

	if (ks_spi("SELECT 1 FROM crm_security.jwt_keys AS k"
			   " WHERE k.kid OPERATOR(pg_catalog.=) $1 AND k.issuer IS NOT DISTINCT FROM $2",
			   2, types, values, nulls) == 0)
		return;
	if (issuer_null)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("key \"%s\" already exists", TextDatumGetCString(kid)),
				 errdetail("A key with this key ID and no issuer is in the key store."),
				 errhint("Give the new key another key ID, or delete the old key first.")));
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("key \"%s\" of issuer \"%s\" already exists",
					TextDatumGetCString(kid), TextDatumGetCString(issuer)),
			 errdetail("A key with this key ID and issuer is in the key store."),
			 errhint("Give the new key another key ID, or delete the old key first.")));
}

static void
ks_check_args(FunctionCallInfo fcinfo, int a_kid, int a_iss, int a_nbf, int a_naf)
{
	ks_check_row(text_to_cstring(PG_GETARG_TEXT_PP(a_kid)),
				 PG_ARGISNULL(a_iss) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(a_iss)),
				 !PG_ARGISNULL(a_nbf), PG_ARGISNULL(a_nbf) ? 0 : PG_GETARG_TIMESTAMPTZ(a_nbf),
				 !PG_ARGISNULL(a_naf), PG_ARGISNULL(a_naf) ? 0 : PG_GETARG_TIMESTAMPTZ(a_naf));
}

/*
 * Insert the row that the function's first `nargs` arguments give, in order, with `sql`;
 * a key with the same kid and issuer (argument `a_issuer`) is refused first.
 */
static void
ks_insert_args(FunctionCallInfo fcinfo, int nargs, Oid *types, int a_issuer, const char *sql)
{
	Datum		values[6];
	char		nulls[6];
	int			i;

	Assert(nargs <= lengthof(values));
	for (i = 0; i < nargs; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	SPI_connect();
	ks_refuse_duplicate(values[0], values[a_issuer], PG_ARGISNULL(a_issuer));
	ks_spi(sql, nargs, types, values, nulls);
	SPI_finish();
}

/* SQL function: add_jwt_key(kid text, algorithm text, key text, issuer text, not_before timestamptz, not_after timestamptz) returns void */
PG_FUNCTION_INFO_V1(crm_add_jwt_key_text);
Datum
crm_add_jwt_key_text(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};

	keys_hide_statement_push(&hide);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid, algorithm and key must not be null")));
	ks_check_args(fcinfo, 0, 3, 4, 5);
	ks_insert_args(fcinfo, 6, types, 3,
				   psprintf("WITH n AS (INSERT INTO crm_security.jwt_keys (kid, algorithm, key, issuer, not_before, not_after)"
							" VALUES ($1, $2, $3, $4, $5, $6)" KS_RETURNING ") SELECT %s FROM n",
							KS_LOGGED(KS_LOG_CHANGE("'added'", "'add_jwt_key'"))));
	keys_hide_statement_pop(&hide);
	PG_RETURN_VOID();
}

/* SQL function: add_jwt_key(kid text, jwk jsonb, issuer text, not_before timestamptz, not_after timestamptz) returns void */
PG_FUNCTION_INFO_V1(crm_add_jwt_key_jwk);
Datum
crm_add_jwt_key_jwk(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Oid			types[5] = {TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	char	   *kid;
	Jsonb	   *jwk;
	JsonbValue *v;

	keys_hide_statement_push(&hide);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid and jwk must not be null")));
	ks_check_args(fcinfo, 0, 2, 3, 4);
	kid = text_to_cstring(PG_GETARG_TEXT_PP(0));
	jwk = PG_GETARG_JSONB_P(1);
	if (VARSIZE(jwk) > KEY_MAX_JWK_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid JWK"),
				 errdetail("A JWK may be at most %d bytes long.", KEY_MAX_JWK_BYTES)));
	if (JB_ROOT_IS_OBJECT(jwk) && !JB_ROOT_IS_SCALAR(jwk) &&
		(v = getKeyJsonValueFromContainer(&jwk->root, "kid", 3, NULL)) != NULL &&
		(v->type != jbvString || v->val.string.len != (int) strlen(kid) ||
		 memcmp(v->val.string.val, kid, v->val.string.len) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid \"%s\" does not match the JWK", kid),
				 errdetail("The JWK names a different key ID.")));
	ks_insert_args(fcinfo, 5, types, 2,
				   psprintf("WITH n AS (INSERT INTO crm_security.jwt_keys (kid, algorithm, jwk, issuer, not_before, not_after)"
							" VALUES ($1, NULL, $2, $3, $4, $5)" KS_RETURNING ") SELECT %s FROM n",
							KS_LOGGED(KS_LOG_CHANGE("'added'", "'add_jwt_key'"))));
	keys_hide_statement_pop(&hide);
	PG_RETURN_VOID();
}

static void
ks_invalid_jwks(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid JWKS"),
			 errdetail_internal("%s", detail)));
}

/*
 * Import a JWKS as keys of `issuer` (argument 1, NULL: no issuer); with `disable_missing`,
 * also disable the enabled keys of that issuer whose kid is not among the JWKS's signature
 * keys (never the extension's own key).  *disabled gets their kids (sorted), *ndisabled
 * how many.  Returns the number of keys of the JWKS imported.
 */
static int
ks_import_jwks(FunctionCallInfo fcinfo, bool disable_missing, Datum **disabled, int *ndisabled)
{
	Jsonb	   *jwks;
	JsonbValue *keys;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	  **kids;
	int			nkids = 0;
	int			n = 0;
	Oid			types[3] = {TEXTOID, JSONBOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	MemoryContext caller = CurrentMemoryContext;
	char	   *upsert;

	*ndisabled = 0;
	*disabled = NULL;
	ks_require(fcinfo, 0, "jwks");
	jwks = PG_GETARG_JSONB_P(0);
	if (!PG_ARGISNULL(1))
	{
		ks_check_row("-", text_to_cstring(PG_GETARG_TEXT_PP(1)), false, 0, false, 0);
		values[2] = PG_GETARG_DATUM(1);
	}
	else
		nulls[2] = 'n';
	if (disable_missing)
	{
		if (PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("disable_missing needs an issuer"),
					 errdetail("Without an issuer it would disable every key that has no issuer and is not in the JWKS."),
					 errhint("Give the issuer whose JWKS this is, or disable keys one by one with crm_security.disable_jwt_key().")));
		if (ks_internal_reserved(NULL, TextDatumGetCString(values[2])))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the issuer \"%s\" is reserved", KS_INTERNAL_ISSUER),
					 errdetail("It belongs to the extension's own signing key, which only the extension writes.")));
	}
	if (VARSIZE(jwks) > KEY_MAX_JWK_BYTES)
		ks_invalid_jwks(psprintf("A JWKS may be at most %d bytes long.", KEY_MAX_JWK_BYTES));
	if (!JB_ROOT_IS_OBJECT(jwks) || JB_ROOT_IS_SCALAR(jwks) ||
		(keys = getKeyJsonValueFromContainer(&jwks->root, "keys", 4, NULL)) == NULL ||
		keys->type != jbvBinary || !JsonContainerIsArray(keys->val.binary.data))
		ks_invalid_jwks("A JWKS is a JSON object with a \"keys\" array.");
	if (JsonContainerSize(keys->val.binary.data) > KS_MAX_JWKS_KEYS)
		ks_invalid_jwks(psprintf("A JWKS may hold at most %d keys.", KS_MAX_JWKS_KEYS));

	/* Check every member before importing any. */
	kids = palloc0(sizeof(char *) * (JsonContainerSize(keys->val.binary.data) + 1));
	it = JsonbIteratorInit(keys->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *m;
		char	   *kid;
		int			i;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ks_invalid_jwks("Every member of \"keys\" must be a JSON object.");
		/* Encryption keys are not for signatures: leave them out. */
		m = getKeyJsonValueFromContainer(v.val.binary.data, "use", 3, NULL);
		if (m != NULL && m->type == jbvString && m->val.string.len == 3 &&
			memcmp(m->val.string.val, "enc", 3) == 0)
		{
			kids[nkids++] = NULL;
			continue;
		}
		m = getKeyJsonValueFromContainer(v.val.binary.data, "kid", 3, NULL);
		if (m == NULL || m->type != jbvString || m->val.string.len == 0)
			ks_invalid_jwks("Every key of the JWKS needs a \"kid\" to be imported.");
		kid = pnstrdup(m->val.string.val, m->val.string.len);
		if (strlen(kid) != (size_t) m->val.string.len || strlen(kid) > KS_MAX_KID_BYTES)
			ks_check_row("", NULL, false, 0, false, 0);
		for (i = 0; i < nkids; i++)
			if (kids[i] != NULL && strcmp(kids[i], kid) == 0)
				ks_invalid_jwks(psprintf("Two keys of the JWKS have the key ID \"%s\".", kid));
		kids[nkids++] = kid;
		n++;
	}

	/*
	 * A set without signature keys is more likely a failed fetch than a provider that
	 * dropped every key: it would lock out every user of the issuer at once.
	 */
	if (disable_missing && n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a JWKS without signature keys cannot replace the keys of issuer \"%s\"",
						TextDatumGetCString(values[2])),
				 errdetail("disable_missing would disable every key of the issuer."),
				 errhint("Disable the keys one by one with crm_security.disable_jwt_key(kid, issuer).")));

	SPI_connect();
	upsert = psprintf("WITH n AS (INSERT INTO crm_security.jwt_keys AS k (kid, algorithm, jwk, issuer)"
					  " VALUES ($1, NULL, $2, $3)"
					  " ON CONFLICT ON CONSTRAINT jwt_keys_kid_issuer_key DO UPDATE"
					  " SET algorithm = excluded.algorithm, key = NULL, jwk = excluded.jwk"
					  " WHERE k.algorithm IS DISTINCT FROM excluded.algorithm"
					  " OR k.key IS NOT NULL OR k.jwk IS DISTINCT FROM excluded.jwk"
					  KS_RETURNING ") SELECT %s FROM n",
					  KS_LOGGED(KS_LOG_CHANGE("CASE WHEN n.inserted THEN 'added' ELSE 'updated' END",
											  "'import_jwks'")));
	it = JsonbIteratorInit(keys->val.binary.data);
	nkids = 0;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (kids[nkids++] == NULL)
			continue;
		CHECK_FOR_INTERRUPTS();
		values[0] = CStringGetTextDatum(kids[nkids - 1]);
		values[1] = JsonbPGetDatum(JsonbValueToJsonb(&v));

		/*
		 * A key is identified by (kid, issuer): a key of another issuer that shares the kid
		 * is another key, never touched.  A key that is already there gets the new
		 * material; a disabled key stays disabled.  A key added or given new material is
		 * logged; one that is unchanged is not.
		 */
		ks_spi(upsert, 3, types, values, nulls);
	}

	if (disable_missing)
	{
		Datum	   *present = palloc(sizeof(Datum) * (n + 1));
		int			np = 0,
					i;
		Oid			dtypes[2] = {TEXTOID, TEXTARRAYOID};
		Datum		dvalues[2];

		for (i = 0; i < nkids; i++)
			if (kids[i] != NULL)
				present[np++] = CStringGetTextDatum(kids[i]);
		dvalues[0] = values[2];
		dvalues[1] = PointerGetDatum(construct_array(present, np, TEXTOID, -1, false, TYPALIGN_INT));
		ks_spi(psprintf("WITH n AS (UPDATE crm_security.jwt_keys AS k SET enabled = false"
						" WHERE k.issuer OPERATOR(pg_catalog.=) $1 AND k.enabled"
						" AND NOT (k.kid OPERATOR(pg_catalog.=) ANY ($2))"
						" AND k.kid OPERATOR(pg_catalog.<>) '" KS_INTERNAL_KID "'"
						" AND k.issuer OPERATOR(pg_catalog.<>) '" KS_INTERNAL_ISSUER "'"
						KS_RETURNING ")"
						" SELECT n.kid, %s FROM n ORDER BY n.kid COLLATE pg_catalog.\"C\"",
						KS_LOGGED(KS_LOG_CHANGE("'disabled'", "'import_jwks'"))),
			   2, dtypes, dvalues, NULL);
		*ndisabled = (int) SPI_processed;
		if (SPI_processed > 0)
		{
			/* Copied out of SPI's memory, which SPI_finish() frees. */
			MemoryContext spi = MemoryContextSwitchTo(caller);

			*disabled = palloc(sizeof(Datum) * SPI_processed);
			for (i = 0; i < (int) SPI_processed; i++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

				(*disabled)[i] = isnull ? CStringGetTextDatum("") :
					PointerGetDatum(DatumGetTextPCopy(d));
			}
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	return n;
}

/* SQL function: import_jwks(jwks jsonb, issuer text) returns integer (0.1.0's signature) */
PG_FUNCTION_INFO_V1(crm_import_jwks);
Datum
crm_import_jwks(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum	   *disabled;
	int			ndisabled;
	int			n;

	keys_hide_statement_push(&hide);
	n = ks_import_jwks(fcinfo, false, &disabled, &ndisabled);
	keys_hide_statement_pop(&hide);
	PG_RETURN_INT32(n);
}

/*
 * SQL function: import_jwks(jwks jsonb, issuer text, disable_missing boolean,
 *		OUT imported integer, OUT disabled integer, OUT disabled_kids text[]) returns record
 */
PG_FUNCTION_INFO_V1(crm_import_jwks_sync);
Datum
crm_import_jwks_sync(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	Datum	   *disabled;
	int			ndisabled;
	int			n;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	keys_hide_statement_push(&hide);
	ks_require(fcinfo, 2, "disable_missing");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "import_jwks() must return a record");
	desc = BlessTupleDesc(desc);
	n = ks_import_jwks(fcinfo, PG_GETARG_BOOL(2), &disabled, &ndisabled);
	values[0] = Int32GetDatum(n);
	values[1] = Int32GetDatum(ndisabled);
	values[2] = PointerGetDatum(construct_array(disabled, ndisabled, TEXTOID, -1, false, TYPALIGN_INT));
	keys_hide_statement_pop(&hide);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
