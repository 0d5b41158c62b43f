/*
 * pgstub.c
 *		Just enough of the PostgreSQL backend to run crm_security's parsers under libFuzzer.
 *
 * The parsers are the production object code (src/*.c compiled unchanged); what they call
 * inside the postgres binary is provided here or by the PostgreSQL 15 files in test/vendor/postgresql-15/
 * (the JSON lexer, jsonb construction and access, StringInfo):
 *
 *	- memory contexts: every chunk is its own malloc() (so AddressSanitizer sees each one),
 *	  linked into its context; MemoryContextReset/Delete free them and run the reset
 *	  callbacks, children first, as PostgreSQL does.  Each fuzz input runs in a fresh
 *	  context that is deleted afterwards, also after an ERROR.
 *	- ereport/elog: errstart..errfinish collect the report; ERROR longjmps back to the
 *	  target (fuzz_try); FATAL, PANIC and any ERROR without a SQLSTATE of its own (an elog,
 *	  an "internal error" on input) abort, which libFuzzer reports as a finding.
 *	- numeric: a numeric is stored as its decimal text in a varlena (the parsers only
 *	  create, copy and print numerics, and read them as float8).
 *	- everything else the linked objects reference but the parsers must never reach is
 *	  generated at build time (run.sh) as a function that aborts with its name.
 */
#include "postgres.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "../../src/json_util.h"
#include "pgstub.h"

/* ---------------------------------------------------------------------------------------
 * Memory contexts
 */
typedef struct FuzzChunk
{
	struct FuzzChunk *prev;
	struct FuzzChunk *next;
	Size		size;
	struct FuzzContext *ctx;	/* right before the user's bytes, as PostgreSQL requires */
} FuzzChunk;

typedef struct FuzzContext
{
	const char *name;
	struct FuzzContext *parent;
	struct FuzzContext *firstchild;
	struct FuzzContext *prevchild;
	struct FuzzContext *nextchild;
	FuzzChunk  *chunks;
	MemoryContextCallback *callbacks;
} FuzzContext;

MemoryContext CurrentMemoryContext = NULL;
MemoryContext TopMemoryContext = NULL;
MemoryContext ErrorContext = NULL;

/* Variables of the backend that the module's code reads or sets. */
ErrorContextCallback *error_context_stack = NULL;
sigjmp_buf *PG_exception_stack = NULL;
volatile sig_atomic_t InterruptPending = false;
TransactionId CheckXidAlive = InvalidTransactionId;

static FuzzContext *
fc(MemoryContext c)
{
	if (c == NULL)
		fuzz_fail("memory context is NULL");
	return (FuzzContext *) c;
}

static void
ctx_link(FuzzContext *c, FuzzContext *parent)
{
	c->parent = parent;
	c->prevchild = NULL;
	c->nextchild = NULL;
	if (parent)
	{
		c->nextchild = parent->firstchild;
		if (parent->firstchild)
			parent->firstchild->prevchild = c;
		parent->firstchild = c;
	}
}

static void
ctx_unlink(FuzzContext *c)
{
	if (c->parent == NULL)
		return;
	if (c->prevchild)
		c->prevchild->nextchild = c->nextchild;
	else
		c->parent->firstchild = c->nextchild;
	if (c->nextchild)
		c->nextchild->prevchild = c->prevchild;
	c->parent = NULL;
}

static MemoryContext
fuzz_context_create(MemoryContext parent, const char *name)
{
	FuzzContext *c = calloc(1, sizeof(FuzzContext));

	c->name = name;
	ctx_link(c, (FuzzContext *) parent);
	return (MemoryContext) c;
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name, Size minContextSize,
							  Size initBlockSize, Size maxBlockSize)
{
	return fuzz_context_create(parent, name);
}

static void *
chunk_alloc(MemoryContext context, Size size, int flags)
{
	FuzzContext *c = fc(context);
	FuzzChunk  *ch;

	if (!((flags & MCXT_ALLOC_HUGE) ? AllocHugeSizeIsValid(size) : AllocSizeIsValid(size)))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	ch = malloc(sizeof(FuzzChunk) + (size ? size : 1));
	if (ch == NULL)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	ch->size = size;
	ch->ctx = c;
	ch->prev = NULL;
	ch->next = c->chunks;
	if (c->chunks)
		c->chunks->prev = ch;
	c->chunks = ch;
	if (flags & MCXT_ALLOC_ZERO)
		memset(ch + 1, 0, size);
	return ch + 1;
}

static FuzzChunk *
chunk_of(void *p)
{
	FuzzChunk  *ch = ((FuzzChunk *) p) - 1;

	return ch;
}

