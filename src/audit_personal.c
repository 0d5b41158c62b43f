/*
 * audit_personal.c
 *		Personal values in audit entries (docs/privacy.md): the values of a table's
 *		personal columns in old_row and new_row, and chosen members of an event's metadata,
 *		are replaced by an envelope
 *
 *			{"enc": "crm1.<key id>.<base64url(nonce | ciphertext | tag)>"}
 *
 *		before the entry is hashed: AES-256-GCM under the data key of their subject
 *		(audit_subject_keys.c), a fresh 96-bit nonce each, the plaintext being the value's
 *		jsonb text, and as associated data the entry id, the image (old_row, new_row,
 *		metadata), the column or member name and the key id.  An envelope copied to
 *		another entry, image or column does not decrypt.  The entry hash covers the
 *		envelope, so destroying the key (forget_subject()) erases the value and leaves the
 *		chain intact.  audit_personal_data() gives auditors the images decrypted.
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

#include "audit_entry.h"
#include "audit_personal.h"
#include "audit_rel.h"
#include "audit_subject_keys.h"
#include "b64url.h"
#include "crypto.h"
#include "json_util.h"

#define ENV_KEY "enc"
#define ENV_PREFIX "crm1."
#define AAD_TAG "crm_security.personal.v1"
#define AUDITOR_ROLE "crm_security_auditor"

/*
 * The associated data of one value,
 *		AAD_TAG "\nentry=<id>\nimage=<len>:<image>\nname=<len>:<name>\nkey=<id>",
 * written into buf (AAD_BUF bytes) when it fits, else into memory of its own.
 */
#define AAD_BUF 256

static char *
value_aad(char *buf, int64 entry_id, const char *image, const char *name, int namelen,
		  int64 key_id, int *len)
{
	size_t		imagelen = strlen(image);
	size_t		need = sizeof(AAD_TAG) + 32 + imagelen + namelen + 4 * (MAXINT8LEN + 1);
	char	   *out = need <= AAD_BUF ? buf : palloc(need);
	char	   *p = out;

#define PUT(s, n) (memcpy(p, (s), (n)), p += (n))
	PUT(AAD_TAG "\nentry=", sizeof(AAD_TAG "\nentry=") - 1);
	p += pg_lltoa(entry_id, p);
	PUT("\nimage=", 7);
	p += pg_lltoa((int64) imagelen, p);
	*p++ = ':';
	PUT(image, imagelen);
	PUT("\nname=", 6);
	p += pg_lltoa(namelen, p);
	*p++ = ':';
	PUT(name, namelen);
	PUT("\nkey=", 5);
	p += pg_lltoa(key_id, p);
#undef PUT
	*len = p - out;
	return out;
}

/* The envelope string "crm1.<key id>.<base64url(nonce | ciphertext | tag)>" of pt. */
static void
envelope_string(StringInfo env, const char *pt, int ptlen, int64 entry_id, const char *image,
				const char *name, int namelen, int64 key_id, const uint8 *key)
{
	uint8		small[512];
	uint8	   *buf;
	int			blen;
	char		aadbuf[AAD_BUF];
	char	   *aad;
	int			aadlen;
	int			cap;

	blen = CRM_GCM_NONCE_LEN + ptlen + CRM_GCM_TAG_LEN;
	buf = blen <= (int) sizeof(small) ? small : palloc(blen);
	crm_random_pooled(buf, CRM_GCM_NONCE_LEN);
	aad = value_aad(aadbuf, entry_id, image, name, namelen, key_id, &aadlen);
	crm_aes_gcm_encrypt(key, buf, (uint8 *) aad, aadlen, (const uint8 *) pt, ptlen,
						buf + CRM_GCM_NONCE_LEN, buf + CRM_GCM_NONCE_LEN + ptlen);
	if (aad != aadbuf)
		pfree(aad);

	/* Sized exactly: prefix, key id, dot, the encoding and a terminator. */
	cap = sizeof(ENV_PREFIX) + MAXINT8LEN + 1 + B64URL_ENC_LEN(blen) + 1;
	env->data = palloc(cap);
	env->maxlen = cap;
	env->cursor = 0;
	memcpy(env->data, ENV_PREFIX, sizeof(ENV_PREFIX) - 1);
	env->len = sizeof(ENV_PREFIX) - 1;
	env->len += pg_lltoa(key_id, env->data + env->len);
	env->data[env->len++] = '.';
	env->len += b64url_encode(buf, blen, env->data + env->len);
	env->data[env->len] = '\0';
	if (buf != small)
		pfree(buf);
}

