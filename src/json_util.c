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
