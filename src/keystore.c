/*
 * keystore.c
 *		The trusted key store (table crm_security.jwt_keys) and token verification against it.
 *
 * Every process keeps the rows of jwt_keys in memory and parses a key the first time a
 * token needs it.  A statement trigger on the table sends a relcache invalidation for it;
 * every process accepts invalidation messages before it uses the key store (not only at
 * its next transaction start), so it notices a change committed elsewhere (a disabled key,
 * say) at its next verification and reloads the table then.
 *
 * What may enter the table (its row check, add_jwt_key(), import_jwks()) is
 * keystore_admin.c's.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "crm_security.h"
#include "jwt.h"
#include "jwt_errors.h"
#include "keys.h"
#include "keys_jwk.h"
#include "keystore.h"
#include "keystore_internal.h"
#include "keystore_settings.h"
#include "relcache_callbacks.h"
#include "security_events.h"

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
	KsSettings	settings;		/* audience, leeway, require_exp of the row */
} KsKey;

static MemoryContext ks_mcxt = NULL;
static KsKey *ks_keys = NULL;
static int	ks_nkeys = 0;
static bool ks_valid = false;
static uint64 ks_version = 0;
static Oid	ks_relid = InvalidOid;
static KsSettings ks_default;	/* the row of jwt_settings (keystore_settings.c) */
static Oid	ks_settings_relid = InvalidOid;

static void ks_relcache_callback(Datum arg, Oid relid);
static void ks_free_keys(void);
static void ks_load(void);

void
ks_init(void)
{
	crm_register_relcache_callback(ks_relcache_callback, (Datum) 0);
}

/* Any change to jwt_keys (or a full reset of the relcache) makes the cached rows stale. */
static void
ks_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ks_relid ||
		(OidIsValid(ks_settings_relid) && relid == ks_settings_relid))
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
	kss_clear(&ks_default);
	if (ks_mcxt)
		MemoryContextReset(ks_mcxt);
}

int
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
	KsSettingsColumns cols;
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
	kss_columns(desc, &cols);

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
		kss_read_key(slot, &cols, &k->settings);
		ks_nkeys++;
	}
	MemoryContextSwitchTo(old);

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);

	/* The default verification settings, loaded and invalidated with the keys. */
	old = MemoryContextSwitchTo(ks_mcxt);
	ks_settings_relid = kss_load_default(&ks_default);
	MemoryContextSwitchTo(old);
	table_close(rel, AccessShareLock);
}

/*
 * Make sure the cached rows are current; return the key store version.  Pending
 * invalidations are accepted first: a change committed by another session since this
 * transaction began (a disabled key) is seen at once, not at the next transaction.
 */
