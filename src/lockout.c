/*
 * lockout.c
 *		register_failed_attempt(), is_locked_out(), clear_failed_attempts(): "lock the account
 *		after 5 failed attempts", counted in a shared table (shmem_table.c) so that the count is
 *		shared by every session and survives the rollback of the transaction that failed (a
 *		refused login usually raises).
 *
 * Per subject: the failures of the current window (which starts at the first failure and
 * lasts `window`) and, once max_attempts is reached, the end of the lockout (`window` after
 * the failure that reached it).  Failures during a lockout count but do not extend it.
 * A locked subject's entry is never evicted before its lockout ends; a table full of locked
 * subjects refuses new failures with 53400 rather than unlock anyone.  An entry holding only
 * failures below the limit may be evicted when the table is full (the oldest windows first),
 * which forgets those failures; crm_security.lockout_slots sizes the table.
 *
 * Without shared_preload_libraries the functions raise 55000 with a hint (a table row would
 * roll back with the failure it counts).
 */
#include "postgres.h"

#include "access/detoast.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "lockout.h"
#include "shmem_table.h"

#define LO_MAX_SUBJECT 1024
#define LO_MAX_NS (INT64CONST(366) * 86400 * SHT_NS_PER_SEC)

static ShtTable lo_table = {"crm_security lockouts", 10000, NULL, NULL};

void
lockout_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("crm_security.lockout_slots",
							"Subjects whose failed attempts shared memory holds (needs shared_preload_libraries).",
							"When all are in use, subjects below the limit are forgotten, oldest first; locked subjects never are.",
							&lo_table.slots, 10000, 100, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	sht_register(&lo_table);
}

/* The subject's key; 22023 for NULL, empty or over-long; 55000 without preloading. */
static void
lo_subject(FunctionCallInfo fcinfo, ShtKey *key)
{
	text	   *s;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must not be null")));
	if (toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ > LO_MAX_SUBJECT ||
		toast_raw_datum_size(PG_GETARG_DATUM(0)) == VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must be 1 to %d bytes long", LO_MAX_SUBJECT)));
	if (!sht_ready(&lo_table))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lockouts need the library preloaded"),
				 errdetail("Failed attempts must be counted by all sessions and survive a rollback, which only shared memory does."),
				 errhint("Add crm_security to shared_preload_libraries and restart.")));
	s = PG_GETARG_TEXT_PP(0);
	sht_key(key, "lockout", VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s));
}

/*
 * SQL function: register_failed_attempt(subject text, max_attempts int DEFAULT 5,
 *		window interval DEFAULT '15 minutes') returns boolean
 */
PG_FUNCTION_INFO_V1(crm_register_failed_attempt);
Datum
crm_register_failed_attempt(PG_FUNCTION_ARGS)
{
	ShtKey		key;
	ShtEntry   *e;
	int32		max_attempts;
	int64		window,
				now;
	bool		found,
				locked;

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be a positive number")));
	max_attempts = PG_GETARG_INT32(1);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window must not be null")));
	window = sht_interval_ns(PG_GETARG_INTERVAL_P(2), "window", LO_MAX_NS, "366 days");
	lo_subject(fcinfo, &key);
	now = sht_now_ns();
	e = sht_acquire(&lo_table, &key, true, now, &found);
	if (e == NULL)
	{
		sht_release(&lo_table);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many locked-out subjects"),
				 errdetail("Every slot of the lockout table holds a subject that is locked out."),
				 errhint("Raise crm_security.lockout_slots.")));
	}
	SpinLockAcquire(&e->mutex);
	/* v[0]: failures in the window, v[1]: the window's start, v[2]: end of the lockout */
	if (e->v[2] > now)
	{
		e->v[0]++;
		locked = true;
	}
	else
	{
		if (e->v[0] == 0 || e->v[1] + window <= now)
		{
			e->v[0] = 0;
			e->v[1] = now;
		}
		e->v[0]++;
		locked = e->v[0] >= max_attempts;
		if (locked)
		{
			e->v[2] = now + window;
			e->idle_at = e->v[2];
			e->keep = true;
		}
		else
		{
			e->idle_at = e->v[1] + window;
			e->keep = false;
		}
	}
	SpinLockRelease(&e->mutex);
	sht_release(&lo_table);
	PG_RETURN_BOOL(locked);
}

/* SQL function: is_locked_out(subject text) returns boolean */
PG_FUNCTION_INFO_V1(crm_is_locked_out);
Datum
crm_is_locked_out(PG_FUNCTION_ARGS)
{
	ShtKey		key;
	ShtEntry   *e;
	bool		found,
				locked = false;
	int64		now;

	lo_subject(fcinfo, &key);
	now = sht_now_ns();
	e = sht_acquire(&lo_table, &key, false, now, &found);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		locked = e->v[2] > now;
		SpinLockRelease(&e->mutex);
	}
	sht_release(&lo_table);
	PG_RETURN_BOOL(locked);
}

/* SQL function: clear_failed_attempts(subject text) returns void */
PG_FUNCTION_INFO_V1(crm_clear_failed_attempts);
Datum
crm_clear_failed_attempts(PG_FUNCTION_ARGS)
{
	ShtKey		key;

	lo_subject(fcinfo, &key);
	(void) sht_remove(&lo_table, &key);
	PG_RETURN_VOID();
}
