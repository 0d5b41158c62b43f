/*
 * audit_envelope.c
 *		Envelopes of personal values in audit entries (docs/privacy.md, "Envelopes"):
 *		AES-256-GCM under the data key of the values' subject, a fresh 96-bit nonce each
 *		envelope, associated data binding it to its entry, image and member names and to
 *		the key id.  Two formats, both always read:
 *
 *	crm2 (the default): the personal values of one image (old_row, new_row, metadata)
 *		sealed together.  The first personal member holds
 *			{"enc": "crm2.<key id>.<base64url(nonce | ciphertext | tag)>"},
 *		the plaintext being the jsonb text of the array of the values in member order;
 *		each other personal member holds a reference to it,
 *			{"enc": "crm2.<key id>~<the first 8 characters of the envelope's encoding>"},
 *		characters of the envelope's nonce.  The associated data names every member
 *		sealed, so moving a value, the envelope or a reference to another entry, image or
 *		member makes the envelope fail to decrypt, and a reference names its envelope.
 *
 *	crm1 (crm_security.audit_envelope_format = crm1): one envelope per value,
 *		{"enc": "crm1.<key id>.<base64url>"}, the plaintext the value's jsonb text, the
 *		member name in the associated data.
 *
 * crm2 makes one AES-GCM operation and one nonce and tag per image instead of per value:
 * entries are smaller and cheaper to write, the more so the more personal columns a table
 * has, and the length of each value is no longer visible (only their sum).  crm1 keeps a
 * ciphertext with a nonce of its own in every personal member, and is what 0.1.0 wrote.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/guc.h"

#include "audit_envelope.h"
#include "b64url.h"
#include "crypto.h"

#define ENV_KEY "enc"
#define ENV_PREFIX1 "crm1."
#define ENV_PREFIX2 "crm2."
#define ENV_PREFIX_LEN 5
/*
 * A crm2 reference ends with the first bytes of its envelope's nonce, base64url-encoded
 * (6 bytes, 8 characters): a reference copied from another image does not match.
 */
#define REF_NONCE_BYTES 6
#define REF_NONCE_CHARS 8
#define AAD_TAG1 "crm_security.personal.v1"
#define AAD_TAG2 "crm_security.personal.v2"

int			audit_envelope_format = AUDIT_ENVELOPE_CRM2;

static const struct config_enum_entry envelope_format_options[] = {
	{"crm1", AUDIT_ENVELOPE_CRM1, false},
	{"crm2", AUDIT_ENVELOPE_CRM2, false},
	{NULL, 0, false}
};

