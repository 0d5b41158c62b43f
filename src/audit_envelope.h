/*
 * audit_envelope.h
 *		Envelopes of personal values in audit entries: their two formats, how they are
 *		made, recognised and opened (audit_envelope.c, docs/privacy.md "Envelopes").
 */
#ifndef CRM_AUDIT_ENVELOPE_H
#define CRM_AUDIT_ENVELOPE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "audit_personal.h"

/* The format written (crm_security.audit_envelope_format); both are always read. */
typedef enum AuditEnvelopeFormat
{
	AUDIT_ENVELOPE_CRM1 = 1,	/* one envelope per value */
	AUDIT_ENVELOPE_CRM2 = 2		/* one envelope per image (the default) */
} AuditEnvelopeFormat;

extern int	audit_envelope_format;

extern void audit_envelope_init(void);

/*
 * crm1: the envelope of one value whose jsonb text is pt (of member name) as a jsonb
 * object in *env (jbvBinary, valid until the memory context is reset).
 */
extern void audit_envelope_value(const AuditPersonalKey *pk, const char *name, int namelen,
								 const char *pt, int ptlen, JsonbValue *env);

/*
 * Append the text of an envelope or reference that audit_envelope_value() or
 * audit_seal_finish() made, as jsonb's output writes it, to out.
 */
extern void audit_envelope_text(const JsonbValue *env, StringInfo out);

/*
 * crm2: the personal values of one image, sealed together.  audit_seal_value() starts a
 * value of member name (in the image's member order; the name must stay where it is until
 * the seal is finished or opened) and returns where its jsonb text is to be appended;
 * audit_seal_finish() encrypts them and gives the envelope, which takes the place of the
 * first value, and the reference to it, which takes the place of each other one, as jsonb
 * values (jbvBinary, valid until the memory context is reset).  It wipes the plaintext.
 */
#define AUDIT_SEAL_NAMES 8

typedef struct AuditSealName
{
	const char *name;
	int			len;
} AuditSealName;

typedef struct AuditSeal
{
	StringInfoData pt;			/* "[<value>, <value>, ...]" */
	int			n;
	int			namebytes;		/* the names' lengths added up */
	AuditSealName inl[AUDIT_SEAL_NAMES];	/* the first names */
	AuditSealName *more;		/* all of them, once there are more */
	int			cap;
} AuditSeal;

extern void audit_seal_init(AuditSeal *s);
extern StringInfo audit_seal_value(AuditSeal *s, const char *name, int namelen);
extern void audit_seal_finish(AuditSeal *s, const AuditPersonalKey *pk, JsonbValue *env,
							  JsonbValue *ref);

/* What a member's value is. */
typedef enum AuditEnvelopeKind
{
	AUDIT_ENV_NONE,				/* a plain value */
	AUDIT_ENV_CRM1,				/* {"enc": "crm1.<key id>.<base64url>"} */
	AUDIT_ENV_CRM2,				/* {"enc": "crm2.<key id>.<base64url>"} */
	AUDIT_ENV_CRM2_REF			/* {"enc": "crm2.<key id>~<nonce characters>"} */
} AuditEnvelopeKind;

/*
 * The kind of v, its key id, and for an envelope its decoded bytes (nonce, ciphertext,
 * tag; palloc'd), for a reference the first bytes of its envelope's nonce (palloc'd).
 */
extern AuditEnvelopeKind audit_envelope_parse(JsonbValue *v, int64 *key_id, uint8 **bytes,
											  int *len);

/* Whether a reference's nonce bytes are the first bytes of the envelope's. */
extern bool audit_envelope_ref_matches(const uint8 *env, int envlen, const uint8 *ref,
									   int reflen);

/*
 * crm1: the plaintext (NUL-terminated jsonb text) of an envelope of member name, or NULL
 * when it does not decrypt.
 */
extern char *audit_envelope_open_value(const uint8 *key, int64 key_id, int64 entry_id,
									   const char *image, const char *name, int namelen,
									   const uint8 *bytes, int len);

/*
 * crm2: the plaintext (NUL-terminated jsonb text of an array) of an image's envelope, its
 * members named in names as audit_seal_value() wrote them, or NULL when it does not
 * decrypt.
 */
extern char *audit_envelope_open_image(const uint8 *key, int64 key_id, int64 entry_id,
									   const char *image, const AuditSeal *names,
									   const uint8 *bytes, int len);

/*
 * The entries holding envelopes of one data key: an SQL condition on audit_log whose $1
 * (text) is audit_envelope_key_pattern(key_id), a LIKE pattern of the text every
 * envelope of the key begins with in an image's text, in either format.
 */
#define AUDIT_HOLDS_KEY_SQL \
	"pg_catalog.concat(old_row::pg_catalog.text, new_row::pg_catalog.text, " \
	"metadata::pg_catalog.text) OPERATOR(pg_catalog.~~) $1"
extern Datum audit_envelope_key_pattern(int64 key_id);

#endif							/* CRM_AUDIT_ENVELOPE_H */
