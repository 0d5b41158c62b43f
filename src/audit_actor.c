/*
 * audit_actor.c
 *		Who and where: the columns actor_type, actor_id, tenant_id, db_user, request_id
 *		and client_addr of every entry, from the verified claim context or else from the
 *		session, cached while what they are computed from stays the same.  Owns the
 *		setting crm_security.request_id.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "audit_actor.h"
#include "audit_canonical.h"
#include "audit_entry.h"
#include "context.h"

/* Longest request id kept; a longer one is cut. */
#define AUDIT_MAX_REQUEST_ID 256

/* Setting crm_security.request_id: set by the application for a transaction. */
static char *audit_request_id_guc = NULL;

/* Per-backend, constant: the client address (NULL over a Unix socket). */
static bool audit_client_addr_known = false;
static Datum audit_client_addr = (Datum) 0;

const char *
audit_user_name(Oid roleid)
{
	/* Not cached: a role renamed in another session must be recorded by its new name. */
	char	   *name = GetUserNameFromId(roleid, true);

	return name != NULL ? name : "?";
}

static void
audit_get_client_addr(Datum *value, bool *isnull)
{
	if (!audit_client_addr_known)
	{
		LOCAL_FCINFO(cfcinfo, 0);
		Datum		d;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		/* inet_client_addr() knows the connection; NULL over a Unix socket. */
		InitFunctionCallInfoData(*cfcinfo, NULL, 0, InvalidOid, NULL, NULL);
		d = inet_client_addr(cfcinfo);
		audit_client_addr = cfcinfo->isnull ? (Datum) 0 : d;
		MemoryContextSwitchTo(old);
		audit_client_addr_known = true;
	}
	*value = audit_client_addr;
	*isnull = (audit_client_addr == (Datum) 0);
}

/*
 * The who/where columns of the entries.  They depend only on the claim context (through
 * its generation, which changes whenever the context or a setting it is derived from may
 * have), the roles (session and current user), the setting crm_security.request_id and
 * the names of the roles, so they are computed once and reused while all of these stay
 * the same.  A change to pg_authid (a role renamed) invalidates them when the
 * invalidation arrives, the moment a lookup by name would see the new name.
 */
#define AUDIT_ACTOR_FIRST AL_ACTOR_TYPE
#define AUDIT_ACTOR_LAST AL_REQUEST_ID

/* What the cached columns are computed from, but the role names (see above). */
typedef struct AuditActorKey
{
	Oid			userid;
	Oid			session_userid;
	uint64		ctx_generation;	/* ctx_generation() after the context was established */
	const char *request_id_guc;
} AuditActorKey;

typedef struct AuditActor
{
	bool		valid;
	MemoryContext cxt;			/* everything below; kept across transactions */
	AuditActorKey key;			/* a copy, in cxt */
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	char	   *canon;			/* their canonical fields, client_addr included */
	int			canon_len;
} AuditActor;

static AuditActor audit_actor;

static void
audit_authid_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	audit_actor.valid = false;
}

