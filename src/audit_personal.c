/*
 * audit_personal.c
 *		Personal values in audit entries (docs/privacy.md): the values of a table's
 *		personal columns in old_row and new_row, and chosen members of an event's metadata,
 *		are sealed in envelopes (audit_envelope.c) before the entry is hashed: AES-256-GCM
 *		under the data key of their subject (audit_subject_keys.c), bound to the entry,
 *		image and member names.  The entry hash covers the envelopes, so destroying the
 *		key (forget_subject()) erases the values and leaves the chain intact.
 *		audit_personal_data() and audit_subject_data() give auditors the images decrypted.
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "crm_security.h"

#include "audit_entry.h"
#include "audit_envelope.h"
#include "audit_personal.h"
#include "audit_rel.h"
#include "audit_subject_keys.h"
#include "crypto.h"
#include "json_util.h"

#define AUDITOR_ROLE "crm_security_auditor"

static bool
name_in(const char *name, int len, char **names, int n)
{
	for (int i = 0; i < n; i++)
		if ((int) strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return true;
	return false;
}

/* The jsonb text of v (not null) appended to out. */
static void
append_value_text(StringInfo out, JsonbValue *v)
{
	if (v->type == jbvBinary)
		(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
	else
		json_append_scalar(out, v);
}

/* Whether member name (value v) is sealed: not null, named in names (all when NULL). */
static bool
member_sealed(JsonbValue *name, JsonbValue *v, char **names, int n)
{
	return v->type != jbvNull &&
		(names == NULL || name_in(name->val.string.val, name->val.string.len, names, n));
}

/*
 * A copy of the object img with the non-null members named in names (all when NULL)
 * sealed under pk's key, in the format of crm_security.audit_envelope_format.
 */
static Jsonb *
encrypt_members(Jsonb *img, char **names, int n, const AuditPersonalKey *pk)
{
	JsonbIterator *it;
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue	key_v = {0};
	JsonbIteratorToken r;
	JsonbValue *res = NULL;
	bool		crm2 = audit_envelope_format == AUDIT_ENVELOPE_CRM2;
	JsonbValue	env,
				ref;
	StringInfoData pt;
	bool		first = true;

	initStringInfo(&pt);
	if (crm2)
	{
		/* A first walk: the values sealed together, in member order. */
		AuditSeal	seal;

		audit_seal_init(&seal);
		it = JsonbIteratorInit(&img->root);
		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r == WJB_KEY)
				key_v = v;
			else if (r == WJB_VALUE && member_sealed(&key_v, &v, names, n))
				append_value_text(audit_seal_value(&seal, key_v.val.string.val,
												   key_v.val.string.len), &v);
		}
		if (seal.n == 0)
			return img;
		audit_seal_finish(&seal, pk, &env, &ref);
	}

	it = JsonbIteratorInit(&img->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		switch (r)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_END_OBJECT:
				res = pushJsonbValue(&st, r, NULL);
				break;
			case WJB_KEY:
				key_v = v;
				res = pushJsonbValue(&st, r, &v);
				break;
			case WJB_VALUE:
				if (!member_sealed(&key_v, &v, names, n))
					res = pushJsonbValue(&st, r, &v);
				else if (crm2)
				{
					res = pushJsonbValue(&st, r, first ? &env : &ref);
					first = false;
				}
				else
				{
					JsonbValue	ev;

					resetStringInfo(&pt);
					append_value_text(&pt, &v);
					audit_envelope_value(pk, key_v.val.string.val, key_v.val.string.len,
										 pt.data, pt.len, &ev);
					explicit_bzero(pt.data, pt.len);
					res = pushJsonbValue(&st, r, &ev);
				}
				break;
			default:
				elog(ERROR, "unexpected jsonb token in an audit image");
		}
	}
	return JsonbValueToJsonb(res);
}