uint64
ks_current_version(void)
{
	AcceptInvalidationMessages();
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
			set = keys_parse_jsonb(k->jwk, false, ks_mcxt);
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
ks_refuse(CrmAuthReason reason, const char *detail)
{
	crm_auth_refuse(reason, "token", detail, NULL);
}

/* Whether `k` is the extension's own signing key (keystore_internal.c). */
static bool
ks_key_internal(const KsKey *k)
{
	return strcmp(k->kid, KS_INTERNAL_KID) == 0 && k->issuer != NULL &&
		strcmp(k->issuer, KS_INTERNAL_ISSUER) == 0;
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
 * Whether the token's "iss" may be vouched for by `k`.  A key bound to an issuer verifies
 * tokens of exactly that issuer.  A key without an issuer verifies tokens of any issuer
 * except one that keys of the store are bound to: an issuer with keys of its own is spoken
 * for by those keys only, so a shared kid ("1", "default") or an unbound key of another
 * provider can never make a token of that issuer.
 */
static const char *
ks_issuer_refusal(const KsKey *k, Jsonb *claims)
{
	JsonbValue *iss = getKeyJsonValueFromContainer(&claims->root, "iss", 3, NULL);
	int			i;

	/* Only the extension's own key speaks for the extension's issuer. */
	if (iss != NULL && iss->type == jbvString && !ks_key_internal(k) &&
		iss->val.string.len == (int) strlen(KS_INTERNAL_ISSUER) &&
		memcmp(iss->val.string.val, KS_INTERNAL_ISSUER, iss->val.string.len) == 0)
		return "The token claims the extension's own issuer, and was not signed by the extension's key.";
	if (k->issuer != NULL)
	{
		if (iss == NULL || iss->type != jbvString ||
			iss->val.string.len != (int) strlen(k->issuer) ||
			memcmp(iss->val.string.val, k->issuer, iss->val.string.len) != 0)
			return "The token's issuer is not the issuer of its key.";
		return NULL;
	}
	if (iss == NULL || iss->type != jbvString)
		return NULL;
	for (i = 0; i < ks_nkeys; i++)
	{
		const char *other = ks_keys[i].issuer;

		if (other != NULL && iss->val.string.len == (int) strlen(other) &&
			memcmp(iss->val.string.val, other, iss->val.string.len) == 0)
			return "The token's issuer has keys of its own in the key store, and the key that verified it is not one of them.";
	}
	return NULL;
}

/*
 * Verify a compact JWT against the key store: by its kid when it has one, else with every
 * enabled key of its algorithm; each key only for its own algorithm, inside its validity
 * window and for tokens of the issuer it is bound to (ks_issuer_refusal).  Several keys may
 * share a kid (one per issuer): each of them that is usable is tried.  Returns the claims
 * (palloc'd in the current memory context) or raises 28000.
 *
 * The key store is brought up to date first (a key disabled and committed by another
 * session is refused at once, also inside a long transaction), and times are compared with
 * the current time, not the transaction's start.
 */
Jsonb *
ks_verify_token(const char *token, int len, const JwtVerifyOptions *opts, TimestampTz *valid_until,
				bool *internal)
{
	const char *kid;
	const CrmAlg *alg;
	CrmKeySet	set;
	KsKey	  **cand;
	int			ncand = 0, i;
	const CrmKey *used = NULL;
	Jsonb	   *claims;
	JwtVerifyOptions now_opts = *opts;
	ErrorContextCallback hide;
	const char *why;
	CrmAuthReason why_reason = CRM_AUTH_UNKNOWN_KEY;

	keys_hide_statement_push(&hide);
	ks_current_version();
	now_opts.now = GetCurrentTimestamp();

	/* The header picks the keys; jwt_verify_token() then checks the whole token. */
	jwt_token_header(token, len, &alg, &kid);

	/*
	 * The extension's own tokens: only its own key, and its own rules (the settings for
	 * outside tokens, such as crm_security.jwt_issuer, do not apply to them).
	 */
	*internal = kid != NULL && strcmp(kid, KS_INTERNAL_KID) == 0;
	if (*internal)
	{
		now_opts.audience = NULL;
		now_opts.issuer = KS_INTERNAL_ISSUER;
		now_opts.leeway = 0;
		now_opts.require_exp = true;
	}
	else
		now_opts.skip_claims = true;	/* checked below, with the key's settings */

	cand = palloc(sizeof(KsKey *) * (ks_nkeys + 1));
	if (kid != NULL)
	{
		bool		found = false;

		why = NULL;
		for (i = 0; i < ks_nkeys; i++)
		{
			KsKey	   *k = &ks_keys[i];
			const char *w = NULL;
			CrmAuthReason wr = CRM_AUTH_UNKNOWN_KEY;

			if (strcmp(k->kid, kid) != 0 || (*internal && !ks_key_internal(k)))
				continue;
			found = true;
			if (!k->enabled)
			{
				w = "The token's key is disabled.";
				wr = CRM_AUTH_DISABLED_KEY;
			}
			else if (!ks_key_in_window(k, now_opts.now))
			{
				w = "The token's key is outside its validity window.";
				wr = CRM_AUTH_KEY_NOT_VALID;
			}
			else if (k->alg->id != alg->id)
			{
				w = "The token's algorithm is not the algorithm of its key.";
				wr = CRM_AUTH_ALGORITHM;
			}
			else if (ncand < JWT_MAX_CANDIDATES)
				cand[ncand++] = k;
			if (w != NULL && why == NULL)
			{
				why = w;
				why_reason = wr;
			}
		}
		if (!found)
			ks_refuse(CRM_AUTH_UNKNOWN_KEY, "No key of the key store has the token's key ID.");
		if (ncand == 0)
			ks_refuse(why_reason, why);
	}
	else
	{
		for (i = 0; i < ks_nkeys && ncand < JWT_MAX_CANDIDATES; i++)
		{
			KsKey	   *k = &ks_keys[i];

			if (k->enabled && k->alg->id == alg->id && ks_key_in_window(k, now_opts.now) &&
				!ks_internal_reserved(k->kid, k->issuer))
				cand[ncand++] = k;
		}
		if (ncand == 0)
			ks_refuse(CRM_AUTH_UNKNOWN_KEY, "No enabled key of the key store is for the token's algorithm.");
	}

	memset(&set, 0, sizeof(set));
	set.nkeys = ncand;
	set.keys = palloc(sizeof(CrmKey *) * ncand);
	for (i = 0; i < ncand; i++)
	{
		CHECK_FOR_INTERRUPTS();
		set.keys[i] = ks_parsed_key(cand[i]);
	}
	set.select_by_kid = false;
	set.mcxt = CurrentMemoryContext;

	claims = jwt_verify_token(token, len, &set, &now_opts, &used);

	for (i = 0; i < ncand; i++)
		if (set.keys[i] == used)
			break;
	if (i == ncand)
		elog(ERROR, "the key that verified the token is not a candidate");
	if (*internal != ks_key_internal(cand[i]))
		elog(ERROR, "a token of the internal key ID was verified by another key");
	if (!*internal)
	{
		JwtVerifyOptions eff;

		kss_check_claims(claims, &cand[i]->settings, cand[i]->issuer != NULL, &ks_default,
						 &now_opts, &eff);
		now_opts = eff;
	}
	why = ks_issuer_refusal(cand[i], claims);
	if (why != NULL)
		ks_refuse(CRM_AUTH_ISSUER, why);
	if (valid_until != NULL)
	{
		*valid_until = jwt_claims_end(claims, &now_opts);
		if (cand[i]->has_not_after && cand[i]->not_after < *valid_until)
			*valid_until = cand[i]->not_after;
	}
	keys_hide_statement_pop(&hide);
	return claims;
}

const CrmKey *
ks_internal_signing_key(void)
{
	int			i;

	ks_current_version();
	for (i = 0; i < ks_nkeys; i++)
		if (ks_key_internal(&ks_keys[i]) && ks_keys[i].enabled)
			return ks_parsed_key(&ks_keys[i]);
	return NULL;
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
