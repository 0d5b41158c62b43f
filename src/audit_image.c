/*
 * audit_image.c
 *		Row images: the jsonb objects {column: value, ...} of an audited row (record_key,
 *		old_row, new_row) and an UPDATE's changed_columns, each built together with its
 *		canonical text, so that hashing the entry does not render them again.
 *
 * A column's value becomes what to_jsonb() gives for it; common types are converted
 * directly, by a plan made once per table description (audit_image_cols()).  The value
 * of a personal column (docs/privacy.md) becomes its envelope in the same walk, under
 * the data key of the image's subject (audit_personal.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "audit_entry.h"
#include "audit_envelope.h"
#include "audit_image.h"
#include "audit_personal.h"
#include "audit_rel.h"
#include "json_util.h"

/* How one column becomes a jsonb value; the same result as to_jsonb() gives. */
typedef enum AuditColKind
{
	AC_TEXT,					/* text, varchar: a string of its bytes */
	AC_INT,						/* int2, int4, int8: a number */
	AC_NUMERIC,					/* numeric: a number, NaN and infinities as strings */
	AC_BOOL,
	AC_JSONB,					/* embedded as is */
	AC_DATETIME,				/* date, timestamp, timestamptz: ISO 8601 string */
	AC_OTHER					/* to_jsonb() of the value */
} AuditColKind;

struct AuditCol
{
	AttrNumber	attnum;
	Oid			typid;
	AuditColKind kind;
	JsonbValue	key;			/* the column name as a jsonb key */
	char	   *key_text;		/* ... as jsonb's output writes it, with ": " */
	int			key_text_len;
	FmgrInfo	to_jsonb;		/* AC_OTHER, and NaN/infinite numerics */
	int8		personal;		/* a personal column: 0 not known yet, 1 no, 2 yes */
	/* AC_DATETIME: the last value and its text (rows of a statement often share it). */
	bool		dt_valid;
	Datum		dt_value;
	pg_tz	   *dt_tz;			/* the session time zone it was written in */
	int			dt_len;
	char		dt_text[MAXDATELEN + 1];
};

/* jsonb's order of object keys: shorter first, then bytewise. */
static int
audit_cmp_cols(const void *a, const void *b)
{
	const JsonbValue *ka = &((const AuditCol *) a)->key;
	const JsonbValue *kb = &((const AuditCol *) b)->key;

	if (ka->val.string.len != kb->val.string.len)
		return ka->val.string.len < kb->val.string.len ? -1 : 1;
	return memcmp(ka->val.string.val, kb->val.string.val, ka->val.string.len);
}

/* Per-column conversion plans, in the memory context cxt (current). */
AuditCol *
audit_image_cols(TupleDesc src, const AttrNumber *attnums, int n, MemoryContext cxt)
{
	AuditCol   *cols = palloc0(sizeof(AuditCol) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src, attnums[i] - 1);
		AuditCol   *c = &cols[i];
		FuncExpr   *fexpr;

		c->attnum = attnums[i];
		c->typid = att->atttypid;
		c->key.type = jbvString;
		c->key.val.string.val = pstrdup(NameStr(att->attname));
		c->key.val.string.len = strlen(c->key.val.string.val);
		{
			StringInfoData kt;

			initStringInfo(&kt);
			json_append_string(&kt, c->key.val.string.val, c->key.val.string.len);
			appendBinaryStringInfo(&kt, ": ", 2);
			c->key_text = kt.data;
			c->key_text_len = kt.len;
		}
		switch (att->atttypid)
		{
			case TEXTOID:
			case VARCHAROID:
				c->kind = AC_TEXT;
				break;
			case INT2OID:
			case INT4OID:
			case INT8OID:
				c->kind = AC_INT;
				break;
			case NUMERICOID:
				c->kind = AC_NUMERIC;
				break;
			case BOOLOID:
				c->kind = AC_BOOL;
				break;
			case JSONBOID:
				c->kind = AC_JSONB;
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				c->kind = AC_DATETIME;
				break;
			default:
				c->kind = AC_OTHER;
				break;
		}
		/* to_jsonb() learns its argument type from the call expression. */
		fmgr_info_cxt(F_TO_JSONB, &c->to_jsonb, cxt);
		fexpr = makeFuncExpr(F_TO_JSONB, JSONBOID,
							 list_make1(makeNullConst(att->atttypid, att->atttypmod, att->attcollation)),
							 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		fmgr_info_set_expr((Node *) fexpr, &c->to_jsonb);
	}
	/* In jsonb key order, so that building the object finds its keys already sorted. */
	qsort(cols, n, sizeof(AuditCol), audit_cmp_cols);
	return cols;
}

