/*
 * keys_pem.c
 *		PEM blocks: public keys (SPKI, PKCS#1), private keys (PKCS#8, PKCS#1, SEC 1) and
 *		certificates.  Encrypted keys are refused; nothing ever prompts for a passphrase.
 */
#include "postgres.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keys.h"
#include "keys_pem.h"

/* Never prompt for a passphrase: encrypted keys are refused. */
static int
keys_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Decode the PEM block of `data` (NUL-terminated, `len` bytes) into key; NULL or why not. */
const char *
keys_pem_parse(CrmKey *key, const char *data, int len)
{
	const char *begin = strstr(data, "-----BEGIN ");
	const char *label_end;
	char		label[64];
	int			label_len;
	BIO		   *bio;
	EVP_PKEY   *pkey = NULL;
	bool		is_private = false;

	if (begin == NULL)
		return "The PEM text has no BEGIN line.";
	begin += strlen("-----BEGIN ");
	label_end = strstr(begin, "-----");
	if (label_end == NULL || label_end - begin >= (int) sizeof(label))
		return "The PEM text has a malformed BEGIN line.";
	label_len = label_end - begin;
	memcpy(label, begin, label_len);
	label[label_len] = '\0';

	if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 || strstr(data, "Proc-Type: 4,ENCRYPTED") != NULL)
		return "Encrypted private keys are not supported.";

	bio = BIO_new_mem_buf(data, len);
	if (bio == NULL)
		elog(ERROR, "BIO_new_mem_buf() failed");

	if (strcmp(label, "PUBLIC KEY") == 0)
		pkey = PEM_read_bio_PUBKEY(bio, NULL, keys_no_passphrase, NULL);
	else if (strcmp(label, "RSA PUBLIC KEY") == 0)
	{
		OSSL_DECODER_CTX *dctx;

		dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA",
											 EVP_PKEY_PUBLIC_KEY, NULL, NULL);
		if (dctx != NULL)
		{
			if (!OSSL_DECODER_from_bio(dctx, bio))
				pkey = NULL;
			OSSL_DECODER_CTX_free(dctx);
		}
	}
	else if (strcmp(label, "PRIVATE KEY") == 0 ||
			 strcmp(label, "RSA PRIVATE KEY") == 0 ||
			 strcmp(label, "EC PRIVATE KEY") == 0 ||
			 strcmp(label, "EC PARAMETERS") == 0)
	{
		pkey = PEM_read_bio_PrivateKey(bio, NULL, keys_no_passphrase, NULL);
		is_private = true;
	}
	else if (strcmp(label, "CERTIFICATE") == 0)
	{
		X509	   *cert = PEM_read_bio_X509(bio, NULL, keys_no_passphrase, NULL);

		if (cert != NULL)
		{
			pkey = X509_get_pubkey(cert);
			X509_free(cert);
		}
	}
	else
	{
		bool		plain = true;
		int			i;

		/* A PEM label is capitals and spaces; anything else may be part of a secret. */
		for (i = 0; i < label_len; i++)
			if (!((label[i] >= 'A' && label[i] <= 'Z') || (label[i] >= '0' && label[i] <= '9') ||
				  label[i] == ' '))
				plain = false;
		BIO_free(bio);
		if (!plain || label_len == 0 || label_len > 40)
			return "The PEM block is of a type that is not supported.";
		return psprintf("PEM blocks of type \"%s\" are not supported.", label);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return psprintf("The PEM block \"%s\" could not be decoded.", label);
	return keys_adopt_pkey(key, pkey, is_private);
}
