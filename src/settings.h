/*
 * settings.h
 *		Helpers for settings (settings.c).
 */
#ifndef CRM_SETTINGS_H
#define CRM_SETTINGS_H

/*
 * Whether the setting `name` has a value stacked by this transaction, that is, was set
 * (SET, SET LOCAL, set_config, a function's SET clause) since the transaction began.
 */
extern bool setting_set_in_this_transaction(const char *name);

/* Empty a setting at session level (SET name = ''), as of the current transaction. */
extern void setting_erase(const char *name, int elevel);

/* Set a setting for the rest of the transaction (SET LOCAL name = value; NULL: ''). */
extern void setting_set_local(const char *name, const char *value);

#endif							/* CRM_SETTINGS_H */