/* The text of a column of a row; NULL when null. */
static char *
slot_text(TupleTableSlot *slot, AttrNumber attnum)
{
	/* Output functions of the last few built-in types, looked up once per backend. */
	static struct
	{
		Oid			typid;
		FmgrInfo	flinfo;
	}			outs[4];
	static int	nouts = 0;
	static int	next = 0;
	Form_pg_attribute att;
	int			i;

	slot_getallattrs(slot);
	if (slot->tts_isnull[attnum - 1])
		return NULL;
	att = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1);
	/* Only built-in types are kept: a user type's oid may be dropped and reused. */
	if (att->atttypid >= FirstNormalObjectId)
	{
		Oid			typoutput;
		bool		varlena;

		getTypeOutputInfo(att->atttypid, &typoutput, &varlena);
		return OidOutputFunctionCall(typoutput, slot->tts_values[attnum - 1]);
	}
	for (i = 0; i < nouts; i++)
		if (outs[i].typid == att->atttypid)
			break;
	if (i == nouts)
	{
		Oid			typoutput;
		bool		varlena;

		getTypeOutputInfo(att->atttypid, &typoutput, &varlena);
		i = nouts < lengthof(outs) ? nouts : next;
		next = (i + 1) % lengthof(outs);
		outs[i].typid = InvalidOid;
		fmgr_info_cxt(typoutput, &outs[i].flinfo, TopMemoryContext);
		outs[i].typid = att->atttypid;
		if (nouts < lengthof(outs))
			nouts++;
	}
	return OutputFunctionCall(&outs[i].flinfo, slot->tts_values[attnum - 1]);
}

/* The subject of the image of slot: the subject column, else the primary key. */
static char *
row_subject(AuditEntry *e, AuditRelInfo *info, TupleTableSlot *slot)
{
	char	   *s = NULL;

	if (info->subject_attnum != InvalidAttrNumber)
		s = slot_text(slot, info->subject_attnum);
	if (s == NULL || s[0] == '\0')
	{
		if (info->nkey == 1)
			s = slot_text(slot, info->key_attnums[0]);
		else
		{
			Jsonb	   *rk = DatumGetJsonbP(e->values[AL_RECORD_KEY]);
			StringInfoData t;

			initStringInfo(&t);
			(void) JsonbToCString(&t, &rk->root, VARSIZE(rk));
			s = t.data;
		}
	}
	return s;
}

void
audit_personal_key(AuditEntry *e, AuditRelInfo *info, TupleTableSlot *slot, const char *image,
				   AuditPersonalKey *pk)
{
	char	   *tenant;
	char	   *subject;

	Assert(!e->nulls[AL_ID]);
	if (info->tenant_attnum != InvalidAttrNumber)
		tenant = slot_text(slot, info->tenant_attnum);
	else
		tenant = e->nulls[AL_TENANT_ID] ? NULL : TextDatumGetCString(e->values[AL_TENANT_ID]);
	subject = row_subject(e, info, slot);
	pk->entry_id = DatumGetInt64(e->values[AL_ID]);
	pk->image = image;
	pk->key_id = audit_subject_key(tenant, subject, pk->key);
}

bool
audit_personal_column(AuditRelInfo *info, const char *name, int len)
{
	return name_in(name, len, info->personal, info->npersonal);
}

Jsonb *
audit_personal_metadata(Jsonb *md, int64 entry_id, const char *tenant, const char *subject,
						ArrayType *keys)
{
	char	  **names = NULL;
	int			n = 0;
	AuditPersonalKey pk;
	Jsonb	   *res;

	if (!JB_ROOT_IS_OBJECT(md))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event metadata with personal values must be a JSON object")));
	if (keys != NULL)
	{
		Datum	   *elems;
		bool	   *enulls;

		if (ARR_NDIM(keys) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("personal keys must be a one-dimensional array")));
		deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
		names = palloc(sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("personal keys cannot be null")));
			names[i] = TextDatumGetCString(elems[i]);
		}
	}
	pk.entry_id = entry_id;
	pk.image = "metadata";
	pk.key_id = audit_subject_key(tenant, subject, pk.key);
	res = encrypt_members(md, names, n, &pk);
	explicit_bzero(pk.key, sizeof(pk.key));
	return res;
}

/* --------------------------------------------------------------------------------------
 * Reading: audit_personal_data()
 * --------------------------------------------------------------------------------------
 */

/* Push {"<name>": true}. */
static void
push_marker(JsonbParseState **st, const char *name)
{
	JsonbValue	k,
				v;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = (char *) name;
	k.val.string.len = strlen(name);
	pushJsonbValue(st, WJB_KEY, &k);
	v.type = jbvBool;
	v.val.boolean = true;
	pushJsonbValue(st, WJB_VALUE, &v);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* The jsonb of a decrypted plaintext (NUL-terminated jsonb text), which is wiped. */
static Jsonb *
plaintext_jsonb(char *pt)
{
	Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pt)));

	explicit_bzero(pt, strlen(pt));
	pfree(pt);
	return jb;
}

