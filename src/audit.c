/*
 * audit.c
 *		Tamper-evident audit log: the module's initialisation.  Its parts:
 *
 *	audit_layout	the columns of audit_log (the one definition in C)
 *	audit_rel		the extension's audit tables; cached descriptions of audited tables
 *	audit_capture	how entries come in: the row trigger, TRUNCATE, log_event()
 *	audit_image		row images (jsonb) of an audited row
 *	audit_personal	personal values of images: keys, sealing, reading (audit_personal_data())
 *	audit_envelope	the envelopes of personal values, in their formats
 *	audit_subject_keys	data keys of data subjects; forget_subject()
 *	audit_actor		who and where: the actor columns; the setting crm_security.request_id
 *	audit_entry		an entry assembled, completed (id, txid, time, hash) and written
 *	audit_canonical	canonical forms and hashes; audit_canonical_entry()
 *	audit_write		writing entries, a statement's together
 *	audit_protect	append-only protection of the audit tables
 *	audit_admin		enable_audit(), disable_audit()
 *	audit_chain		sealing into a hash chain, the digest, retention
 *	audit_verify	verification of the chain
 *
 * The path of a row change: audit_trigger() (capture) → audit_rel_info() (rel) →
 * audit_entry_init() with audit_fill_actor() (entry, actor) → audit_row_images() (image) →
 * audit_insert_entry() → audit_entry_hash() (canonical) → audit_write_append() (write).
 */
#include "postgres.h"

#include "utils/inval.h"

#include "audit.h"
#include "audit_actor.h"
#include "audit_capture.h"
#include "audit_envelope.h"
#include "audit_rel.h"
#include "audit_write.h"
#include "relcache_callbacks.h"

/* One relcache callback for the module: the audit relations, descriptions and writer. */
static void
audit_relcache_callback(Datum arg, Oid relid)
{
	audit_rel_invalidate(relid);
	audit_write_invalidate(relid);
}

void
audit_init(void)
{
	audit_actor_init();
	audit_envelope_init();
	crm_register_relcache_callback(audit_relcache_callback, (Datum) 0);
}

/*
 * In this order, as always: the TRUNCATE hook of capture is the outer ProcessUtility
 * hook, so it records truncations once the whole statement, the writer's flush included,
 * has succeeded.
 */
void
audit_install_hooks(void)
{
	audit_write_install_hooks();
	audit_capture_install_hooks();
}
