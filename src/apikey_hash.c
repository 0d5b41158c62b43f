/*
 * apikey_hash.c
 *		How API keys are stored: hash_api_key() and the pepper settings.
 *
 * Only a hash of a key is ever stored: SHA-256 of the key, or, when the superuser-only
 * setting crm_security.api_key_pepper is set, HMAC-SHA256 of the key keyed by the pepper,
 * so that a copy of the tables without the server's configuration cannot even confirm a
 * guessed key.  Every stored hash records its scheme; a key stored as SHA-256 keeps
 * verifying after a pepper is set.  When the pepper changes, the old value goes into
 * crm_security.api_key_pepper_previous until every key hashed with it is rotated (see
 * docs/api-keys.md).
 *
 * Neither setting can be read back by anyone: SHOW, current_setting() and pg_settings
 * say "(set)" or nothing (superusers and pg_read_all_settings included; pg_settings lists
 * neither setting), and they may not be stored where other roles can read them (ALTER
 * DATABASE/ROLE ... SET, a function's SET clause): the check hook refuses those sources.
 */
#include "postgres.h"

#include <openssl/crypto.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "apikey_hash.h"
#include "crypto.h"
#include "keys.h"

#define APIKEY_PEPPER_MIN 32

static char *apikey_pepper = NULL;
/* While the settings are being defined: a value set before the library was loaded is
 * re-applied then, and a refusal must not raise inside _PG_init (guc.c only warns). */
static bool apikey_defining = false;
static char *apikey_pepper_previous = NULL;

/* Kept HMAC contexts, keyed once per pepper value; dropped when the pepper changes. */
static EVP_MAC_CTX *apikey_hmac_current = NULL;
static EVP_MAC_CTX *apikey_hmac_previous = NULL;

/*
 * A pepper may only come from where no other role can read it: the configuration files,
 * the command line, or SET by a superuser; and SET refuses one too short to be a key.
 * guc.c's own refusal would log the failing statement, pepper included, so where a
 * refusal is an ERROR (SET, and the check of ALTER DATABASE/ROLE ... SET and of a
 * function's SET clause) the hook raises it itself, without the statement; elsewhere (a
 * setting of the catalog applied at connection) guc.c only warns, with the message below,
 * which names no value.
 */
static bool
apikey_pepper_check(char **newval, void **extra, GucSource source)
{
	const char *msg = NULL;
	const char *detail = NULL;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (source == PGC_S_DATABASE || source == PGC_S_USER ||
		source == PGC_S_DATABASE_USER || source == PGC_S_TEST)
	{
		msg = "an API key pepper cannot be stored in the catalog";
		detail = "Values set with ALTER DATABASE, ALTER ROLE or a function's SET clause are readable by every role.";
	}
	else if (source == PGC_S_SESSION && strlen(*newval) < APIKEY_PEPPER_MIN)
	{
		msg = "an API key pepper is too short";
		detail = psprintf("An API key pepper has at least %d bytes.", APIKEY_PEPPER_MIN);
	}
	if (msg == NULL)
		return true;
	if ((source == PGC_S_TEST || source == PGC_S_SESSION) && !apikey_defining)
	{
		/* guc.c's copy of the value is ours to free when we do not return. */
		explicit_bzero(*newval, strlen(*newval));
		free(*newval);
		*newval = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", msg),
				 errdetail("%s", detail),
				 errhint("Set it in postgresql.conf or with ALTER SYSTEM."),
				 errhidestmt(true)));
	}
	GUC_check_errmsg("%s", msg);
	GUC_check_errdetail("%s", detail);
	return false;
}

static void
apikey_pepper_assign(const char *newval, void *extra)
{
	if (apikey_hmac_current)
		EVP_MAC_CTX_free(apikey_hmac_current);
	apikey_hmac_current = NULL;
}

static void
apikey_pepper_previous_assign(const char *newval, void *extra)
{
	if (apikey_hmac_previous)
		EVP_MAC_CTX_free(apikey_hmac_previous);
	apikey_hmac_previous = NULL;
}

static const char *
apikey_pepper_show(void)
{
	return (apikey_pepper && apikey_pepper[0]) ? "(set)" : "";
}

static const char *
apikey_pepper_previous_show(void)
{
	return (apikey_pepper_previous && apikey_pepper_previous[0]) ? "(set)" : "";
}

void
apikey_hash_init(void)
{
	apikey_defining = true;
	DefineCustomStringVariable("crm_security.api_key_pepper",
							   "Secret key of the HMAC-SHA256 under which API keys are stored (empty: SHA-256).",
							   "Never shown; set it in postgresql.conf or with ALTER SYSTEM.",
							   &apikey_pepper, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   apikey_pepper_check, apikey_pepper_assign, apikey_pepper_show);
	DefineCustomStringVariable("crm_security.api_key_pepper_previous",
							   "The pepper before the last change, still accepted for keys stored under it.",
							   "Never shown; clear it once every key stored under it has been rotated.",
							   &apikey_pepper_previous, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   apikey_pepper_check, apikey_pepper_previous_assign,
							   apikey_pepper_previous_show);
	apikey_defining = false;
}

ApiKeyHashScheme
apikey_current_scheme(void)
{
	return (apikey_pepper && apikey_pepper[0]) ? APIKEY_SCHEME_HMAC : APIKEY_SCHEME_SHA256;
}

const char *
apikey_scheme_name(ApiKeyHashScheme scheme)
{
	return scheme == APIKEY_SCHEME_SHA256 ? "sha256" : "hmac-sha256";
}

bool
apikey_hash(const char *key, int len, ApiKeyHashScheme scheme, unsigned char *out)
{
	const char *pepper;
	EVP_MAC_CTX **slot;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (scheme == APIKEY_SCHEME_SHA256)
	{
		crm_sha256(key, len, out);
		return true;
	}
	pepper = scheme == APIKEY_SCHEME_HMAC ? apikey_pepper : apikey_pepper_previous;
	slot = scheme == APIKEY_SCHEME_HMAC ? &apikey_hmac_current : &apikey_hmac_previous;
	if (pepper == NULL || pepper[0] == '\0')
		return false;
	crm_hmac_keyed(slot, crm_alg_md(crm_alg_lookup("HS256")),
				   (const unsigned char *) pepper, strlen(pepper),
				   (const unsigned char *) key, len, mac, &maclen);
	if (maclen != CRM_SHA256_LEN)
		elog(ERROR, "HMAC-SHA256 gave %u bytes", maclen);
	memcpy(out, mac, CRM_SHA256_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return true;
}

/*
 * SQL function: hash_api_key(api_key text) returns bytea
 * The hash under which a key is stored now (HMAC-SHA256 with the pepper, else SHA-256).
 */
PG_FUNCTION_INFO_V1(crm_hash_api_key);
Datum
crm_hash_api_key(PG_FUNCTION_ARGS)
{
	ErrorContextCallback hide;
	text	   *key;
	bytea	   *result = palloc(VARHDRSZ + CRM_SHA256_LEN);

	keys_hide_statement_push(&hide);
	key = PG_GETARG_TEXT_PP(0);
	SET_VARSIZE(result, VARHDRSZ + CRM_SHA256_LEN);
	(void) apikey_hash(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), apikey_current_scheme(),
					   (unsigned char *) VARDATA(result));
	keys_hide_statement_pop(&hide);
	PG_RETURN_BYTEA_P(result);
}
