/*
 * apikey_verify.h
 *		Verification of API keys (apikey_verify.c), for verify_api_key() and the API-key
 *		context.
 */
#ifndef CRM_APIKEY_VERIFY_H
#define CRM_APIKEY_VERIFY_H

#include <sys/socket.h>

#include "utils/array.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* A verified key: what a context of its holder is made of. */
typedef struct ApiKeyVerified
{
	pg_uuid_t	id;
	text	   *tenant_id;		/* NULL: a key of no tenant */
	ArrayType  *scopes;			/* effective scopes (text[]): stored plus implied */
	text	   *name;
	TimestampTz valid_until;	/* earliest of its expiry and its grace end; DT_NOEND: none */
} ApiKeyVerified;

/*
 * Verify `key` (NULL: none given) for `service` and `client_ip` (NULL: none), count the use
 * and fill *out; raise 28000 with the reason (53400 over a limit) otherwise.  The caller
 * keeps the statement out of the log (keys_hide_statement_push) and runs with the rights
 * of the tables' owner.
 */
extern void apikey_verify(text *key, text *service, inet *client_ip, ApiKeyVerified *out);

/*
 * The owner of the API key tables (the extension's owner), whose rights verification runs
 * with: callers switch to it around apikey_verify().
 */
extern Oid	apikey_tables_owner(void);

#endif							/* CRM_APIKEY_VERIFY_H */
