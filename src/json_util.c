/*
 * json_util.c
 *		Strict JSON parsing of untrusted input, and compact serialization.
 *
 * Token headers and payloads, JWKs and the like come from outside.  They are checked
 * here before PostgreSQL's own JSON parser sees them, so that every bad input ends as a
 * clean refusal of the caller's choosing instead of a stack-depth or numeric-overflow
 * error, and so that a duplicated member ("alg" twice) cannot mean one thing to us and
 * another to some other parser.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "json_util.h"

/* Longest JSON number we accept, in characters, and largest exponent. */
#define JSON_MAX_NUMBER_LEN 256
#define JSON_MAX_EXPONENT 1000

/* State of the one-pass parse of untrusted JSON straight into a JsonbValue tree. */
typedef struct JsonBuildState
{
	JsonLexContext *lex;
	JsonbParseState *parse_state;
	JsonbValue *result;
	int			top_fields;		/* members of the top-level object */
	bool		bad_number;
	bool		top_scalar;
} JsonBuildState;

static void
json_build_object_start(void *state)
{
	JsonBuildState *st = (JsonBuildState *) state;

	st->result = pushJsonbValue(&st->parse_state, WJB_BEGIN_OBJECT, NULL);
}

static void
json_build_object_end(void *state)
{
	JsonBuildState *st = (JsonBuildState *) state;

	st->result = pushJsonbValue(&st->parse_state, WJB_END_OBJECT, NULL);
}

static void
json_build_array_start(void *state)
{
	JsonBuildState *st = (JsonBuildState *) state;

	st->result = pushJsonbValue(&st->parse_state, WJB_BEGIN_ARRAY, NULL);
}

static void
json_build_array_end(void *state)
{
	JsonBuildState *st = (JsonBuildState *) state;

	st->result = pushJsonbValue(&st->parse_state, WJB_END_ARRAY, NULL);
}

static void
json_build_field(void *state, char *fname, bool isnull)
{
	JsonBuildState *st = (JsonBuildState *) state;
	JsonbValue	v;

	if (st->lex->lex_level == 1)
		st->top_fields++;
	v.type = jbvString;
	v.val.string.len = strlen(fname);
	v.val.string.val = fname;
	st->result = pushJsonbValue(&st->parse_state, WJB_KEY, &v);
}

/* A number is acceptable when short and of modest exponent (numeric_in cannot fail then). */
static bool
json_number_ok(const char *token)
{
	const char *e;

	if (strlen(token) > JSON_MAX_NUMBER_LEN)
		return false;
	e = strpbrk(token, "eE");
	if (e != NULL)
	{
		long		exp = strtol(e + 1, NULL, 10);

		if (exp > JSON_MAX_EXPONENT || exp < -JSON_MAX_EXPONENT)
			return false;
	}
	return true;
}

static void
json_build_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonBuildState *st = (JsonBuildState *) state;
	JsonbValue	v;

	if (st->parse_state == NULL)
	{
		st->top_scalar = true;
		return;
	}
	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.len = strlen(token);
			v.val.string.val = token;
			break;
		case JSON_TOKEN_NUMBER:
			if (!json_number_ok(token))
			{
				st->bad_number = true;
				v.type = jbvNull;
				break;
			}
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
			v.type = jbvBool;
			v.val.boolean = true;
			break;
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = false;
			break;
		default:
			v.type = jbvNull;
			break;
	}
	st->result = pushJsonbValue(&st->parse_state,
								st->parse_state->contVal.type == jbvArray ? WJB_ELEM : WJB_VALUE,
								&v);
}

/* Nesting depth of JSON text, counting brackets outside strings. */
static int
json_depth(const char *s, int len)
{
	int			depth = 0,
				max = 0;
	bool		in_string = false;
	int			i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > max)
				max = depth;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return max;
}

/* Whether UTF-8 bytes convert to the server encoding (no error raised). */
static bool
json_utf8_fits(Oid proc, const unsigned char *src, int len)
{
	int			destlen = len * MAX_CONVERSION_GROWTH + 1;
	unsigned char *dest = palloc(destlen);
	int			done;

	done = pg_do_encoding_conversion_buf(proc, PG_UTF8, GetDatabaseEncoding(),
										 (unsigned char *) src, len, dest, destlen, true);
	pfree(dest);
	return done == len;
}