static void
not_decrypted(int64 entry_id, const char *image)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("personal values in %s of audit entry " INT64_FORMAT " do not decrypt",
					image, entry_id),
			 errdetail("They were encrypted for another entry, image or column, or altered.")));
}

/* Push the decrypted value of a crm1 envelope, or {"erased": true}. */
static void
push_decrypted(JsonbParseState **st, int64 entry_id, const char *image, JsonbValue *name,
			   int64 key_id, const uint8 *bytes, int len)
{
	uint8		key[CRM_GCM_KEY_LEN];
	JsonbValue	v;
	char	   *pt;
	Jsonb	   *jb;

	if (!audit_subject_key_by_id(key_id, key))
	{
		push_marker(st, "erased");
		return;
	}
	pt = audit_envelope_open_value(key, key_id, entry_id, image, name->val.string.val,
								   name->val.string.len, bytes, len);
	explicit_bzero(key, sizeof(key));
	if (pt == NULL)
		not_decrypted(entry_id, image);
	jb = plaintext_jsonb(pt);
	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, &v))
			elog(ERROR, "could not extract jsonb scalar");
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* A member of an image, classified once. */
typedef struct Member
{
	JsonbValue	name;
	JsonbValue	value;
	AuditEnvelopeKind kind;
	int64		key_id;
	uint8	   *bytes;			/* an envelope's nonce, ciphertext and tag; a
								 * reference's first bytes of that nonce */
	int			len;
} Member;

/* The members of the object img; *nenv of them are envelopes or references. */
static Member *
image_members(Jsonb *img, int *n, int *nenv)
{
	JsonbIterator *it = JsonbIteratorInit(&img->root);
	Member	   *m = palloc(sizeof(Member) * Max(JB_ROOT_COUNT(img), 1));
	JsonbValue	v;
	JsonbIteratorToken r;
	int			i = 0;

	*nenv = 0;
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
			m[i].name = v;
		else if (r == WJB_VALUE)
		{
			m[i].value = v;
			m[i].kind = audit_envelope_parse(&m[i].value, &m[i].key_id, &m[i].bytes, &m[i].len);
			if (m[i].kind != AUDIT_ENV_NONE)
				(*nenv)++;
			i++;
		}
	}
	*n = i;
	return m;
}

/*
 * The crm2 envelope of an image: the members it seals (the envelope's and the
 * references'), and what they read: their values, or a marker.
 */
typedef struct ImageSeal
{
	AuditSeal	names;			/* the members, in order (only names and n are used) */
	int64		key_id;
	uint8	   *bytes;			/* the envelope */
	int			len;
	bool		mixed;			/* more than one envelope, or other keys */
	Jsonb	   *values;			/* decrypted: an array of n values */
	const char *marker;			/* else "erased" or "other_subject" */
	int			next;
} ImageSeal;