/* A jsonb document as one value: scalars unwrapped (true), containers as binary (false). */
static bool
audit_jsonb_value(Jsonb *jb, JsonbValue *v)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, v))
			elog(ERROR, "could not extract jsonb scalar");
		return true;
	}
	v->type = jbvBinary;
	v->val.binary.data = &jb->root;
	v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
	return false;
}

/*
 * The jsonb object {column: value, ...} of the given columns of a row, and its text
 * (what jsonb's output function gives: the canonical text of the image) appended to out.
 *
 * The columns are already in jsonb key order and their names are unique, so when every
 * value is a scalar the object is built directly from its pairs and its text written
 * from the same values (integers without a round trip through numeric).  A value that
 * is a container (a jsonb object or array, an array, a composite) takes the general
 * path: pushJsonbValue() and JsonbToCString() of the result.
 */
typedef struct AuditImage
{
	JsonbPair  *pairs;
	int64	   *ints;			/* AC_INT values */
	int		   *off;			/* where each value's text starts in the texts buffer */
	int		   *len;
	bool		scalars;		/* built on the direct path */
} AuditImage;

static Datum
audit_cols_jsonb(AuditRelInfo *info, AuditCol *cols, int n, TupleTableSlot *slot,
				 StringInfo out, AuditImage *img, const AuditImage *prev, const bool *same,
				 const AuditPersonalKey *pk)
{
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(n, 1));
	int64	   *ints = palloc(sizeof(int64) * Max(n, 1));
	/* reused[i]: taken from the old image; sealed[i]: an envelope or a reference. */
	bool	   *reused = palloc0(sizeof(bool) * 2 * Max(n, 1));
	bool	   *sealed = reused + Max(n, 1);
	bool		scalars = true;
	Jsonb	   *res;
	/* Personal values: sealed together (crm2) or each in its envelope (crm1). */
	bool		crm2 = audit_envelope_format == AUDIT_ENVELOPE_CRM2;
	AuditSeal	seal;
	StringInfoData pt;

	if (pk != NULL)
	{
		if (crm2)
			audit_seal_init(&seal);
		else
			initStringInfo(&pt);
	}

	/* An UPDATE's new image takes the unchanged values of the old one as they are. */
	if (prev != NULL && !prev->scalars)
		prev = NULL;
	img->pairs = pairs;
	img->ints = ints;
	img->off = palloc(sizeof(int) * Max(n, 1));
	img->len = palloc(sizeof(int) * Max(n, 1));
	slot_getallattrs(slot);
	for (int i = 0; i < n; i++)
	{
		AuditCol   *c = &cols[i];
		Datum		d = slot->tts_values[c->attnum - 1];
		JsonbValue *v = &pairs[i].value;

		pairs[i].key = c->key;
		pairs[i].order = i;
		if (pk != NULL && c->personal == 0)
			c->personal = audit_personal_column(info, c->key.val.string.val,
												c->key.val.string.len) ? 2 : 1;
		/* A personal value is encrypted again: another image, a fresh nonce. */
		if (prev != NULL && same[c->attnum - 1] && !(pk != NULL && c->personal == 2))
		{
			*v = prev->pairs[i].value;
			ints[i] = prev->ints[i];
			reused[i] = true;
			continue;
		}
		if (slot->tts_isnull[c->attnum - 1])
		{
			v->type = jbvNull;
			continue;
		}
		switch (c->kind)
		{
			case AC_TEXT:
				{
					text	   *t = DatumGetTextPP(d);

					v->type = jbvString;
					v->val.string.val = VARDATA_ANY(t);
					v->val.string.len = VARSIZE_ANY_EXHDR(t);
					break;
				}
			case AC_INT:
				ints[i] = c->typid == INT2OID ? (int64) DatumGetInt16(d) :
					c->typid == INT4OID ? (int64) DatumGetInt32(d) : DatumGetInt64(d);
				v->type = jbvNumeric;
				v->val.numeric = int64_to_numeric(ints[i]);
				break;
			case AC_NUMERIC:
				{
					Numeric		num = DatumGetNumeric(d);

					if (numeric_is_nan(num) || numeric_is_inf(num))
						scalars &= audit_jsonb_value(DatumGetJsonbP(FunctionCall1(&c->to_jsonb, d)), v);
					else
					{
						v->type = jbvNumeric;
						v->val.numeric = num;
					}
					break;
				}
			case AC_BOOL:
				v->type = jbvBool;
				v->val.boolean = DatumGetBool(d);
				break;
			case AC_JSONB:
				scalars &= audit_jsonb_value(DatumGetJsonbP(d), v);
				break;
			case AC_DATETIME:
				{
					/*
					 * A call nested in this one (user code run by a conversion) uses
					 * its own buffer: the cache may be what an enclosing call's image
					 * points to.
					 */
					if (info->pins > 1)
					{
						char	   *buf = palloc(MAXDATELEN + 1);

						JsonEncodeDateTime(buf, d, c->typid, NULL);
						v->type = jbvString;
						v->val.string.val = buf;
						v->val.string.len = strlen(buf);
						break;
					}
					/* What to_jsonb() does too; the text depends on the time zone. */
					if (!c->dt_valid || c->dt_value != d || c->dt_tz != session_timezone)
					{
						c->dt_valid = false;
						JsonEncodeDateTime(c->dt_text, d, c->typid, NULL);
						c->dt_len = strlen(c->dt_text);
						c->dt_value = d;
						c->dt_tz = session_timezone;
						c->dt_valid = true;
					}
					/*
					 * The cache itself: it changes only for this column's next value, and
					 * an UPDATE's new image reuses the old image's value only when equal.
					 */
					v->type = jbvString;
					v->val.string.val = c->dt_text;
					v->val.string.len = c->dt_len;
					break;
				}
			case AC_OTHER:
				scalars &= audit_jsonb_value(DatumGetJsonbP(FunctionCall1(&c->to_jsonb, d)), v);
				break;
		}

		/*
		 * A personal value is sealed in the walk that builds the image: its plaintext is
		 * the value's jsonb text.
		 */
		if (pk != NULL && c->personal == 2)
		{
			StringInfo	p = &pt;

			if (crm2)
				p = audit_seal_value(&seal, c->key.val.string.val, c->key.val.string.len);
			else
				resetStringInfo(&pt);
			if (v->type == jbvBinary)
				(void) JsonbToCString(p, v->val.binary.data, v->val.binary.len);
			else if (v->type == jbvNumeric && c->kind == AC_INT)
			{
				enlargeStringInfo(p, MAXINT8LEN + 1);
				p->len += pg_lltoa(ints[i], p->data + p->len);
			}
			else
				json_append_scalar(p, v);
			sealed[i] = true;
			if (!crm2)
			{
				audit_envelope_value(pk, c->key.val.string.val, c->key.val.string.len,
									 pt.data, pt.len, v);
				explicit_bzero(pt.data, pt.len);
			}
		}
	}

	/*
	 * crm2: the image's envelope takes the place of the first personal value, a reference
	 * to it the place of the others (crm1 envelopes took theirs in the walk).
	 */
	if (pk != NULL && crm2 && seal.n > 0)
	{
		JsonbValue	env,
					ref;
		bool		first = true;

		audit_seal_finish(&seal, pk, &env, &ref);
		for (int i = 0; i < n; i++)
		{
			if (!sealed[i])
				continue;
			pairs[i].value = first ? env : ref;
			first = false;
		}
	}

	if (scalars)
	{
		res = json_object_from_pairs(pairs, n);

		appendStringInfoCharMacro(out, '{');
		for (int i = 0; i < n; i++)
		{
			JsonbValue *v = &pairs[i].value;

			if (i > 0)
				appendBinaryStringInfo(out, ", ", 2);
			appendBinaryStringInfo(out, cols[i].key_text, cols[i].key_text_len);
			img->off[i] = out->len;
			if (sealed[i])
				audit_envelope_text(v, out);
			else if (reused[i])
			{
				/* Enlarge first: the copy comes from the same buffer. */
				enlargeStringInfo(out, prev->len[i]);
				memcpy(out->data + out->len, out->data + prev->off[i], prev->len[i]);
				out->len += prev->len[i];
				out->data[out->len] = '\0';
			}
			else if (v->type == jbvNumeric && cols[i].kind == AC_INT)
			{
				char		tmp[MAXINT8LEN + 1];
				int			len = pg_lltoa(ints[i], tmp);

				appendBinaryStringInfo(out, tmp, len);
			}
			else
				json_append_scalar(out, v);
			img->len[i] = out->len - img->off[i];
		}
		appendStringInfoCharMacro(out, '}');
	}
	else
	{
		JsonbParseState *st = NULL;

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < n; i++)
		{
			pushJsonbValue(&st, WJB_KEY, &pairs[i].key);
			/* A binary value is pushed as the container it holds. */
			pushJsonbValue(&st, WJB_VALUE, &pairs[i].value);
		}
		res = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		(void) JsonbToCString(out, &res->root, VARSIZE(res));
	}
	img->scalars = scalars;
	pfree(reused);
	if (pk != NULL && !crm2)
		pfree(pt.data);
	return JsonbPGetDatum(res);
}

