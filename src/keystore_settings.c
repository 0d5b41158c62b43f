/*
 * keystore_settings.c
 *		Verification settings kept with the keys, so that every connection sees a change
 *		at its next verification.
 *
 * Settings of a session (ALTER DATABASE/ROLE ... SET crm_security.jwt_audience) reach only
 * new connections: a pooler's older server connections keep the old value.  The same
 * rules kept in the key store (the default row of crm_security.jwt_settings, and the
 * columns audience, leeway and require_exp of each jwt_keys row) are loaded with the keys
 * and invalidated with them (the statement trigger jwt_keys_changed on both tables), so a
 * change committed by one session is used by every other one at its next verification.
 *
 * How the two combine (docs/context.md): a key's value, else the default row's; for
 * leeway and require_exp the session's settings only where the store sets nothing; the
 * session's audience and issuer are checked in addition to the store's, never instead.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "jwt.h"
#include "keystore_settings.h"

void
kss_clear(KsSettings *s)
{
	memset(s, 0, sizeof(*s));
	s->require_exp = -1;
}

static int
kss_attnum(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

void
kss_columns(TupleDesc desc, KsSettingsColumns *cols)
{
	cols->audience = kss_attnum(desc, "audience");
	cols->leeway = kss_attnum(desc, "leeway");
	cols->require_exp = kss_attnum(desc, "require_exp");
}

/* An interval as seconds (the tables' checks keep it between 0 and one day). */
static double
kss_interval_seconds(Datum d)
{
	Interval   *iv = DatumGetIntervalP(d);

	return (double) iv->time / USECS_PER_SEC + (double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

static void
kss_read(TupleTableSlot *slot, int a_aud, int a_iss, int a_leeway, int a_exp, KsSettings *s)
{
	Datum		d;
	bool		isnull;

	kss_clear(s);
	if (a_aud > 0)
	{
		d = slot_getattr(slot, a_aud, &isnull);
		if (!isnull)
			s->audience = TextDatumGetCString(d);
	}
	if (a_iss > 0)
	{
		d = slot_getattr(slot, a_iss, &isnull);
		if (!isnull)
			s->issuer = TextDatumGetCString(d);
	}
	if (a_leeway > 0)
	{
		d = slot_getattr(slot, a_leeway, &isnull);
		s->has_leeway = !isnull;
		if (!isnull)
			s->leeway = Max(kss_interval_seconds(d), 0);
	}
	if (a_exp > 0)
	{
		d = slot_getattr(slot, a_exp, &isnull);
		if (!isnull)
			s->require_exp = DatumGetBool(d) ? 1 : 0;
	}
}

void
kss_read_key(TupleTableSlot *slot, const KsSettingsColumns *cols, KsSettings *s)
{
	kss_read(slot, cols->audience, 0, cols->leeway, cols->require_exp, s);
}

Oid
kss_load_default(KsSettings *dflt)
{
	Oid			nsp = get_namespace_oid("crm_security", true);
	Oid			relid;
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	TupleDesc	desc;

	kss_clear(dflt);
	relid = OidIsValid(nsp) ? get_relname_relid("jwt_settings", nsp) : InvalidOid;
	if (!OidIsValid(relid))
		return InvalidOid;
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	/* One row at most (its primary key is the constant true). */
	if (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		kss_read(slot, kss_attnum(desc, "audience"), kss_attnum(desc, "issuer"),
				 kss_attnum(desc, "leeway"), kss_attnum(desc, "require_exp"), dflt);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return relid;
}

void
kss_check_claims(Jsonb *claims, const KsSettings *key, bool key_has_issuer,
				 const KsSettings *dflt, const JwtVerifyOptions *guc, JwtVerifyOptions *eff)
{
	*eff = *guc;
	eff->skip_claims = false;

	/* The store's rules. */
	eff->audience = key->audience ? key->audience : dflt->audience;
	/* A key bound to an issuer vouches for that issuer only (keystore.c): that is its rule. */
	eff->issuer = key_has_issuer ? NULL : dflt->issuer;
	if (key->has_leeway)
		eff->leeway = key->leeway;
	else if (dflt->has_leeway)
		eff->leeway = dflt->leeway;
	if (key->require_exp >= 0)
		eff->require_exp = key->require_exp == 1;
	else if (dflt->require_exp >= 0)
		eff->require_exp = dflt->require_exp == 1;
	jwt_check_claims(claims, eff);

	/* The session's audience and issuer too, when it has them: they only ever narrow. */
	if (guc->audience != NULL || guc->issuer != NULL)
	{
		JwtVerifyOptions also = *eff;

		also.audience = guc->audience;
		also.issuer = guc->issuer;
		jwt_check_claims(claims, &also);
	}
}

/* The checks of one setting's values, with messages that name no key material. */
static void
kss_check_values(const char *what, bool has_aud, const char *aud, bool has_leeway, Datum leeway)
{
	if (has_aud && (aud[0] == '\0' || strlen(aud) > 1024))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audience of %s must be between 1 and 1024 bytes long", what)));
	if (has_leeway)
	{
		double		sec = kss_interval_seconds(leeway);

		if (sec < 0 || sec > SECS_PER_DAY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the leeway of %s must be between 0 seconds and 1 day", what)));
	}
}

void
kss_check_key_row(HeapTuple tup, TupleDesc desc, const char *kid)
{
	KsSettingsColumns cols;
	Datum		aud = (Datum) 0,
				leeway = (Datum) 0;
	bool		aud_null = true,
				leeway_null = true;

	kss_columns(desc, &cols);
	if (cols.audience > 0)
		aud = heap_getattr(tup, cols.audience, desc, &aud_null);
	if (cols.leeway > 0)
		leeway = heap_getattr(tup, cols.leeway, desc, &leeway_null);
	kss_check_values(kid ? psprintf("key \"%s\"", kid) : "the default settings", !aud_null,
					 aud_null ? NULL : TextDatumGetCString(aud), !leeway_null, leeway);
}

/* SQL function: jwt_settings_validate() returns trigger (BEFORE INSERT OR UPDATE, each row) */
PG_FUNCTION_INFO_V1(crm_jwt_settings_validate);
Datum
crm_jwt_settings_validate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		d;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "jwt_settings_validate() must be a BEFORE row trigger");
	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	kss_check_key_row(tup, desc, NULL);
	d = heap_getattr(tup, kss_attnum(desc, "issuer"), desc, &isnull);
	if (!isnull)
	{
		char	   *iss = TextDatumGetCString(d);

		if (iss[0] == '\0' || strlen(iss) > 1024)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the default issuer must be between 1 and 1024 bytes long")));
	}
	return PointerGetDatum(tup);
}