static void
chunk_free(FuzzChunk *ch)
{
	FuzzContext *c = ch->ctx;

	if (ch->prev)
		ch->prev->next = ch->next;
	else
		c->chunks = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	free(ch);
}

void
MemoryContextReset(MemoryContext context)
{
	FuzzContext *c = fc(context);

	while (c->firstchild)
		MemoryContextDelete((MemoryContext) c->firstchild);
	while (c->callbacks)
	{
		MemoryContextCallback *cb = c->callbacks;

		c->callbacks = cb->next;
		cb->func(cb->arg);
	}
	while (c->chunks)
		chunk_free(c->chunks);
}

void
MemoryContextResetOnly(MemoryContext context)
{
	MemoryContextReset(context);
}

void
MemoryContextDelete(MemoryContext context)
{
	FuzzContext *c = fc(context);

	if (context == CurrentMemoryContext)
		fuzz_fail("deleting the current memory context");
	MemoryContextReset(context);
	ctx_unlink(c);
	free(c);
}

void
MemoryContextDeleteChildren(MemoryContext context)
{
	FuzzContext *c = fc(context);

	while (c->firstchild)
		MemoryContextDelete((MemoryContext) c->firstchild);
}

void
MemoryContextSetParent(MemoryContext context, MemoryContext new_parent)
{
	FuzzContext *c = fc(context);

	ctx_unlink(c);
	ctx_link(c, (FuzzContext *) new_parent);
}

void
MemoryContextSetIdentifier(MemoryContext context, const char *id)
{
}

void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
	FuzzContext *c = fc(context);

	cb->next = c->callbacks;
	c->callbacks = cb;
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, 0);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, MCXT_ALLOC_ZERO);
}

void *
MemoryContextAllocZeroAligned(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, MCXT_ALLOC_ZERO);
}

void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return chunk_alloc(context, size, flags);
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, MCXT_ALLOC_HUGE);
}

char *
MemoryContextStrdup(MemoryContext context, const char *string)
{
	Size		len = strlen(string) + 1;
	char	   *s = chunk_alloc(context, len, 0);

	memcpy(s, string, len);
	return s;
}

void *
palloc(Size size)
{
	return chunk_alloc(CurrentMemoryContext, size, 0);
}

void *
palloc0(Size size)
{
	return chunk_alloc(CurrentMemoryContext, size, MCXT_ALLOC_ZERO);
}

void *
palloc_extended(Size size, int flags)
{
	return chunk_alloc(CurrentMemoryContext, size, flags);
}

void
pfree(void *pointer)
{
	chunk_free(chunk_of(pointer));
}

void *
repalloc(void *pointer, Size size)
{
	FuzzChunk  *old = chunk_of(pointer);
	void	   *p = chunk_alloc((MemoryContext) old->ctx, size, 0);

	memcpy(p, pointer, Min(size, old->size));
	chunk_free(old);
	return p;
}

void *
repalloc_huge(void *pointer, Size size)
{
	FuzzChunk  *old = chunk_of(pointer);
	void	   *p = chunk_alloc((MemoryContext) old->ctx, size, MCXT_ALLOC_HUGE);

	memcpy(p, pointer, Min(size, old->size));
	chunk_free(old);
	return p;
}