/* Find and open the crm2 envelope among the members m of an image, if any. */
static void
open_image_seal(ImageSeal *is, Member *m, int n, int64 entry_id, const char *image,
				int64 only_key)
{
	uint8		key[CRM_GCM_KEY_LEN];
	char	   *pt;

	memset(is, 0, sizeof(*is));
	audit_seal_init(&is->names);
	for (int i = 0; i < n; i++)
	{
		if (m[i].kind != AUDIT_ENV_CRM2 && m[i].kind != AUDIT_ENV_CRM2_REF)
			continue;
		(void) audit_seal_value(&is->names, m[i].name.val.string.val, m[i].name.val.string.len);
		if (is->names.n > 1 && m[i].key_id != is->key_id)
			is->mixed = true;
		is->key_id = m[i].key_id;
		if (m[i].kind == AUDIT_ENV_CRM2)
		{
			/* One envelope, in the first member sealed. */
			if (is->bytes != NULL || is->names.n > 1)
				is->mixed = true;
			is->bytes = m[i].bytes;
			is->len = m[i].len;
		}
	}
	if (is->names.n == 0)
		return;
	/* References without their envelope: what they referred to was taken away. */
	if (is->bytes == NULL)
		not_decrypted(entry_id, image);
	/* ... or with another image's (a reference copied from elsewhere). */
	for (int i = 0; i < n; i++)
		if (m[i].kind == AUDIT_ENV_CRM2_REF &&
			!audit_envelope_ref_matches(is->bytes, is->len, m[i].bytes, m[i].len))
			is->mixed = true;
	if (only_key != 0 && is->key_id != only_key && !is->mixed)
	{
		is->marker = "other_subject";
		return;
	}
	if (is->mixed)
		not_decrypted(entry_id, image);
	if (!audit_subject_key_by_id(is->key_id, key))
	{
		is->marker = "erased";
		return;
	}
	pt = audit_envelope_open_image(key, is->key_id, entry_id, image, &is->names,
								   is->bytes, is->len);
	explicit_bzero(key, sizeof(key));
	if (pt == NULL)
		not_decrypted(entry_id, image);
	is->values = plaintext_jsonb(pt);
	if (!JB_ROOT_IS_ARRAY(is->values) || JB_ROOT_IS_SCALAR(is->values) ||
		JB_ROOT_COUNT(is->values) != (uint32) is->names.n)
		not_decrypted(entry_id, image);
}

/*
 * The object img with every envelope among its members decrypted (img itself when it
 * has none); with only_key (not 0), the envelopes of other keys read
 * {"other_subject": true}.
 */
static Jsonb *
decrypt_members(Jsonb *img, int64 entry_id, const char *image, int64 only_key)
{
	JsonbParseState *st = NULL;
	ImageSeal	is;
	Member	   *m;
	int			n;
	int			nenv;

	if (!JB_ROOT_IS_OBJECT(img))
		return img;
	m = image_members(img, &n, &nenv);
	if (nenv == 0)
		return img;
	open_image_seal(&is, m, n, entry_id, image, only_key);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		pushJsonbValue(&st, WJB_KEY, &m[i].name);
		switch (m[i].kind)
		{
			case AUDIT_ENV_CRM1:
				if (only_key != 0 && m[i].key_id != only_key)
					push_marker(&st, "other_subject");
				else
					push_decrypted(&st, entry_id, image, &m[i].name, m[i].key_id,
								   m[i].bytes, m[i].len);
				break;
			case AUDIT_ENV_CRM2:
			case AUDIT_ENV_CRM2_REF:
				if (is.marker != NULL)
					push_marker(&st, is.marker);
				else
					pushJsonbValue(&st, WJB_VALUE,
								   getIthJsonbValueFromContainer(&is.values->root, is.next));
				is.next++;
				break;
			case AUDIT_ENV_NONE:
				pushJsonbValue(&st, WJB_VALUE, &m[i].value);
				break;
		}
	}
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

static const char *const image_names[3] = {"old_row", "new_row", "metadata"};