static int
json_hex4(const char *s)
{
	int			v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		char		c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * In a database whose encoding is not UTF-8, every character, raw or written as a \u
 * escape, must exist in that encoding; PostgreSQL's JSON parser would raise a conversion
 * error otherwise, which would not say "invalid token".
 */
static bool
json_representable(const char *data, int len)
{
	int			enc = GetDatabaseEncoding();
	Oid			proc = InvalidOid;
	int			i;

	if (enc == PG_UTF8)
		return true;
	if (enc != PG_SQL_ASCII)
	{
		proc = FindDefaultConversionProc(PG_UTF8, enc);
		if (!OidIsValid(proc) || !json_utf8_fits(proc, (const unsigned char *) data, len))
			return false;
	}
	for (i = 0; i + 1 < len; i++)
	{
		int			cp;
		unsigned char utf8[8];

		if (data[i] != '\\')
			continue;
		if (data[i + 1] != 'u' || i + 6 > len || (cp = json_hex4(data + i + 2)) < 0)
		{
			i++;				/* another escape: skip the escaped character */
			continue;
		}
		i += 5;
		if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len && data[i + 1] == '\\' &&
			data[i + 2] == 'u')
		{
			int			lo = json_hex4(data + i + 3);

			if (lo >= 0xDC00 && lo <= 0xDFFF)
			{
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
		}
		if (cp <= 0x7F)
			continue;
		if (enc == PG_SQL_ASCII)
			return false;
		unicode_to_utf8((pg_wchar) cp, utf8);
		if (!json_utf8_fits(proc, utf8, pg_utf_mblen(utf8)))
			return false;
	}
	return true;
}

Jsonb *
json_parse_object(const char *data, int len, const char **why)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonBuildState st;
	JsonParseErrorType err;
	char	   *str;

	*why = NULL;
	if (len == 0)
	{
		*why = "It is empty.";
		return NULL;
	}
	if (!pg_verify_mbstr(PG_UTF8, data, len, true))
	{
		*why = "It is not valid UTF-8.";
		return NULL;
	}
	if (json_depth(data, len) > CRM_JSON_MAX_DEPTH)
	{
		*why = psprintf("It nests arrays and objects deeper than %d levels.", CRM_JSON_MAX_DEPTH);
		return NULL;
	}

	/* The server encoding may differ; the input is UTF-8 by definition. */
	if (!json_representable(data, len))
	{
		*why = "It contains characters that the database encoding cannot represent.";
		return NULL;
	}
	str = pg_any_to_server(data, len, PG_UTF8);
	if (str == data)
		str = pnstrdup(data, len);

	memset(&sem, 0, sizeof(sem));
	memset(&st, 0, sizeof(st));
	lex = makeJsonLexContextCstringLen(str, strlen(str), GetDatabaseEncoding(), true);
	st.lex = lex;
	sem.semstate = &st;
	sem.object_start = json_build_object_start;
	sem.object_end = json_build_object_end;
	sem.array_start = json_build_array_start;
	sem.array_end = json_build_array_end;
	sem.object_field_start = json_build_field;
	sem.scalar = json_build_scalar;
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS)
	{
		*why = "It is not valid JSON.";
		return NULL;
	}
	if (st.bad_number)
	{
		*why = "It contains a number that is too long or too large.";
		return NULL;
	}
	if (st.top_scalar || st.result == NULL || st.result->type != jbvObject)
	{
		*why = "It is not a JSON object.";
		return NULL;
	}
	/* pushJsonbValue keeps the last of duplicate keys; refuse them instead. */
	if (st.result->val.object.nPairs != st.top_fields)
	{
		*why = "It contains a member name more than once.";
		return NULL;
	}
	return JsonbValueToJsonb(st.result);
}