void
audit_envelope_init(void)
{
	DefineCustomEnumVariable("crm_security.audit_envelope_format",
							 "Format of the envelopes of personal values written to the audit log: crm2 (one per image) or crm1 (one per value).",
							 "Both formats are always read.",
							 &audit_envelope_format, AUDIT_ENVELOPE_CRM2, envelope_format_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * Associated data
 *
 *	crm1: AAD_TAG1 "\nentry=<id>\nimage=<len>:<image>\nname=<len>:<name>\nkey=<id>"
 *	crm2: AAD_TAG2 "\nentry=<id>\nimage=<len>:<image>\nkey=<id>\nvalues=<n>" and
 *		  "\n<len>:<name>" for each value
 *
 * written into buf (AAD_BUF bytes) when it fits, else into memory of its own.
 */
#define AAD_BUF 256

#define PUT(p, s, n) (memcpy((p), (s), (n)), (p) += (n))

static char *
aad_head(char *p, const char *tag, int taglen, int64 entry_id, const char *image, size_t imagelen)
{
	PUT(p, tag, taglen);
	PUT(p, "\nentry=", 7);
	p += pg_lltoa(entry_id, p);
	PUT(p, "\nimage=", 7);
	p += pg_lltoa((int64) imagelen, p);
	*p++ = ':';
	PUT(p, image, imagelen);
	return p;
}

static char *
aad_value(char *buf, int64 entry_id, const char *image, const char *name, int namelen,
		  int64 key_id, int *len)
{
	size_t		imagelen = strlen(image);
	size_t		need = sizeof(AAD_TAG1) + 32 + imagelen + namelen + 4 * (MAXINT8LEN + 1);
	char	   *out = need <= AAD_BUF ? buf : palloc(need);
	char	   *p;

	p = aad_head(out, AAD_TAG1, sizeof(AAD_TAG1) - 1, entry_id, image, imagelen);
	PUT(p, "\nname=", 6);
	p += pg_lltoa(namelen, p);
	*p++ = ':';
	PUT(p, name, namelen);
	PUT(p, "\nkey=", 5);
	p += pg_lltoa(key_id, p);
	*len = p - out;
	return out;
}

static char *
aad_image(char *buf, int64 entry_id, const char *image, int64 key_id, const AuditSeal *s,
		  int *len)
{
	size_t		imagelen = strlen(image);
	const AuditSealName *names = s->more != NULL ? s->more : s->inl;
	size_t		need = sizeof(AAD_TAG2) + 32 + imagelen + 4 * (MAXINT8LEN + 1) +
		(Size) s->namebytes + (Size) s->n * (MAXINT8LEN + 2);
	char	   *out = need <= AAD_BUF ? buf : palloc(need);
	char	   *p;

	p = aad_head(out, AAD_TAG2, sizeof(AAD_TAG2) - 1, entry_id, image, imagelen);
	PUT(p, "\nkey=", 5);
	p += pg_lltoa(key_id, p);
	PUT(p, "\nvalues=", 8);
	p += pg_lltoa(s->n, p);
	/* "\n<len>:<name>" for each value */
	for (int i = 0; i < s->n; i++)
	{
		*p++ = '\n';
		p += pg_lltoa(names[i].len, p);
		*p++ = ':';
		PUT(p, names[i].name, names[i].len);
	}
	*len = p - out;
	return out;
}

#undef PUT

/*
 * A {"enc": "<string>"} object in *out (jbvBinary), laid out in jsonb's binary format as
 * json_object_from_pairs() would lay it out (the header of one pair, the key's and the
 * value's JEntry, the key, the string), with room for a string of len bytes: the caller
 * writes it at the address returned.
 */
#define ENV_KEY_LEN (sizeof(ENV_KEY) - 1)
#define ENV_HEAD (3 * sizeof(uint32) + ENV_KEY_LEN)

static char *
envelope_object(int len, JsonbValue *out)
{
	Size		size = VARHDRSZ + ENV_HEAD + len;
	char	   *jb;
	uint32		w[3];

	if (len > JENTRY_OFFLENMASK - ENV_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
						JENTRY_OFFLENMASK)));
	jb = palloc(size);
	/* The first entry holds its end offset (JB_OFFSET_STRIDE), the second its length. */
	w[0] = 1 | JB_FOBJECT;
	w[1] = JENTRY_ISSTRING | JENTRY_HAS_OFF | ENV_KEY_LEN;
	w[2] = JENTRY_ISSTRING | (uint32) len;
	SET_VARSIZE(jb, size);
	memcpy(jb + VARHDRSZ, w, sizeof(w));
	memcpy(jb + VARHDRSZ + sizeof(w), ENV_KEY, ENV_KEY_LEN);
	out->type = jbvBinary;
	out->val.binary.data = (JsonbContainer *) (jb + VARHDRSZ);
	out->val.binary.len = size - VARHDRSZ;
	return jb + VARHDRSZ + ENV_HEAD;
}

void
audit_envelope_text(const JsonbValue *env, StringInfo out)
{
	const char *str = (const char *) env->val.binary.data + ENV_HEAD;
	int			len = env->val.binary.len - ENV_HEAD;

	Assert(env->type == jbvBinary && env->val.binary.len >= (int) ENV_HEAD);
	/* What jsonb's output writes for it: the string needs no escapes. */
	enlargeStringInfo(out, len + ENV_KEY_LEN + 8);
	appendBinaryStringInfo(out, "{\"" ENV_KEY "\": \"", sizeof("{\"" ENV_KEY "\": \"") - 1);
	appendBinaryStringInfo(out, str, len);
	appendBinaryStringInfo(out, "\"}", 2);
}

/*
 * The envelope {"enc": "<prefix><key id>.<base64url(nonce | ciphertext | tag)>"} of pt
 * under key with associated data aad, in *env; its string is returned.
 */