/* Set a jsonb row image of an entry, with its canonical text in texts (from offset). */
/*
 * image names a row image (old_row, new_row) whose personal values are encrypted, NULL
 * for the record key.
 */
static void
audit_set_image(AuditEntry *e, int col, AuditRelInfo *info, AuditCol *cols, int n,
				TupleTableSlot *slot, StringInfo texts, AuditImage *img, const AuditImage *prev,
				const bool *same, const char *image)
{
	int			start = texts->len;
	AuditImage	local;
	AuditPersonalKey pk;
	bool		personal = image != NULL && info->npersonal > 0;

	if (personal)
		audit_personal_key(e, info, slot, image, &pk);
	e->values[col] = audit_cols_jsonb(info, cols, n, slot, texts, img ? img : &local, prev,
									  same, personal ? &pk : NULL);
	if (personal)
		explicit_bzero(pk.key, sizeof(pk.key));
	e->nulls[col] = false;
	/* Offsets for now: texts may still move as it grows. */
	e->text[col] = (const char *) (uintptr_t) start;
	e->textlen[col] = texts->len - start;
}

/* Turn the offsets of audit_set_image() into pointers, once texts is complete. */
static void
audit_fix_images(AuditEntry *e, StringInfo texts, const int *cols, int ncols)
{
	for (int i = 0; i < ncols; i++)
		e->text[cols[i]] = texts->data + (uintptr_t) e->text[cols[i]];
}