JsonbValue *
json_member(JsonbContainer *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

char *
json_member_string(JsonbContainer *obj, const char *key, bool *ok)
{
	JsonbValue *v = json_member(obj, key);

	*ok = true;
	if (v == NULL)
		return NULL;
	if (v->type != jbvString)
	{
		*ok = false;
		return NULL;
	}
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A string as JSON text, exactly as escape_json() writes it (which JsonbToCString() uses):
 * the text ends at a NUL byte; runs of plain bytes are copied at once.
 */
void
json_append_string(StringInfo out, const char *str, int len)
{
	const char *end = str + len;
	const char *run = str;
	const char *p;

	appendStringInfoCharMacro(out, '"');
	for (p = str; p < end && *p != '\0'; p++)
	{
		unsigned char ch = (unsigned char) *p;
		const char *esc;

		if (ch >= ' ' && ch != '"' && ch != '\\')
			continue;
		if (p > run)
			appendBinaryStringInfo(out, run, p - run);
		run = p + 1;
		switch (ch)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				appendStringInfo(out, "\\u%04x", (int) ch);
				continue;
		}
		appendBinaryStringInfo(out, esc, 2);
	}
	if (p > run)
		appendBinaryStringInfo(out, run, p - run);
	appendStringInfoCharMacro(out, '"');
}

void
json_append_scalar(StringInfo out, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(out, "null");
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvString:
			json_append_string(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

void
json_append_compact(StringInfo out, JsonbContainer *jc)
{
	JsonbIterator *it = JsonbIteratorInit(jc);
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		need_comma = false;

	if (JsonContainerIsScalar(jc))
	{
		JsonbValue	sv;

		JsonbExtractScalar(jc, &sv);
		json_append_scalar(out, &sv);
		return;
	}
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				if (need_comma)
					appendStringInfoChar(out, ',');
				appendStringInfoChar(out, '[');
				need_comma = false;
				break;
			case WJB_BEGIN_OBJECT:
				if (need_comma)
					appendStringInfoChar(out, ',');
				appendStringInfoChar(out, '{');
				need_comma = false;
				break;
			case WJB_KEY:
				if (need_comma)
					appendStringInfoChar(out, ',');
				json_append_scalar(out, &v);
				appendStringInfoChar(out, ':');
				need_comma = false;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				if (need_comma && tok == WJB_ELEM)
					appendStringInfoChar(out, ',');
				json_append_scalar(out, &v);
				need_comma = true;
				break;
			case WJB_END_ARRAY:
				appendStringInfoChar(out, ']');
				need_comma = true;
				break;
			case WJB_END_OBJECT:
				appendStringInfoChar(out, '}');
				need_comma = true;
				break;
			default:
				break;
		}
	}
}

/*
 * A jsonb object of scalar members, written directly in jsonb's binary format (the
 * layout of utils/jsonb.h) rather than through a JsonbValue tree.  The pairs must be in
 * jsonb key order (shorter keys first, then bytewise), with unique keys, and their values
 * scalars (null, string, numeric, bool) or containers already in jsonb's binary format
 * (jbvBinary, e.g. &jb->root of another Jsonb, copied as they are): the result is then
 * byte for byte what JsonbValueToJsonb() gives for the same object.
 */
Jsonb *
json_object_from_pairs(const JsonbPair *pairs, int n)
{
	StringInfoData buf;
	uint32		header = (uint32) n | JB_FOBJECT;
	int			metaoff;
	uint32		totallen = 0;
	Size		estimate = VARHDRSZ + sizeof(uint32) + 2 * n * sizeof(JEntry);

	for (int i = 0; i < n; i++)
	{
		const JsonbValue *v = &pairs[i].value;

		estimate += pairs[i].key.val.string.len;
		if (v->type == jbvString)
			estimate += v->val.string.len;
		else if (v->type == jbvNumeric)
			estimate += VARSIZE_ANY(v->val.numeric) + 3;
		else if (v->type == jbvBinary)
			estimate += v->val.binary.len + 3;
	}
	/* An upper bound of the size: one allocation, not a default buffer then a larger one. */
	buf.data = palloc(estimate + 1);
	buf.maxlen = estimate + 1;
	buf.cursor = 0;
	buf.len = VARHDRSZ;
	appendBinaryStringInfo(&buf, (const char *) &header, sizeof(uint32));
	metaoff = buf.len;
	buf.len += 2 * n * sizeof(JEntry);

	for (int i = 0; i < 2 * n; i++)
	{
		const JsonbValue *v = i < n ? &pairs[i].key : &pairs[i - n].value;
		uint32		type;
		uint32		len = 0;
		JEntry		meta;

		switch (v->type)
		{
			case jbvString:
				type = JENTRY_ISSTRING;
				len = v->val.string.len;
				appendBinaryStringInfo(&buf, v->val.string.val, len);
				break;
			case jbvNumeric:
				{
					int			pad = INTALIGN(buf.len) - buf.len;
					int			numlen = VARSIZE_ANY(v->val.numeric);

					type = JENTRY_ISNUMERIC;
					for (int p = 0; p < pad; p++)
						appendStringInfoCharMacro(&buf, '\0');
					appendBinaryStringInfo(&buf, (const char *) v->val.numeric, numlen);
					len = pad + numlen;
					break;
				}
			case jbvBinary:
				{
					/* A container: int-aligned like a numeric, the padding in its length. */
					int			pad = INTALIGN(buf.len) - buf.len;

					if (JsonContainerIsScalar(v->val.binary.data))
						elog(ERROR, "unexpected scalar container in an object of pairs");
					type = JENTRY_ISCONTAINER;
					for (int p = 0; p < pad; p++)
						appendStringInfoCharMacro(&buf, '\0');
					appendBinaryStringInfo(&buf, (const char *) v->val.binary.data,
										   v->val.binary.len);
					len = pad + v->val.binary.len;
					break;
				}
			case jbvBool:
				type = v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
				break;
			case jbvNull:
				type = JENTRY_ISNULL;
				break;
			default:
				elog(ERROR, "unexpected jsonb value type %d in an object of pairs", (int) v->type);
		}
		totallen += len;
		if (totallen > JENTRY_OFFLENMASK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
							JENTRY_OFFLENMASK)));
		/* Every JB_OFFSET_STRIDE'th entry holds the end offset instead of the length. */
		meta = (i % JB_OFFSET_STRIDE) == 0 ? (type | totallen | JENTRY_HAS_OFF) : (type | len);
		memcpy(buf.data + metaoff + i * sizeof(JEntry), &meta, sizeof(JEntry));
	}
	SET_VARSIZE(buf.data, buf.len);
	return (Jsonb *) buf.data;
}
