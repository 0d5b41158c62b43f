/*
 * pgstub.h
 *		The fuzz targets' side of pgstub.c: a memory context per input and ERROR as a
 *		return value.
 */
#ifndef CRM_FUZZ_PGSTUB_H
#define CRM_FUZZ_PGSTUB_H

#include <stdint.h>

typedef struct FuzzError
{
	int			sqlerrcode;
	char		message[1024];
	char		detail[1024];
} FuzzError;

/* The last ERROR caught by fuzz_try. */
extern FuzzError fuzz_last_error;

/* A fresh memory context for one input (made current), and its deletion. */
extern MemoryContext fuzz_begin(void);
extern void fuzz_end(MemoryContext cxt);

/* Run fn(arg); false when it raised an ERROR (then in fuzz_last_error). */
extern bool fuzz_try(void (*fn) (void *), void *arg);

/* Report a broken property and abort (libFuzzer saves the input). */
extern void fuzz_fail(const char *what) pg_attribute_noreturn();

/* The bytes as a palloc'd text/bytea datum. */
extern bytea *fuzz_text(const uint8_t *data, size_t len);

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif							/* CRM_FUZZ_PGSTUB_H */
