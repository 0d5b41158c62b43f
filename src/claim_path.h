/*
 * claim_path.h
 *		The one resolver of claim paths (claim_path.c).
 */
#ifndef CRM_CLAIM_PATH_H
#define CRM_CLAIM_PATH_H

#include "utils/jsonb.h"

/*
 * The resolver used by claim() and for every claim setting.  A path is a member name, or
 * names joined by dots ("app_metadata.tenant_id"); names may contain dots themselves
 * ("https://crm.example.com/tenant").  At each level the longest member name that is the
 * whole remaining path, or the part of it before one of its dots, is taken, and the rest is
 * looked up inside that member; in an array the next segment is a decimal index.  A member
 * named by the whole path therefore wins over a nested path spelling the same.  Sets *out
 * (pointing into `claims`) and returns true when found; false when absent or when `claims`
 * is NULL.  A path that is empty or has an empty segment raises 22023.
 */
extern bool claim_path_value(const Jsonb *claims, const char *path, JsonbValue *out);

/*
 * The same claim as text (strings without quotes, numbers and booleans as JSON, objects
 * and arrays as JSON), or NULL when absent or JSON null.
 */
extern char *claim_path_text(const Jsonb *claims, const char *path);

#endif							/* CRM_CLAIM_PATH_H */