static const char *
seal_into(JsonbValue *env, const char *prefix, const char *pt, int ptlen,
		  const char *aad, int aadlen, int64 key_id, const uint8 *key)
{
	uint8		small[512];
	uint8	   *buf;
	int			blen;
	char		id[MAXINT8LEN + 1];
	int			idlen = pg_lltoa(key_id, id);
	char	   *str;
	char	   *p;

	blen = CRM_GCM_NONCE_LEN + ptlen + CRM_GCM_TAG_LEN;
	buf = blen <= (int) sizeof(small) ? small : palloc(blen);
	crm_random_pooled(buf, CRM_GCM_NONCE_LEN);
	crm_aes_gcm_encrypt(key, key_id, buf, (const uint8 *) aad, aadlen, (const uint8 *) pt, ptlen,
						buf + CRM_GCM_NONCE_LEN, buf + CRM_GCM_NONCE_LEN + ptlen);
	str = p = envelope_object(ENV_PREFIX_LEN + idlen + 1 + B64URL_ENC_LEN(blen), env);
	memcpy(p, prefix, ENV_PREFIX_LEN);
	p += ENV_PREFIX_LEN;
	memcpy(p, id, idlen);
	p += idlen;
	*p++ = '.';
	(void) b64url_encode(buf, blen, p);
	if (buf != small)
		pfree(buf);
	return str;
}

void
audit_envelope_value(const AuditPersonalKey *pk, const char *name, int namelen,
					 const char *pt, int ptlen, JsonbValue *env)
{
	char		aadbuf[AAD_BUF];
	char	   *aad;
	int			aadlen;

	aad = aad_value(aadbuf, pk->entry_id, pk->image, name, namelen, pk->key_id, &aadlen);
	(void) seal_into(env, ENV_PREFIX1, pt, ptlen, aad, aadlen, pk->key_id, pk->key);
	if (aad != aadbuf)
		pfree(aad);
}

void
audit_seal_init(AuditSeal *s)
{
	initStringInfo(&s->pt);
	appendStringInfoCharMacro(&s->pt, '[');
	s->n = 0;
	s->namebytes = 0;
	s->more = NULL;
	s->cap = AUDIT_SEAL_NAMES;
}

StringInfo
audit_seal_value(AuditSeal *s, const char *name, int namelen)
{
	AuditSealName *names;

	if (s->n == s->cap)
	{
		/* More names than fit in the seal: all of them in memory of their own. */
		if (s->more == NULL)
		{
			s->more = palloc(sizeof(AuditSealName) * s->cap * 2);
			memcpy(s->more, s->inl, sizeof(AuditSealName) * s->n);
		}
		else
			s->more = repalloc(s->more, sizeof(AuditSealName) * s->cap * 2);
		s->cap *= 2;
	}
	names = s->more != NULL ? s->more : s->inl;
	names[s->n].name = name;
	names[s->n].len = namelen;
	s->namebytes += namelen;
	if (s->n > 0)
		appendBinaryStringInfo(&s->pt, ", ", 2);
	s->n++;
	return &s->pt;
}

void
audit_seal_finish(AuditSeal *s, const AuditPersonalKey *pk, JsonbValue *env, JsonbValue *ref)
{
	char		aadbuf[AAD_BUF];
	char	   *aad;
	int			aadlen;
	const char *e;
	const char *dot;
	char	   *r;
	int			head;

	Assert(s->n > 0);
	appendStringInfoCharMacro(&s->pt, ']');
	aad = aad_image(aadbuf, pk->entry_id, pk->image, pk->key_id, s, &aadlen);
	e = seal_into(env, ENV_PREFIX2, s->pt.data, s->pt.len, aad, aadlen, pk->key_id, pk->key);
	if (aad != aadbuf)
		pfree(aad);
	explicit_bzero(s->pt.data, s->pt.len);
	pfree(s->pt.data);
	if (s->more != NULL)
		pfree(s->more);
	/*
	 * The envelope's "crm2.<key id>", "~" and the first characters of its encoding (its
	 * nonce's first bytes).
	 */
	dot = memchr(e + ENV_PREFIX_LEN, '.', MAXINT8LEN + 1);
	Assert(dot != NULL);
	head = dot - e;
	r = envelope_object(head + 1 + REF_NONCE_CHARS, ref);
	memcpy(r, e, head);
	r[head] = '~';
	memcpy(r + head + 1, dot + 1, REF_NONCE_CHARS);
}

