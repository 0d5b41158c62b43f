/*
 * keystore.c
 *		The trusted key store (table crm_security.jwt_keys) and token verification against it.
 *
 * Every process keeps the rows of jwt_keys in memory and parses a key the first time a
 * token needs it.  A statement trigger on the table sends a relcache invalidation for it,
 * so every process notices a change (a disabled key, say) at its next transaction start,
 * when it accepts invalidation messages, and reloads the table then.
 */
#include "postgres.h"

#include <openssl/obj_mac.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "context.h"
#include "crm_security.h"
#include "b64url.h"
#include "jwt.h"
#include "keys.h"

/* One row of jwt_keys. */
typedef struct KsKey
{
	char	   *kid;
	const CrmAlg *alg;
	char	   *issuer;			/* NULL: any */
	bool		enabled;
	bool		has_not_before;
	bool		has_not_after;
	TimestampTz not_before;
	TimestampTz not_after;
	text	   *key;			/* HMAC secret or PEM, or */
	Jsonb	   *jwk;			/* a JWK */
	CrmKeySet  *parsed;			/* parsed on first use */
} KsKey;

static MemoryContext ks_mcxt = NULL;
static KsKey *ks_keys = NULL;
static int	ks_nkeys = 0;
static bool ks_valid = false;
static uint64 ks_version = 0;
static Oid	ks_relid = InvalidOid;

static void ks_relcache_callback(Datum arg, Oid relid);
static void ks_free_keys(void);
static void ks_load(void);

void
ks_init(void)
{
	CacheRegisterRelcacheCallback(ks_relcache_callback, (Datum) 0);
}

/* Any change to jwt_keys (or a full reset of the relcache) makes the cached rows stale. */
static void
ks_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ks_relid)
		ks_valid = false;
}

/* Wipe the key material held in memory, then free it. */
static void
ks_free_keys(void)
{
	int			i;

	for (i = 0; i < ks_nkeys; i++)
	{
		KsKey	   *k = &ks_keys[i];

		if (k->parsed)
			keys_free_set(k->parsed);
		if (k->key)
			explicit_bzero(k->key, VARSIZE(k->key));
		if (k->jwk)
			explicit_bzero(k->jwk, VARSIZE(k->jwk));
	}
	ks_keys = NULL;
	ks_nkeys = 0;
	if (ks_mcxt)
		MemoryContextReset(ks_mcxt);
}

static int
ks_attnum(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	elog(ERROR, "column \"%s\" of crm_security.jwt_keys is missing", name);
	return 0;					/* keep compiler quiet */
}

/*
 * Read every row of jwt_keys.  The table is read directly, not through SQL: the claim
 * context is computed with the rights of whoever runs the query, and nobody but the owner
 * may read the table.
 */