void
audit_actor_init(void)
{
	DefineCustomStringVariable("crm_security.request_id",
							   "Request id recorded in audit entries of this transaction.",
							   "Set by the application, e.g. SET LOCAL crm_security.request_id = '...'; "
							   "a request_id claim of the verified context takes precedence.",
							   &audit_request_id_guc,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
	CacheRegisterSyscacheCallback(AUTHOID, audit_authid_callback, (Datum) 0);
}

/*
 * The key of the cached actor as of now, computed per entry, and the context's actor type.
 * The context is established first (ctx_actor_type() verifies a token set since the last
 * call), then its generation read, as context.h asks of a cache.
 */
static inline const char *
audit_actor_key_now(AuditActorKey *k)
{
	const char *atype = ctx_actor_type();

	k->userid = GetUserId();
	k->session_userid = GetSessionUserId();
	k->ctx_generation = ctx_generation();
	k->request_id_guc = audit_request_id_guc;
	return atype;
}

static inline bool
audit_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static inline bool
audit_actor_key_equal(const AuditActorKey *a, const AuditActorKey *b)
{
	return a->ctx_generation == b->ctx_generation &&
		a->userid == b->userid && a->session_userid == b->session_userid &&
		audit_same_string(a->request_id_guc, b->request_id_guc);
}

/* A copy of a key, in the current memory context. */
static void
audit_actor_key_copy(AuditActorKey *dst, const AuditActorKey *src)
{
	dst->userid = src->userid;
	dst->session_userid = src->session_userid;
	dst->ctx_generation = src->ctx_generation;
	dst->request_id_guc = src->request_id_guc != NULL ? pstrdup(src->request_id_guc) : NULL;
}

/* Compute the who/where columns from the verified context, else from the session. */
static void
audit_compute_actor(AuditEntry *e, const char *atype)
{
	char	   *request_id = NULL;

	if (atype != NULL)
	{
		audit_set_text(e, AL_ACTOR_TYPE, atype);
		audit_set_text(e, AL_ACTOR_ID, ctx_user_id_text());
		audit_set_text(e, AL_TENANT_ID, ctx_tenant_text());
		request_id = ctx_claim_text("request_id");
	}
	else
	{
		audit_set_text(e, AL_ACTOR_TYPE, "db_user");
		audit_set_text(e, AL_ACTOR_ID, audit_user_name(GetSessionUserId()));
		audit_set_text(e, AL_TENANT_ID, NULL);
	}
	audit_set_text(e, AL_DB_USER, audit_user_name(GetUserId()));

	if ((request_id == NULL || request_id[0] == '\0') &&
		audit_request_id_guc != NULL && audit_request_id_guc[0] != '\0')
		request_id = audit_request_id_guc;
	if (request_id != NULL && request_id[0] != '\0')
	{
		int			len = strlen(request_id);

		if (len > AUDIT_MAX_REQUEST_ID)
			len = pg_mbcliplen(request_id, len, AUDIT_MAX_REQUEST_ID);
		e->values[AL_REQUEST_ID] = PointerGetDatum(cstring_to_text_with_len(request_id, len));
		e->nulls[AL_REQUEST_ID] = false;
	}
	else
		audit_set_text(e, AL_REQUEST_ID, NULL);
}

void
audit_fill_actor(AuditEntry *e)
{
	AuditActor *a = &audit_actor;
	AuditActorKey key;
	const char *atype = audit_actor_key_now(&key);

	if (!a->valid || !audit_actor_key_equal(&a->key, &key))
	{
		MemoryContext old;

		/*
		 * The previous values stay until the end of the transaction: an entry being
		 * built may still point to them (a cast to json run while building a row image
		 * can write another entry under another role).
		 */
		if (a->cxt != NULL)
			MemoryContextSetParent(a->cxt, TopTransactionContext);
		a->cxt = AllocSetContextCreate(TopMemoryContext, "crm_security audit actor",
									   ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(a->cxt);
		a->valid = false;
		audit_compute_actor(e, atype);
		for (int i = AUDIT_ACTOR_FIRST; i <= AUDIT_ACTOR_LAST; i++)
		{
			a->values[i] = e->values[i];
			a->nulls[i] = e->nulls[i];
		}
		audit_actor_key_copy(&a->key, &key);
		audit_get_client_addr(&a->values[AL_CLIENT_ADDR], &a->nulls[AL_CLIENT_ADDR]);
		{
			StringInfoData canon;

			initStringInfo(&canon);
			for (int i = AUDIT_ACTOR_FIRST; i <= AL_CLIENT_ADDR; i++)
				audit_put_value(&canon, i, a->values[i], a->nulls[i]);
			a->canon = canon.data;
			a->canon_len = canon.len;
		}
		MemoryContextSwitchTo(old);
		a->valid = true;
	}
	for (int i = AUDIT_ACTOR_FIRST; i <= AL_CLIENT_ADDR; i++)
	{
		e->values[i] = a->values[i];
		e->nulls[i] = a->nulls[i];
	}
	e->actor_canon = a->canon;
	e->actor_canon_len = a->canon_len;
}