char *
pstrdup(const char *in)
{
	return MemoryContextStrdup(CurrentMemoryContext, in);
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* ---------------------------------------------------------------------------------------
 * Errors
 */
static sigjmp_buf *fuzz_jmp = NULL;
static int	err_level;
static int	err_code;
static bool err_code_set;
static char err_msg[1024];
static char err_detail[1024];

FuzzError	fuzz_last_error;

void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

bool
fuzz_try(void (*fn) (void *), void *arg)
{
	sigjmp_buf	jb;
	sigjmp_buf *save = fuzz_jmp;
	MemoryContext cxt = CurrentMemoryContext;

	memset(&fuzz_last_error, 0, sizeof(fuzz_last_error));
	if (sigsetjmp(jb, 0) == 0)
	{
		fuzz_jmp = &jb;
		fn(arg);
		fuzz_jmp = save;
		return true;
	}
	fuzz_jmp = save;
	CurrentMemoryContext = cxt;
	if (getenv("CRM_FUZZ_VERBOSE"))
		fprintf(stderr, "ERROR %s: %s (%s)\n", unpack_sql_state(fuzz_last_error.sqlerrcode),
				fuzz_last_error.message, fuzz_last_error.detail);
	return false;
}

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;			/* notices and warnings are not looked at */
	err_level = elevel;
	err_code = ERRCODE_INTERNAL_ERROR;
	err_code_set = false;
	err_msg[0] = err_detail[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (err_level > ERROR)
	{
		fprintf(stderr, "fuzz: FATAL/PANIC at %s:%d: %s\n", filename, lineno, err_msg);
		abort();
	}
	if (!err_code_set || err_code == ERRCODE_INTERNAL_ERROR)
	{
		/* An elog() reached from input: a bug, not a refusal. */
		fprintf(stderr, "fuzz: internal error at %s:%d (%s): %s\n", filename, lineno, funcname, err_msg);
		abort();
	}
	if (fuzz_jmp == NULL)
	{
		fprintf(stderr, "fuzz: ERROR outside fuzz_try at %s:%d: %s\n", filename, lineno, err_msg);
		abort();
	}
	fuzz_last_error.sqlerrcode = err_code;
	strlcpy(fuzz_last_error.message, err_msg, sizeof(fuzz_last_error.message));
	strlcpy(fuzz_last_error.detail, err_detail, sizeof(fuzz_last_error.detail));
	siglongjmp(*fuzz_jmp, 1);
}

char *
unpack_sql_state(int sql_state)
{
	static char buf[12];
	int			i;

	for (i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(sql_state);
		sql_state >>= 6;
	}
	buf[i] = '\0';
	return buf;
}

int
errcode(int sqlerrcode)
{
	err_code = sqlerrcode;
	err_code_set = true;
	return 0;
}

#define FORMAT_INTO(buf, fmt) \
	do { \
		va_list		ap; \
		va_start(ap, fmt); \
		vsnprintf(buf, sizeof(buf), fmt, ap); \
		va_end(ap); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	FORMAT_INTO(err_msg, fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	FORMAT_INTO(err_msg, fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	FORMAT_INTO(err_detail, fmt);
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	FORMAT_INTO(err_detail, fmt);
	return 0;
}

int
errdetail_log(const char *fmt,...)
{
	char		buf[1024];

	FORMAT_INTO(buf, fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	char		buf[1024];

	FORMAT_INTO(buf, fmt);
	return 0;
}

int
errcontext_msg(const char *fmt,...)
{
	char		buf[1024];

	FORMAT_INTO(buf, fmt);
	return 0;
}

int
set_errcontext_domain(const char *domain)
{
	return 0;
}

int
errhidestmt(bool hide_stmt)
{
	return 0;
}

int
errhidecontext(bool hide_ctx)
{
	return 0;
}

void
check_stack_depth(void)
{
}

/* ---------------------------------------------------------------------------------------
 * Encodings: the database is UTF-8.
 */
int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	int			n = pg_encoding_verifymbstr(encoding, mbstr, len);

	if (n == len)
		return true;
	if (!noError)
		ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE), errmsg("invalid byte sequence")));
	return false;
}

char *
pg_any_to_server(const char *s, int len, int encoding)
{
	if (encoding != PG_UTF8)
		fuzz_fail("pg_any_to_server from another encoding than UTF-8");
	(void) pg_verify_mbstr(PG_UTF8, s, len, false);
	return (char *) s;
}

void
pg_unicode_to_server(pg_wchar c, unsigned char *s)
{
	if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		ereport(ERROR, (errcode(ERRCODE_UNTRANSLATABLE_CHARACTER), errmsg("invalid code point")));
	unicode_to_utf8(c, s);
	s[pg_utf_mblen(s)] = '\0';
}

/* ---------------------------------------------------------------------------------------
 * Datums, text, numeric
 */
struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	if (VARATT_IS_EXTENDED(datum))
		fuzz_fail("a toasted or short-header datum reached pg_detoast_datum");
	return datum;
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	if (VARATT_IS_EXTERNAL(datum) || VARATT_IS_COMPRESSED(datum))
		fuzz_fail("a toasted datum reached pg_detoast_datum_packed");
	return datum;
}

text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *t = palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	memcpy(VARDATA(t), s, len);
	return t;
}

text *
cstring_to_text(const char *s)
{
	return cstring_to_text_with_len(s, strlen(s));
}

char *
text_to_cstring(const text *t)
{
	return pnstrdup(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* A numeric here is a varlena holding the number's text as the JSON lexer gave it. */
Datum
numeric_in(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);

	PG_RETURN_POINTER(cstring_to_text(s));
}

Datum
numeric_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(text_to_cstring((text *) PG_GETARG_POINTER(0)));
}

Datum
numeric_cmp(PG_FUNCTION_ARGS)
{
	double		a = strtod(text_to_cstring((text *) PG_GETARG_POINTER(0)), NULL);
	double		b = strtod(text_to_cstring((text *) PG_GETARG_POINTER(1)), NULL);

	PG_RETURN_INT32(a < b ? -1 : a > b ? 1 : 0);
}

