/*
 * json_util.h
 *		Strict JSON parsing of untrusted input, and compact serialization.
 */
#ifndef CRM_JSON_UTIL_H
#define CRM_JSON_UTIL_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/* Deepest nesting of arrays and objects accepted in untrusted JSON. */
#define CRM_JSON_MAX_DEPTH 64

/*
 * Parse untrusted bytes as a JSON object: valid UTF-8 without NUL, nesting at most
 * CRM_JSON_MAX_DEPTH, numbers of sane size, no duplicate member names at the top level.
 * Returns NULL and sets *why (a sentence for errdetail) when the input is not acceptable;
 * never raises for bad input.
 */
extern Jsonb *json_parse_object(const char *data, int len, const char **why);

/* A top-level member of an object, or NULL when absent. */
extern JsonbValue *json_member(JsonbContainer *obj, const char *key);

/* A top-level string member as a palloc'd C string; NULL when absent; *ok false when not a string. */
extern char *json_member_string(JsonbContainer *obj, const char *key, bool *ok);

/* Append the compact serialization (no insignificant whitespace) of a container. */
extern void json_append_compact(StringInfo out, JsonbContainer *jc);

/* Append one JSON string literal (escaped as escape_json() does; stops at a NUL byte). */
extern void json_append_string(StringInfo out, const char *s, int len);

/* Append a scalar as JsonbToCString() writes it. */
extern void json_append_scalar(StringInfo out, const JsonbValue *v);

/*
 * A jsonb object of members given in jsonb key order with unique keys, written directly
 * in jsonb's binary format; values are scalars or containers in binary form (jbvBinary).
 */
extern Jsonb *json_object_from_pairs(const JsonbPair *pairs, int n);

#endif							/* CRM_JSON_UTIL_H */
