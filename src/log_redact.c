/*
 * log_redact.c
 *		Credentials out of the server log (docs/security.md, "Secrets in error messages and
 *		logs").
 *
 *		The extension's own messages never carry a token or a key, and its functions hide
 *		their statement on every error beneath them.  What remains is what PostgreSQL
 *		itself logs around them: with log_statement = 'all' or log_min_duration_statement
 *		the text of every statement, and for the extended protocol its bind parameters
 *		("DETAIL:  parameters: $1 = '...'"); on an error in the caller's own statement, the
 *		STATEMENT line; the SET LOCAL crm_security.token = '...' that Citus sends to the
 *		workers.  An emit_log_hook rewrites every line a process sends to the server log:
 *
 *		- a JWT, JWS or JWE in compact form (a base64url JSON header, "eyJ...", followed by
 *		  at least two more '.'-separated base64url segments) becomes (token);
 *		- a well-formed API key (apikey_format.c: prefix, '_', 36 base62 characters whose
 *		  last 6 are the CRC32 of the rest) becomes (api key);
 *		- the value assigned to crm_security.token (= or TO, then a literal or a word)
 *		  becomes '(token)', whatever its form;
 *
 *		in the message, detail, hint, context and internal query, and leaves out the
 *		STATEMENT line of a message when the statement holds one of them.
 *
 *		The hook runs in the processes that have loaded the library: every process when it
 *		is in shared_preload_libraries or session_preload_libraries, otherwise from the
 *		first call of one of its functions on (so not for the very first statement of a
 *		connection that has not loaded it yet).  docs/security.md says what to set.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "apikey_format.h"
#include "log_redact.h"

#define TOKEN_SETTING "crm_security.token"

static emit_log_hook_type prev_emit_log_hook = NULL;

static inline bool
b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_';
}

static inline bool
word_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '_';
}

static inline bool
space_char(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The length of the compact JWT/JWS/JWE at s (which begins a run of base64url characters),
 * or 0: "eyJ", the rest of its header, then at least two '.'-separated segments (empty
 * ones too: an unsecured JWT, a detached payload).
 */
static size_t
jwt_at(const char *s)
{
	const char *p = s;
	int			dots = 0;

	if (strncmp(p, "eyJ", 3) != 0)
		return 0;
	p += 3;
	for (;;)
	{
		while (b64url_char((unsigned char) *p))
			p++;
		if (*p != '.')
			break;
		dots++;
		p++;
	}
	return dots >= 2 ? (size_t) (p - s) : 0;
}

/*
 * The length of the API key at s (which begins a word), or 0: the whole word must be a
 * well-formed key, checksum included, so that ordinary identifiers are left alone.
 */
static size_t
api_key_at(const char *s)
{
	size_t		n = 0;

	while (word_char((unsigned char) s[n]) && n <= APIKEY_MAX_LEN)
		n++;
	if (n < APIKEY_TAIL_LEN + 2 || n > APIKEY_MAX_LEN)
		return 0;
	return apikey_format_ok(s, (int) n) ? n : 0;
}

/*
 * The length of the value assigned to crm_security.token at s (just after the setting's
 * name), with the assignment before it in *prefix_len, or 0 when no assignment follows.
 */
static size_t
token_setting_at(const char *s, size_t *prefix_len)
{
	const char *q = s;
	const char *v;

	while (space_char(*q))
		q++;
	if (*q == '=')
		q++;
	else if (pg_strncasecmp(q, "to", 2) == 0 && (space_char(q[2]) || q[2] == '\''))
		q += 2;
	else
		return 0;
	while (space_char(*q))
		q++;
	*prefix_len = q - s;
	v = q;
	if ((*q == 'E' || *q == 'e') && q[1] == '\'')
		q++;
	if (*q == '\'')
	{
		/* A literal: up to its closing quote ('' and \' inside it). */
		q++;
		while (*q)
		{
			if (*q == '\\' && q[1] != '\0')
				q += 2;
			else if (*q == '\'' && q[1] == '\'')
				q += 2;
			else if (*q == '\'')
			{
				q++;
				break;
			}
			else
				q++;
		}
	}
	else
		while (*q && *q != ';' && !space_char(*q))
			q++;
	return q - v;
}

/* Copy what precedes from (since *done) and repl to out, started on first use. */
static void
replace(StringInfo out, bool *started, const char **done, const char *from, const char *repl)
{
	if (!*started)
	{
		initStringInfo(out);
		*started = true;
	}
	appendBinaryStringInfo(out, *done, from - *done);
	appendStringInfoString(out, repl);
}

/*
 * The redacted copy of s into out (started on the first redaction), or with find_only
 * just whether there is something to redact.  Returns whether there was.
 */
static bool
redact_scan(const char *s, StringInfo outp, bool find_only)
{
	StringInfoData out;
	bool		started = false;
	const char *p = s;
	const char *done = s;		/* copied to out up to here */
	size_t		n;
	size_t		pre;

	while (*p)
	{
		/* Only where a word begins. */
		if (!word_char((unsigned char) *p) || (p > s && word_char((unsigned char) p[-1])))
		{
			p++;
			continue;
		}
		if (*p == 'e' && (p == s || p[-1] != '-') && (n = jwt_at(p)) > 0)
		{
			if (find_only)
				return true;
			replace(&out, &started, &done, p, "(token)");
			p += n;
			done = p;
		}
		else if ((n = api_key_at(p)) > 0)
		{
			if (find_only)
				return true;
			replace(&out, &started, &done, p, "(api key)");
			p += n;
			done = p;
		}
		else if ((*p == 'c' || *p == 'C') &&
				 pg_strncasecmp(p, TOKEN_SETTING, strlen(TOKEN_SETTING)) == 0 &&
				 !word_char((unsigned char) p[strlen(TOKEN_SETTING)]) &&
				 (n = token_setting_at(p + strlen(TOKEN_SETTING), &pre)) > 0)
		{
			const char *v = p + strlen(TOKEN_SETTING) + pre;

			if (find_only)
				return true;
			replace(&out, &started, &done, v, "'(token)'");
			p = v + n;
			done = p;
		}
		else
			while (word_char((unsigned char) *p))
				p++;
	}
	if (!started)
		return false;
	appendStringInfoString(&out, done);
	*outp = out;
	return true;
}

char *
log_redact(const char *s)
{
	StringInfoData out;

	if (s == NULL || !redact_scan(s, &out, false))
		return NULL;
	return out.data;
}

/* Replace *field by its redacted copy when it holds a credential. */
static void
redact_field(char **field)
{
	char	   *r = log_redact(*field);

	if (r != NULL)
		*field = r;
}

static void
log_redact_emit(ErrorData *edata)
{
	if (edata->output_to_server)
	{
		/* EmitErrorReport() runs in ErrorContext: the new strings belong there. */
		redact_field(&edata->message);
		redact_field(&edata->detail);
		redact_field(&edata->detail_log);
		redact_field(&edata->hint);
		redact_field(&edata->context);
		redact_field(&edata->internalquery);
		if (!edata->hide_stmt && debug_query_string != NULL &&
			redact_scan(debug_query_string, NULL, true))
			edata->hide_stmt = true;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
log_redact_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = log_redact_emit;
}