/* {"old_row": ..., "new_row": ..., "metadata": ...} of an entry, decrypted. */
static Jsonb *
images_object(Datum *img, bool *isnull, int64 entry_id)
{
	JsonbParseState *st = NULL;
	JsonbValue	k,
				v;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	for (int i = 0; i < 3; i++)
	{
		k.val.string.val = (char *) image_names[i];
		k.val.string.len = strlen(image_names[i]);
		pushJsonbValue(&st, WJB_KEY, &k);
		if (isnull[i])
			v.type = jbvNull;
		else
		{
			Jsonb	   *jb = decrypt_members(DatumGetJsonbP(img[i]), entry_id, image_names[i], 0);

			v.type = jbvBinary;
			v.val.binary.data = &jb->root;
			v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
		}
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* SPI connected, running as the owner of audit_log for the reads of the caller. */
static void
log_owner_begin(Oid *save_userid, int *save_sec)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(crm_rel_owner(audit_relids()->log),
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

static void
require_auditor(void)
{
	Oid			role = get_role_oid(AUDITOR_ROLE, true);

	if (!OidIsValid(role) || !has_privs_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read personal values of the audit log"),
				 errdetail("Only roles granted %s may read them.", AUDITOR_ROLE)));
}

/* SQL function: audit_personal_data(entry_id bigint) returns jsonb */
PG_FUNCTION_INFO_V1(audit_personal_data);
Datum
audit_personal_data(PG_FUNCTION_ARGS)
{
	int64		entry_id = PG_GETARG_INT64(0);
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(entry_id)};
	Oid			save_userid;
	int			save_sec;
	Datum		img[3];
	bool		isnull[3];
	volatile bool found = false;

	require_auditor();
	log_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		/*
		 * One entry by id: through the BRIN index (one page range once summarized, see
		 * audit_chain.c), never a scan of the whole log, and not compiled by JIT (the
		 * estimate of a bitmap scan of a large log passes jit_above_cost).
		 */
		int			nest = NewGUCNestLevel();

		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		if (SPI_execute_with_args("SELECT old_row, new_row, metadata FROM crm_security.audit_log "
								  "WHERE id OPERATOR(pg_catalog.=) $1",
								  1, types, args, NULL, true, 2) != SPI_OK_SELECT)
			elog(ERROR, "could not read crm_security.audit_log");
		if (SPI_processed > 0)
		{
			found = true;
			for (int i = 0; i < 3; i++)
			{
				img[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull[i]);
				if (!isnull[i])
					img[i] = SPI_datumTransfer(img[i], false, -1);
			}
		}
		AtEOXact_GUC(true, nest);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();

	PG_RETURN_JSONB_P(images_object(img, isnull, entry_id));
}

/*
 * SQL function: audit_subject_data(tenant_id text, subject text) returns setof record:
 * every entry that holds personal values of the subject, those values decrypted (values of
 * another subject in the same entry, an UPDATE that changed the subject column, read
 * {"other_subject": true}).  One scan of the log for the envelopes of the subject's key.
 * Nothing for a subject without a key: never written, or forgotten.
 */
PG_FUNCTION_INFO_V1(audit_subject_data);
Datum
audit_subject_data(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *tenant = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *subject = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	Oid			save_userid;
	int			save_sec;

	require_auditor();
	audit_check_subject(subject ? text_to_cstring(subject) : NULL,
						tenant ? text_to_cstring(tenant) : NULL);
	InitMaterializedSRF(fcinfo, 0);

	log_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		Oid			ktypes[2] = {TEXTOID, TEXTOID};
		Datum		kargs[2] = {PointerGetDatum(tenant), PointerGetDatum(subject)};
		char		knulls[2] = {tenant ? ' ' : 'n', ' '};
		bool		isnull;

		if (SPI_execute_with_args("SELECT key_id FROM crm_security.audit_subject_keys "
								  "WHERE (tenant_id OPERATOR(pg_catalog.=) $1 OR (tenant_id IS NULL AND $1 IS NULL)) "
								  "AND subject OPERATOR(pg_catalog.=) $2",
								  2, ktypes, kargs, knulls, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read crm_security.audit_subject_keys");
		if (SPI_processed == 1)
		{
			int64		key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull));
			Oid			types[1] = {TEXTOID};
			Datum		args[1] = {audit_envelope_key_pattern(key_id)};
			Portal		portal;

			portal = SPI_cursor_open_with_args(NULL,
											   "SELECT id, logged_at, kind, table_name, operation, record_key, "
											   "old_row, new_row, metadata FROM crm_security.audit_log "
											   "WHERE " AUDIT_HOLDS_KEY_SQL " ORDER BY id",
											   1, types, args, NULL, true, CURSOR_OPT_NO_SCROLL);
			for (;;)
			{
				SPITupleTable *tt;

				SPI_cursor_fetch(portal, true, 100);
				tt = SPI_tuptable;
				if (SPI_processed == 0)
					break;
				for (uint64 r = 0; r < SPI_processed; r++)
				{
					HeapTuple	tup = tt->vals[r];
					Datum		values[9];
					bool		nulls[9];
					int64		entry_id;

					for (int c = 0; c < 9; c++)
						values[c] = SPI_getbinval(tup, tt->tupdesc, c + 1, &nulls[c]);
					entry_id = DatumGetInt64(values[0]);
					for (int i = 0; i < 3; i++)
						if (!nulls[6 + i])
							values[6 + i] = JsonbPGetDatum(decrypt_members(DatumGetJsonbP(values[6 + i]),
																		   entry_id, image_names[i],
																		   key_id));
					tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				}
				SPI_freetuptable(tt);
			}
			SPI_cursor_close(portal);
		}
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum) 0;
}
