/*
 * keystore_internal.c
 *		The extension's own signing key: one HS256 secret in jwt_keys under a reserved kid
 *		and issuer (keystore_internal.h), created on first use, which signs the tokens that
 *		carry API-key contexts (apikey_context.c) and service tokens (service_token.c).
 *
 * The key is a row of the key store like any other, so every process (parallel workers,
 * other backends) verifies what it signed against its own copy of the store, and a
 * change of the row reaches them by the store's invalidation.  It differs in three ways:
 *	- only this file writes it: the row check of jwt_keys (keystore_admin.c) refuses every
 *	  insert or update of a row with the reserved kid or issuer unless it comes from here,
 *	  so add_jwt_key(), import_jwks() and disable_jwt_key() can neither replace, add to,
 *	  nor disable it (the owner may DELETE it: the next use creates a new one, and every
 *	  token the old one signed is refused);
 *	- only it verifies tokens of the reserved kid, and a token of any other key that claims
 *	  the reserved issuer is refused (keystore.c);
 *	- pg_dump leaves it out (sql/30_context.sql): a restored database makes its own.
 * The table is readable by its owner only, like every secret of the store.
 */
#include "postgres.h"

#include <openssl/rand.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "b64url.h"
#include "crm_security.h"
#include "jwt.h"
#include "keys.h"
#include "keystore.h"
#include "keystore_internal.h"

static bool ks_internal_in_write = false;

bool
ks_internal_reserved(const char *kid, const char *issuer)
{
	return (kid != NULL && strcmp(kid, KS_INTERNAL_KID) == 0) ||
		(issuer != NULL && strcmp(issuer, KS_INTERNAL_ISSUER) == 0);
}

bool
ks_internal_writing(void)
{
	return ks_internal_in_write;
}

/* The owner of jwt_keys (the extension's owner). */
static Oid
ks_internal_owner(void)
{
	return crm_table_owner("jwt_keys");
}

static const char *ks_internal_find_sql =
"SELECT 1 FROM crm_security.jwt_keys AS k"
" WHERE k.kid OPERATOR(pg_catalog.=) $1 AND k.issuer OPERATOR(pg_catalog.=) $2";

static const char *ks_internal_insert_sql =
"INSERT INTO crm_security.jwt_keys (kid, algorithm, key, issuer) VALUES ($1, $2, $3, $4)"
" ON CONFLICT ON CONSTRAINT jwt_keys_kid_issuer_key DO NOTHING";

void
ks_internal_ensure(void)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	unsigned char rnd[48];
	char	   *secret;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ks_internal_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(KS_INTERNAL_KID);
	values[1] = CStringGetTextDatum(KS_INTERNAL_ISSUER);
	if (SPI_execute_with_args(ks_internal_find_sql, 2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the internal signing key");
	if (SPI_processed == 0)
	{
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes")));
		secret = b64url_encode_palloc(rnd, sizeof(rnd));
		explicit_bzero(rnd, sizeof(rnd));
		values[1] = CStringGetTextDatum(KS_INTERNAL_ALG);
		values[2] = CStringGetTextDatum(secret);
		values[3] = CStringGetTextDatum(KS_INTERNAL_ISSUER);
		ks_internal_in_write = true;
		PG_TRY();
		{
			if (SPI_execute_with_args(ks_internal_insert_sql, 4, types, values, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not create the internal signing key");
		}
		PG_FINALLY();
		{
			ks_internal_in_write = false;
			explicit_bzero(secret, strlen(secret));
		}
		PG_END_TRY();
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

text *
ks_internal_sign(Jsonb *claims)
{
	const CrmKey *key = ks_internal_signing_key();

	if (key == NULL)
	{
		ks_internal_ensure();
		key = ks_internal_signing_key();
		if (key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the extension's signing key is disabled"),
					 errhint("Delete its row from crm_security.jwt_keys: the next use creates a new one.")));
	}
	return jwt_sign_claims(claims, key, crm_alg_lookup(KS_INTERNAL_ALG), NULL);
}

/* Seconds since the Unix epoch of a timestamp, as a JSON number (milliseconds, rounded down). */
void
ks_internal_append_time(StringInfo buf, const char *name, TimestampTz t)
{
	int64		ms = t / 1000 + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;

	if (t < 0 && t % 1000 != 0)
		ms--;
	appendStringInfo(buf, ",\"%s\":" INT64_FORMAT ".%03d", name, ms / 1000, (int) (ms % 1000));
}
