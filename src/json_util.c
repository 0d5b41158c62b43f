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

typedef struct JsonCheckState
{
	JsonLexContext *lex;
	int			top_fields;		/* members of the top-level object */
	bool		bad_number;
} JsonCheckState;

static void
json_check_field(void *state, char *fname, bool isnull)
{
	JsonCheckState *st = (JsonCheckState *) state;

	if (st->lex->lex_level == 1)
		st->top_fields++;
}

static void
json_check_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonCheckState *st = (JsonCheckState *) state;
	const char *e;

	if (tokentype != JSON_TOKEN_NUMBER)
		return;
	if (strlen(token) > JSON_MAX_NUMBER_LEN)
	{
		st->bad_number = true;
		return;
	}
	e = strpbrk(token, "eE");
	if (e != NULL)
	{
		long		exp = strtol(e + 1, NULL, 10);

		if (exp > JSON_MAX_EXPONENT || exp < -JSON_MAX_EXPONENT)
			st->bad_number = true;
	}
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

Jsonb *
json_parse_object(const char *data, int len, const char **why)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonCheckState st;
	JsonParseErrorType err;
	char	   *str;
	Jsonb	   *jb;

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
	str = pg_any_to_server(data, len, PG_UTF8);
	if (str == data)
		str = pnstrdup(data, len);

	memset(&sem, 0, sizeof(sem));
	memset(&st, 0, sizeof(st));
	lex = makeJsonLexContextCstringLen(str, strlen(str), GetDatabaseEncoding(), true);
	st.lex = lex;
	sem.semstate = &st;
	sem.object_field_start = json_check_field;
	sem.scalar = json_check_scalar;
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

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
	if (!JB_ROOT_IS_OBJECT(jb))
	{
		*why = "It is not a JSON object.";
		return NULL;
	}
	if (JB_ROOT_COUNT(jb) != st.top_fields)
	{
		*why = "It contains a member name more than once.";
		return NULL;
	}
	return jb;
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

void
json_append_string(StringInfo out, const char *s, int len)
{
	char	   *tmp = pnstrdup(s, len);

	escape_json(out, tmp);
	pfree(tmp);
}

static void
json_append_scalar(StringInfo out, JsonbValue *v)
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

Jsonb *
json_value_to_jsonb(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}