/* The envelope object {"enc": env} as a jsonb container value. */
static void
envelope_value(StringInfo env, JsonbValue *out)
{
	JsonbPair	pair;
	Jsonb	   *jb;

	pair.key.type = jbvString;
	pair.key.val.string.val = ENV_KEY;
	pair.key.val.string.len = sizeof(ENV_KEY) - 1;
	pair.value.type = jbvString;
	pair.value.val.string.val = env->data;
	pair.value.val.string.len = env->len;
	pair.order = 0;
	jb = json_object_from_pairs(&pair, 1);
	out->type = jbvBinary;
	out->val.binary.data = &jb->root;
	out->val.binary.len = VARSIZE(jb) - VARHDRSZ;
}

void
audit_personal_envelope(const AuditPersonalKey *pk, const char *name, int namelen,
						const char *pt, int ptlen, JsonbValue *env, StringInfo text)
{
	StringInfoData s;

	envelope_string(&s, pt, ptlen, pk->entry_id, pk->image, name, namelen, pk->key_id,
					pk->key);
	envelope_value(&s, env);
	/* What jsonb's output writes for it: the string needs no escapes. */
	appendBinaryStringInfo(text, "{\"" ENV_KEY "\": \"", sizeof("{\"" ENV_KEY "\": \"") - 1);
	appendBinaryStringInfo(text, s.data, s.len);
	appendBinaryStringInfo(text, "\"}", 2);
}

/* Push the envelope of value v (not null) into st. */
static void
push_envelope(JsonbParseState **st, JsonbValue *v, int64 entry_id, const char *image,
			  const char *name, int namelen, int64 key_id, const uint8 *key)
{
	StringInfoData pt;
	StringInfoData env;
	JsonbValue	ev;

	/* The plaintext: the value's jsonb text (a scalar written directly, as jsonb would). */
	initStringInfo(&pt);
	if (v->type == jbvBinary)
		(void) JsonbToCString(&pt, v->val.binary.data, v->val.binary.len);
	else
		json_append_scalar(&pt, v);
	envelope_string(&env, pt.data, pt.len, entry_id, image, name, namelen, key_id, key);
	explicit_bzero(pt.data, pt.len);
	envelope_value(&env, &ev);
	pushJsonbValue(st, WJB_VALUE, &ev);
}