static void
ks_load(void)
{
	Oid			nsp;
	Relation	rel;
	TupleDesc	desc;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int			a_kid, a_alg, a_key, a_jwk, a_iss, a_nbf, a_naf, a_enabled;
	int			cap = 8;
	MemoryContext old;

	ks_free_keys();
	if (ks_mcxt == NULL)
		ks_mcxt = AllocSetContextCreate(TopMemoryContext, "crm_security key store",
										ALLOCSET_SMALL_SIZES);

	nsp = get_namespace_oid("crm_security", true);
	ks_relid = OidIsValid(nsp) ? get_relname_relid("jwt_keys", nsp) : InvalidOid;
	if (!OidIsValid(ks_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the key store crm_security.jwt_keys does not exist"),
				 errhint("Create the extension with CREATE EXTENSION crm_security.")));

	/*
	 * Opening the table accepts pending invalidations.  Mark the cache valid before taking
	 * the snapshot, so that an invalidation arriving from here on is not lost.
	 */
	rel = table_open(ks_relid, AccessShareLock);
	ks_valid = true;
	ks_version++;
	desc = RelationGetDescr(rel);
	a_kid = ks_attnum(desc, "kid");
	a_alg = ks_attnum(desc, "algorithm");
	a_key = ks_attnum(desc, "key");
	a_jwk = ks_attnum(desc, "jwk");
	a_iss = ks_attnum(desc, "issuer");
	a_nbf = ks_attnum(desc, "not_before");
	a_naf = ks_attnum(desc, "not_after");
	a_enabled = ks_attnum(desc, "enabled");

	/* A fresh snapshot: it sees every change whose invalidation we have received. */
	InvalidateCatalogSnapshot();
	snapshot = RegisterSnapshot(GetCatalogSnapshot(ks_relid));
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);

	old = MemoryContextSwitchTo(ks_mcxt);
	ks_keys = palloc0(sizeof(KsKey) * cap);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		KsKey	   *k;
		Datum		d;
		bool		isnull;
		char	   *algname;

		if (ks_nkeys == cap)
		{
			cap *= 2;
			ks_keys = repalloc(ks_keys, sizeof(KsKey) * cap);
		}
		k = &ks_keys[ks_nkeys];
		memset(k, 0, sizeof(KsKey));

		d = slot_getattr(slot, a_kid, &isnull);
		if (isnull)
			continue;
		k->kid = TextDatumGetCString(d);
		d = slot_getattr(slot, a_alg, &isnull);
		if (isnull)
			continue;
		algname = TextDatumGetCString(d);
		k->alg = crm_alg_lookup(algname);
		if (k->alg == NULL)
			continue;			/* the row trigger makes this impossible */
		d = slot_getattr(slot, a_key, &isnull);
		if (!isnull)
			k->key = (text *) PG_DETOAST_DATUM_COPY(d);
		d = slot_getattr(slot, a_jwk, &isnull);
		if (!isnull)
			k->jwk = (Jsonb *) PG_DETOAST_DATUM_COPY(d);
		if (k->key == NULL && k->jwk == NULL)
			continue;
		d = slot_getattr(slot, a_iss, &isnull);
		if (!isnull)
			k->issuer = TextDatumGetCString(d);
		d = slot_getattr(slot, a_nbf, &isnull);
		k->has_not_before = !isnull;
		if (!isnull)
			k->not_before = DatumGetTimestampTz(d);
		d = slot_getattr(slot, a_naf, &isnull);
		k->has_not_after = !isnull;
		if (!isnull)
			k->not_after = DatumGetTimestampTz(d);
		d = slot_getattr(slot, a_enabled, &isnull);
		k->enabled = !isnull && DatumGetBool(d);
		ks_nkeys++;
	}
	MemoryContextSwitchTo(old);

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/* Make sure the cached rows are current; return the key store version. */
uint64
ks_current_version(void)
{
	if (!ks_valid)
	{
		PG_TRY();
		{
			ks_load();
		}
		PG_CATCH();
		{
			ks_valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return ks_version;
}

/* The parsed key of a row, bound to the row's algorithm and kid. */
static CrmKey *
ks_parsed_key(KsKey *k)
{
	if (k->parsed == NULL)
	{
		CrmKeySet  *set;

		if (k->key)
			set = keys_parse_text(VARDATA_ANY(k->key), VARSIZE_ANY_EXHDR(k->key), ks_mcxt);
		else
			set = keys_parse_jsonb(k->jwk, ks_mcxt);
		if (set->nkeys != 1)
		{
			keys_free_set(set);
			ereport(ERROR,
					(errcode(CRM_ERRCODE_INVALID_AUTH),
					 errmsg("invalid key in the key store"),
					 errdetail("The key \"%s\" is not exactly one key.", k->kid)));
		}
		set->keys[0]->bound_alg = k->alg;
		set->keys[0]->kid = MemoryContextStrdup(set->mcxt, k->kid);
		k->parsed = set;
	}
	return k->parsed->keys[0];
}

static void
ks_refuse(const char *detail)
{
	ereport(ERROR,
			(errcode(CRM_ERRCODE_INVALID_AUTH),
			 errmsg("invalid token"),
			 errdetail_internal("%s", detail)));
}

static bool
ks_key_in_window(const KsKey *k, TimestampTz now)
{
	if (k->has_not_before && now < k->not_before)
		return false;
	if (k->has_not_after && now >= k->not_after)
		return false;
	return true;
}

/*
 * Verify a compact JWT against the key store: by its kid when it has one, else with every
 * enabled key of its algorithm; each key only for its own algorithm, inside its validity
 * window and, when the key names an issuer, for tokens of that issuer.  Returns the claims
 * (palloc'd in the current memory context) or raises 28000.
 */
Jsonb *
ks_verify_token(const char *token, int len, const JwtVerifyOptions *opts)
{
	const char *kid;
	const CrmAlg *alg;
	CrmKeySet	set;
	KsKey	  **cand;
	int			ncand = 0, i;
	const CrmKey *used = NULL;
	Jsonb	   *claims;

	ks_current_version();
	/* The header picks the keys; jwt_verify_token() then checks the whole token. */
	jwt_token_header(token, len, &alg, &kid);

	cand = palloc(sizeof(KsKey *) * (ks_nkeys + 1));
	if (kid != NULL)
	{
		KsKey	   *k = NULL;

		for (i = 0; i < ks_nkeys; i++)
			if (strcmp(ks_keys[i].kid, kid) == 0)
				k = &ks_keys[i];
		if (k == NULL)
			ks_refuse("No key of the key store has the token's key ID.");
		if (!k->enabled)
			ks_refuse("The token's key is disabled.");
		if (!ks_key_in_window(k, opts->now))
			ks_refuse("The token's key is outside its validity window.");
		if (k->alg->id != alg->id)
			ks_refuse("The token's algorithm is not the algorithm of its key.");
		cand[ncand++] = k;
	}
	else
	{
		for (i = 0; i < ks_nkeys; i++)
		{
			KsKey	   *k = &ks_keys[i];

			if (k->enabled && k->alg->id == alg->id && ks_key_in_window(k, opts->now))
				cand[ncand++] = k;
		}
		if (ncand == 0)
			ks_refuse("No enabled key of the key store is for the token's algorithm.");
	}

	memset(&set, 0, sizeof(set));
	set.nkeys = ncand;
	set.keys = palloc(sizeof(CrmKey *) * ncand);
	for (i = 0; i < ncand; i++)
		set.keys[i] = ks_parsed_key(cand[i]);
	set.select_by_kid = false;
	set.mcxt = CurrentMemoryContext;

	claims = jwt_verify_token(token, len, &set, opts, &used);

	for (i = 0; i < ncand; i++)
	{
		if (set.keys[i] != used || cand[i]->issuer == NULL)
			continue;
		{
			JsonbValue *iss = getKeyJsonValueFromContainer(&claims->root, "iss", 3, NULL);

			if (iss == NULL || iss->type != jbvString ||
				iss->val.string.len != (int) strlen(cand[i]->issuer) ||
				memcmp(iss->val.string.val, cand[i]->issuer, iss->val.string.len) != 0)
				ks_refuse("The token's issuer is not the issuer of its key.");
		}
	}
	return claims;
}

/*
 * Check a key for the store: parse it, refuse private asymmetric keys and keys that cannot
 * verify `algname` (or, without one, the algorithm its JWK names or implies).  Returns the
 * algorithm.
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
					 errmsg("unrecognized algorithm \"%s\"", algname)));
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
	}
	else if (alg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an algorithm is required for a key given as text")));

	tmp = AllocSetContextCreate(CurrentMemoryContext, "jwt_keys check", ALLOCSET_SMALL_SIZES);
	if (key != NULL)
		set = keys_parse_text(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), tmp);
	else
		set = keys_parse_jsonb(jwk, tmp);
	if (set->nkeys != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key is not exactly one key")));
	k = set->keys[0];

	if (k->type != CRM_KEY_OCT && k->is_private)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key store holds public keys only"),
				 errdetail("The key \"%s\" is a private key.", kid),
				 errhint("Give the public key (a public JWK, an SPKI PEM or a certificate).")));
	if (jwk != NULL && k->kid != NULL && strcmp(k->kid, kid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kid \"%s\" does not match the JWK", kid)));

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
	char	   *kid, *algname = NULL;
	text	   *key = NULL;
	Jsonb	   *jwk = NULL;
	const CrmAlg *alg;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		elog(ERROR, "jwt_keys_validate() must be a BEFORE INSERT OR UPDATE row trigger");

	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	d = heap_getattr(tup, ks_attnum(desc, "kid"), desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a key needs a kid")));
	kid = TextDatumGetCString(d);
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
	return PointerGetDatum(tup);
}

/* SQL function: jwt_keys_changed() returns trigger (AFTER, each statement) */
PG_FUNCTION_INFO_V1(crm_jwt_keys_changed);
Datum
crm_jwt_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "jwt_keys_changed() must be called as a trigger");

	/* Delivered to every backend when this transaction commits (and here at once). */
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}