Datum
numeric_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(DatumGetInt32(numeric_cmp(fcinfo)) == 0);
}

Datum
numeric_float8_no_overflow(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(strtod(text_to_cstring((text *) PG_GETARG_POINTER(0)), NULL));
}

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	return func(fcinfo);
}

Datum
DirectFunctionCall2Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2)
{
	LOCAL_FCINFO(fcinfo, 2);

	InitFunctionCallInfoData(*fcinfo, NULL, 2, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = arg2;
	fcinfo->args[1].isnull = false;
	return func(fcinfo);
}

Datum
DirectFunctionCall3Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2, Datum arg3)
{
	LOCAL_FCINFO(fcinfo, 3);

	InitFunctionCallInfoData(*fcinfo, NULL, 3, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = arg2;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = arg3;
	fcinfo->args[2].isnull = false;
	return func(fcinfo);
}

int
varstr_cmp(const char *arg1, int len1, const char *arg2, int len2, Oid collid)
{
	int			r = memcmp(arg1, arg2, Min(len1, len2));

	return r != 0 ? r : (len1 < len2 ? -1 : len1 > len2 ? 1 : 0);
}

int
ArrayGetNItems(int ndim, const int *dims)
{
	int			i,
				n = 1;

	if (ndim <= 0)
		return 0;
	for (i = 0; i < ndim; i++)
		n *= dims[i];
	return n;
}

/* Whether call sites say their arguments are constants (see fuzz_permission.c). */
bool		fuzz_args_stable = false;

bool
get_fn_expr_arg_stable(FmgrInfo *flinfo, int argnum)
{
	return fuzz_args_stable;
}

/* From PostgreSQL 15's src/backend/utils/adt/jsonb.c. */
bool
JsonbExtractScalar(JsonbContainer *jbc, JsonbValue *res)
{
	JsonbIterator *it;
	JsonbValue	tmp;

	if (!JsonContainerIsArray(jbc) || !JsonContainerIsScalar(jbc))
	{
		res->type = (JsonContainerIsArray(jbc)) ? jbvArray : jbvObject;
		return false;
	}
	it = JsonbIteratorInit(jbc);
	(void) JsonbIteratorNext(&it, &tmp, true);
	(void) JsonbIteratorNext(&it, res, true);
	(void) JsonbIteratorNext(&it, &tmp, true);
	(void) JsonbIteratorNext(&it, &tmp, true);
	return true;
}

/* jsonb's text output, by the module's own compact writer (same text without spaces). */
char *
JsonbToCString(StringInfo out, JsonbContainer *in, int estimated_len)
{
	StringInfoData buf;

	if (out == NULL)
	{
		initStringInfo(&buf);
		out = &buf;
	}
	json_append_compact(out, in);
	return out->data;
}

/* Times: a fixed transaction start; messages show microseconds since 2000. */
TimestampTz
GetCurrentTransactionStartTimestamp(void)
{
	return (TimestampTz) 820540800 * USECS_PER_SEC;	/* 2026-01-01 00:00:00 UTC */
}

TimestampTz
GetCurrentTimestamp(void)
{
	return GetCurrentTransactionStartTimestamp();
}

TimestampTz
GetCurrentStatementStartTimestamp(void)
{
	return GetCurrentTransactionStartTimestamp();
}

const char *
timestamptz_to_str(TimestampTz t)
{
	return psprintf(INT64_FORMAT, (int64) t);
}

/* ---------------------------------------------------------------------------------------
 * Globals of the backend the objects read
 */
PGPROC	   *MyProc = NULL;
char	   *GUC_check_errmsg_string;
char	   *GUC_check_errdetail_string;
char	   *GUC_check_errhint_string;
bool		InitializingParallelWorker = false;
int			ParallelWorkerNumber = -1;

void
fuzz_init(void)
{
	if (TopMemoryContext == NULL)
	{
		TopMemoryContext = fuzz_context_create(NULL, "TopMemoryContext");
		ErrorContext = fuzz_context_create(TopMemoryContext, "ErrorContext");
		CurrentMemoryContext = TopMemoryContext;
	}
}

MemoryContext
fuzz_begin(void)
{
	fuzz_init();
	CurrentMemoryContext = fuzz_context_create(TopMemoryContext, "fuzz input");
	return CurrentMemoryContext;
}

void
fuzz_end(MemoryContext cxt)
{
	CurrentMemoryContext = TopMemoryContext;
	MemoryContextDelete(cxt);
}

bytea *
fuzz_text(const uint8_t *data, size_t len)
{
	return (bytea *) cstring_to_text_with_len((const char *) data, (int) len);
}
