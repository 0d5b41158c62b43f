/*
 * audit_key.c
 *		The entry key: entry_hash is HMAC-SHA256 of an entry's canonical form under a
 *		32-byte key that lives in a file of the data directory, out of reach of SQL
 *		functions (docs/audit.md, "The entry key").
 *
 * The key file is $PGDATA/crm_security/audit_entry.key, created on first use by the
 * first backend that needs it (random bytes, mode 0600, published with link() so that a
 * concurrent backend either sees the whole file or creates none), read by C only and
 * cached for the life of the backend.  No function returns it; audit_key_fingerprint()
 * tells which key a cluster uses without revealing it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "audit_key.h"
#include "crypto.h"

#define AUDIT_KEY_DIR "crm_security"
#define AUDIT_KEY_FILE AUDIT_KEY_DIR "/audit_entry.key"

static uint8 audit_key[AUDIT_KEY_LEN];
static bool audit_key_loaded = false;
static EVP_MAC_CTX *audit_key_ctx = NULL;

/* Read the key file; false when it does not exist. */
static bool
audit_key_read(const char *path)
{
	int			fd;
	struct stat st;
	ssize_t		n;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the audit entry key file \"%s\": %m", path)));
	}
	if (fstat(fd, &st) != 0 || st.st_size != AUDIT_KEY_LEN)
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the audit entry key file \"%s\" is not a key", path),
				 errdetail("The file must hold exactly %d bytes.", AUDIT_KEY_LEN)));
	}
	n = read(fd, audit_key, AUDIT_KEY_LEN);
	CloseTransientFile(fd);
	if (n != AUDIT_KEY_LEN)
	{
		explicit_bzero(audit_key, AUDIT_KEY_LEN);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the audit entry key file \"%s\"", path)));
	}
	return true;
}

/* Create the key file: a new random key written to a private file, then linked in place. */
static void
audit_key_create(const char *path)
{
	char		tmp[MAXPGPATH];
	uint8		key[AUDIT_KEY_LEN];
	int			fd;
	bool		written;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the audit entry key file \"%s\" is missing", path),
				 errhint("Copy the key file of the primary into this server's data directory.")));
	if (MakePGDirectory(AUDIT_KEY_DIR) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", AUDIT_KEY_DIR)));
	if (!pg_strong_random(key, AUDIT_KEY_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random audit entry key")));
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) MyProcPid);
	(void) unlink(tmp);
	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	written = write(fd, key, AUDIT_KEY_LEN) == AUDIT_KEY_LEN && pg_fsync(fd) == 0;
	explicit_bzero(key, AUDIT_KEY_LEN);
	CloseTransientFile(fd);
	if (!written)
	{
		(void) unlink(tmp);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\"", tmp)));
	}
	/* link() fails if another backend published its key first: then that one counts. */
	if (link(tmp, path) != 0 && errno != EEXIST)
	{
		int			save = errno;

		(void) unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create the audit entry key file \"%s\": %m", path)));
	}
	(void) unlink(tmp);
	fsync_fname(AUDIT_KEY_DIR, true);
}

static void
audit_key_load(void)
{
	if (audit_key_loaded)
		return;
	if (!audit_key_read(AUDIT_KEY_FILE))
	{
		audit_key_create(AUDIT_KEY_FILE);
		if (!audit_key_read(AUDIT_KEY_FILE))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the audit entry key file \"%s\"", AUDIT_KEY_FILE)));
	}
	audit_key_loaded = true;
}

void
audit_key_mac(const void *data, size_t len, uint8 *out)
{
	unsigned int outlen = 0;

	audit_key_load();
	crm_hmac_keyed(&audit_key_ctx, EVP_sha256(), audit_key, AUDIT_KEY_LEN,
				   (const unsigned char *) data, len, out, &outlen);
	if (outlen != CRM_SHA256_LEN)
		elog(ERROR, "unexpected HMAC length");
}

/* SQL function: audit_key_fingerprint() returns text */
PG_FUNCTION_INFO_V1(audit_key_fingerprint);
Datum
audit_key_fingerprint(PG_FUNCTION_ARGS)
{
	static const char label[] = "crm_security.audit_entry_key.fingerprint.v1";
	uint8		derived[CRM_SHA256_LEN];
	uint8		fp[CRM_SHA256_LEN];
	char		hex[CRM_SHA256_LEN * 2 + 1];

	/* SHA-256 of a value derived from the key: names the key, reveals nothing of it. */
	audit_key_mac(label, sizeof(label) - 1, derived);
	crm_sha256(derived, sizeof(derived), fp);
	explicit_bzero(derived, sizeof(derived));
	hex_encode((const char *) fp, CRM_SHA256_LEN, hex);
	hex[CRM_SHA256_LEN * 2] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