static bool
name_in(const char *name, int len, char **names, int n)
{
	for (int i = 0; i < n; i++)
		if ((int) strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return true;
	return false;
}

/*
 * A copy of the object img with the non-null members named in names (all when names is
 * NULL) encrypted under key.
 */
static Jsonb *
encrypt_members(Jsonb *img, char **names, int n, int64 entry_id, const char *image,
				int64 key_id, const uint8 *key)
{
	JsonbIterator *it = JsonbIteratorInit(&img->root);
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue	key_v = {0};
	JsonbIteratorToken r;
	JsonbValue *res = NULL;

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
				if (v.type != jbvNull &&
					(names == NULL || name_in(key_v.val.string.val, key_v.val.string.len, names, n)))
					push_envelope(&st, &v, entry_id, image, key_v.val.string.val,
								  key_v.val.string.len, key_id, key);
				else
					res = pushJsonbValue(&st, r, &v);
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
	uint8		key[CRM_GCM_KEY_LEN];
	int64		key_id;
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
	key_id = audit_subject_key(tenant, subject, key);
	res = encrypt_members(md, names, n, entry_id, "metadata", key_id, key);
	explicit_bzero(key, sizeof(key));
	return res;
}

/* --------------------------------------------------------------------------------------
 * Reading: audit_personal_data()
 * --------------------------------------------------------------------------------------
 */

/* The key id and the decoded bytes of an envelope; false when v is not one. */
static bool
parse_envelope(JsonbValue *v, int64 *key_id, uint8 **bytes, int *len)
{
	JsonbValue *s;
	const char *p;
	const char *end;
	const char *dot;
	int64		id = 0;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) != 1)
		return false;
	s = getKeyJsonValueFromContainer(v->val.binary.data, ENV_KEY, strlen(ENV_KEY), NULL);
	if (s == NULL || s->type != jbvString || s->val.string.len < (int) strlen(ENV_PREFIX) + 2 ||
		memcmp(s->val.string.val, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
		return false;
	p = s->val.string.val + strlen(ENV_PREFIX);
	end = s->val.string.val + s->val.string.len;
	dot = memchr(p, '.', end - p);
	if (dot == NULL || dot == p || dot - p > 18)
		return false;
	for (const char *c = p; c < dot; c++)
	{
		if (*c < '0' || *c > '9')
			return false;
		id = id * 10 + (*c - '0');
	}
	*bytes = b64url_decode_palloc(dot + 1, end - dot - 1, len);
	if (*bytes == NULL || *len < CRM_GCM_NONCE_LEN + CRM_GCM_TAG_LEN)
		return false;
	*key_id = id;
	return true;
}

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

/* Push the decrypted value of an envelope, or {"erased": true}. */
static void
push_decrypted(JsonbParseState **st, int64 entry_id, const char *image, JsonbValue *name,
			   int64 key_id, const uint8 *bytes, int len)
{
	uint8		key[CRM_GCM_KEY_LEN];
	JsonbValue	v;

	if (!audit_subject_key_by_id(key_id, key))
	{
		push_marker(st, "erased");
		return;
	}
	else
	{
		int			ptlen = len - CRM_GCM_NONCE_LEN - CRM_GCM_TAG_LEN;
		char	   *pt = palloc(ptlen + 1);
		char		aadbuf[AAD_BUF];
		char	   *aad;
		int			aadlen;
		Jsonb	   *jb;

		aad = value_aad(aadbuf, entry_id, image, name->val.string.val, name->val.string.len,
						key_id, &aadlen);
		if (!crm_aes_gcm_decrypt(key, bytes, (uint8 *) aad, aadlen, bytes + CRM_GCM_NONCE_LEN,
								 ptlen, bytes + CRM_GCM_NONCE_LEN + ptlen, (uint8 *) pt))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("personal value \"%.*s\" in %s of audit entry " INT64_FORMAT " does not decrypt",
							Min(name->val.string.len, 200), name->val.string.val, image, entry_id),
					 errdetail("It was encrypted for another entry, image or column, or altered.")));
		explicit_bzero(key, sizeof(key));
		pt[ptlen] = '\0';
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pt)));
		explicit_bzero(pt, ptlen);
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
}

/*
 * A copy of the object img with every envelope among its members decrypted; with only_key
 * (not 0), the envelopes of other keys read {"other_subject": true}.
 */
static Jsonb *
decrypt_members(Jsonb *img, int64 entry_id, const char *image, int64 only_key)
{
	JsonbIterator *it;
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue	key_v = {0};
	JsonbIteratorToken r;
	JsonbValue *res = NULL;

	if (!JB_ROOT_IS_OBJECT(img))
		return img;
	it = JsonbIteratorInit(&img->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int64		key_id;
		uint8	   *bytes;
		int			len;

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
				if (parse_envelope(&v, &key_id, &bytes, &len))
				{
					if (only_key != 0 && key_id != only_key)
						push_marker(&st, "other_subject");
					else
						push_decrypted(&st, entry_id, image, &key_v, key_id, bytes, len);
					res = NULL;
				}
				else
					res = pushJsonbValue(&st, r, &v);
				break;
			default:
				elog(ERROR, "unexpected jsonb token in an audit image");
		}
	}
	return JsonbValueToJsonb(res);
}

Datum
audit_personal_key_pattern(int64 key_id)
{
	char		pat[32];

	/* Every envelope of the key begins so (docs/privacy.md, "Envelope"). */
	snprintf(pat, sizeof(pat), "\"" ENV_PREFIX INT64_FORMAT ".", key_id);
	return CStringGetTextDatum(pat);
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
	SetUserIdAndSecContext(audit_rel_owner(audit_relids()->log),
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
	text	   *subject;
	Oid			save_userid;
	int			save_sec;

	require_auditor();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id cannot be null")));
	subject = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(subject) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id cannot be empty")));
	if (VARSIZE_ANY_EXHDR(subject) > AUDIT_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data subject id is too long"),
				 errdetail("The limit is %d bytes.", AUDIT_SUBJECT_MAX)));
	if (tenant != NULL && VARSIZE_ANY_EXHDR(tenant) > AUDIT_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id is too long"),
				 errdetail("The limit is %d bytes.", AUDIT_SUBJECT_MAX)));
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
			Datum		args[1] = {audit_personal_key_pattern(key_id)};
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