AuditEnvelopeKind
audit_envelope_parse(JsonbValue *v, int64 *key_id, uint8 **bytes, int *len)
{
	JsonbValue *s;
	const char *p;
	const char *end;
	const char *c;
	int64		id = 0;
	bool		crm2;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) != 1)
		return AUDIT_ENV_NONE;
	s = getKeyJsonValueFromContainer(v->val.binary.data, ENV_KEY, strlen(ENV_KEY), NULL);
	if (s == NULL || s->type != jbvString || s->val.string.len < ENV_PREFIX_LEN + 1)
		return AUDIT_ENV_NONE;
	p = s->val.string.val;
	if (memcmp(p, ENV_PREFIX2, ENV_PREFIX_LEN) == 0)
		crm2 = true;
	else if (memcmp(p, ENV_PREFIX1, ENV_PREFIX_LEN) == 0)
		crm2 = false;
	else
		return AUDIT_ENV_NONE;
	p += ENV_PREFIX_LEN;
	end = s->val.string.val + s->val.string.len;
	for (c = p; c < end && *c >= '0' && *c <= '9'; c++)
		id = id * 10 + (*c - '0');
	if (c == p || c - p > 18)
		return AUDIT_ENV_NONE;
	*key_id = id;
	if (crm2 && *c == '~')
	{
		/* A reference: its nonce bytes, checked by audit_envelope_ref_matches(). */
		if (end - c != 1 + REF_NONCE_CHARS)
			return AUDIT_ENV_NONE;
		*bytes = b64url_decode_palloc(c + 1, REF_NONCE_CHARS, len);
		if (*bytes == NULL)
			return AUDIT_ENV_NONE;
		return AUDIT_ENV_CRM2_REF;
	}
	if (c == end || *c != '.')
		return AUDIT_ENV_NONE;
	c++;
	*bytes = b64url_decode_palloc(c, end - c, len);
	if (*bytes == NULL || *len < CRM_GCM_NONCE_LEN + CRM_GCM_TAG_LEN)
		return AUDIT_ENV_NONE;
	return crm2 ? AUDIT_ENV_CRM2 : AUDIT_ENV_CRM1;
}

bool
audit_envelope_ref_matches(const uint8 *env, int envlen, const uint8 *ref, int reflen)
{
	StaticAssertStmt(B64URL_ENC_LEN(REF_NONCE_BYTES) == REF_NONCE_CHARS,
					 "the nonce bytes of a reference fill its characters");
	return envlen >= REF_NONCE_BYTES && reflen == REF_NONCE_BYTES &&
		memcmp(env, ref, REF_NONCE_BYTES) == 0;
}

/* The plaintext of bytes (nonce, ciphertext, tag) under key and aad, or NULL. */
static char *
open_bytes(const uint8 *key, int64 key_id, const char *aad, int aadlen, const uint8 *bytes, int len)
{
	int			ptlen = len - CRM_GCM_NONCE_LEN - CRM_GCM_TAG_LEN;
	char	   *pt = palloc(ptlen + 1);

	if (!crm_aes_gcm_decrypt(key, key_id, bytes, (const uint8 *) aad, aadlen, bytes + CRM_GCM_NONCE_LEN,
							 ptlen, bytes + CRM_GCM_NONCE_LEN + ptlen, (uint8 *) pt))
	{
		pfree(pt);
		return NULL;
	}
	pt[ptlen] = '\0';
	return pt;
}

char *
audit_envelope_open_value(const uint8 *key, int64 key_id, int64 entry_id, const char *image,
						  const char *name, int namelen, const uint8 *bytes, int len)
{
	char		aadbuf[AAD_BUF];
	char	   *aad;
	int			aadlen;
	char	   *pt;

	aad = aad_value(aadbuf, entry_id, image, name, namelen, key_id, &aadlen);
	pt = open_bytes(key, key_id, aad, aadlen, bytes, len);
	if (aad != aadbuf)
		pfree(aad);
	return pt;
}

char *
audit_envelope_open_image(const uint8 *key, int64 key_id, int64 entry_id, const char *image,
						  const AuditSeal *names, const uint8 *bytes, int len)
{
	char		aadbuf[AAD_BUF];
	char	   *aad;
	int			aadlen;
	char	   *pt;

	aad = aad_image(aadbuf, entry_id, image, key_id, names, &aadlen);
	pt = open_bytes(key, key_id, aad, aadlen, bytes, len);
	if (aad != aadbuf)
		pfree(aad);
	return pt;
}

Datum
audit_envelope_key_pattern(int64 key_id)
{
	char		pat[40];

	/*
	 * Every envelope of the key begins so, in either format (see the top of this file):
	 * one LIKE pattern, its "_" standing for the format's digit, costs one pass over the
	 * text of an entry.
	 */
	snprintf(pat, sizeof(pat), "%%\"crm_." INT64_FORMAT ".%%", key_id);
	return CStringGetTextDatum(pat);
}
