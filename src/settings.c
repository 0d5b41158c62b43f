/*
 * settings.c
 *		Helpers for the claim context's settings: whether a setting was set in this
 *		transaction, setting one for the transaction, erasing one.
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "settings.h"

/* Setting names compare as guc.c compares them: ASCII letters without case. */
static int
setting_name_compare(const char *a, const char *b)
{
	while (*a && *b)
	{
		char		ca = *a++;
		char		cb = *b++;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return ca - cb;
	}
	if (*a)
		return 1;
	if (*b)
		return -1;
	return 0;
}

/*
 * Whether the setting `name` has a value stacked by this transaction, that is, was set (SET,
 * SET LOCAL, set_config, a function's SET clause) since the transaction began.  guc.c keeps
 * its array sorted by name; a scan backs the binary search up should that ever change.
 */
bool
setting_set_in_this_transaction(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			lo = 0,
				hi = n - 1,
				i;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = setting_name_compare(name, vars[mid]->name);

		if (c == 0)
			return vars[mid]->stack != NULL;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	for (i = 0; i < n; i++)
		if (setting_name_compare(name, vars[i]->name) == 0)
			return vars[i]->stack != NULL;
	return false;
}

/* Empty a setting at session level (SET name = ''), as of the current transaction. */
void
setting_erase(const char *name, int elevel)
{
	(void) set_config_option(name, "", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, elevel, false);
}

/* Set a setting for the rest of the transaction (SET LOCAL name = value; NULL: ''). */
void
setting_set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value ? value : "", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

