/*
 * audit_layout.c
 *		The columns of audit_log, derived from AUDIT_LOG_COLUMNS (audit_layout.h): names,
 *		types, the column list of queries, and the check that a table has this layout.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "audit_layout.h"

#define AUDIT_LOG_COLUMN_NAME(index, name, type, always_set) [index] = name,
const char *const audit_colnames[AL_NATTS] = {
	AUDIT_LOG_COLUMNS(AUDIT_LOG_COLUMN_NAME)
};

#define AUDIT_LOG_COLUMN_TYPE(index, name, type, always_set) [index] = type,
const Oid	audit_coltypes[AL_NATTS] = {
	AUDIT_LOG_COLUMNS(AUDIT_LOG_COLUMN_TYPE)
};

#define AUDIT_LOG_COLUMN_SET(index, name, type, always_set) [index] = always_set,
static const bool audit_colset[AL_NATTS] = {
	AUDIT_LOG_COLUMNS(AUDIT_LOG_COLUMN_SET)
};

const char *
audit_layout_column_list(void)
{
	static char *list = NULL;

	if (list == NULL)
	{
		StringInfoData buf;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&buf);
		for (int i = 0; i < AL_NATTS; i++)
			appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", audit_colnames[i]);
		MemoryContextSwitchTo(old);
		list = buf.data;
	}
	return list;
}

bool
audit_layout_matches(TupleDesc desc)
{
	if (desc->natts != AL_NATTS)
		return false;
	for (int i = 0; i < AL_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != audit_coltypes[i] ||
			strcmp(NameStr(att->attname), audit_colnames[i]) != 0)
			return false;
		/* Heap access checks no constraint: only the NOT NULLs every entry meets. */
		if (att->attnotnull && !audit_colset[i])
			return false;
	}
	/* ... and only the install script's CHECK on kind, which every entry meets. */
	if (desc->constr != NULL && desc->constr->num_check > 0 &&
		(desc->constr->num_check != 1 ||
		 strcmp(desc->constr->check[0].ccname, "audit_log_kind_check") != 0))
		return false;
	return true;
}