/*
 * The changed_columns of an UPDATE, with its text (array_out()'s) appended to texts, and
 * which stored columns kept their value: same[attnum - 1].
 */
static Datum
audit_changed_columns(AuditRelInfo *info, TupleTableSlot *oldslot, TupleTableSlot *newslot,
					  bool *same, StringInfo texts)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(info->nrow, 1));
	int			n = 0;

	slot_getallattrs(oldslot);
	slot_getallattrs(newslot);
	appendStringInfoCharMacro(texts, '{');
	for (int i = 0; i < info->nrow; i++)
	{
		int			a = info->row_attnums[i] - 1;
		Form_pg_attribute att = TupleDescAttr(info->row_desc, i);
		bool		n1 = oldslot->tts_isnull[a];
		bool		n2 = newslot->tts_isnull[a];

		if (n1 || n2)
			same[a] = (n1 && n2);
		else
			same[a] = datum_image_eq(oldslot->tts_values[a], newslot->tts_values[a],
									 att->attbyval, att->attlen);
		if (!same[a])
		{
			if (n > 0)
				appendStringInfoCharMacro(texts, ',');
			appendStringInfoString(texts, info->row_elems[i]);
			names[n++] = info->row_names[i];
		}
	}
	appendStringInfoCharMacro(texts, '}');
	return PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * The row columns of the entry of one trigger event, with the pinned description info.
 *
 * User code may run while a row image is built (to_jsonb() of a user type calls its cast
 * to json or its output function).  Whatever it does, the entry is built from info
 * alone, which stays as it was (see AuditRelInfo), and its canonical text and hash are
 * computed afterwards from the very values that are stored: nothing user code changes
 * can make them differ.
 */
void
audit_row_images(AuditEntry *e, TriggerData *td, AuditRelInfo *info)
{
	Relation	rel = td->tg_relation;
	TriggerEvent ev = td->tg_event;
	StringInfoData texts;

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
		return;
	initStringInfo(&texts);
	if (TRIGGER_FIRED_BY_INSERT(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_NEW_ROW};

		audit_set_image(e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL, NULL);
		audit_set_image(e, AL_NEW_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						NULL, NULL, NULL, "new_row");
		audit_fix_images(e, &texts, images, lengthof(images));
	}
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_OLD_ROW, AL_NEW_ROW, AL_CHANGED_COLUMNS};
		bool	   *same = palloc(sizeof(bool) * Max(RelationGetDescr(rel)->natts, 1));
		AuditImage	old_img;
		int			start;

		start = texts.len;
		e->values[AL_CHANGED_COLUMNS] = audit_changed_columns(info, td->tg_trigslot,
															  td->tg_newslot, same, &texts);
		e->nulls[AL_CHANGED_COLUMNS] = false;
		e->text[AL_CHANGED_COLUMNS] = (const char *) (uintptr_t) start;
		e->textlen[AL_CHANGED_COLUMNS] = texts.len - start;
		audit_set_image(e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL, NULL);
		audit_set_image(e, AL_OLD_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						&old_img, NULL, NULL, "old_row");
		audit_set_image(e, AL_NEW_ROW, info, info->row_cols, info->nrow, td->tg_newslot, &texts,
						NULL, &old_img, same, "new_row");
		audit_fix_images(e, &texts, images, lengthof(images));
	}
	else if (TRIGGER_FIRED_BY_DELETE(ev))
	{
		static const int images[] = {AL_RECORD_KEY, AL_OLD_ROW};

		audit_set_image(e, AL_RECORD_KEY, info, info->key_cols, info->nkey, td->tg_trigslot, &texts,
						NULL, NULL, NULL, NULL);
		audit_set_image(e, AL_OLD_ROW, info, info->row_cols, info->nrow, td->tg_trigslot, &texts,
						NULL, NULL, NULL, "old_row");
		audit_fix_images(e, &texts, images, lengthof(images));
	}
}
