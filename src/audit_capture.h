/*
 * audit_capture.h
 *		How entries come in: the row trigger, TRUNCATE, log_event() (audit_capture.c).
 */
#ifndef CRM_AUDIT_CAPTURE_H
#define CRM_AUDIT_CAPTURE_H

/*
 * object_access_hook and ProcessUtility_hook: the TRUNCATE of an audited relation without
 * a TRUNCATE trigger of its own (a partition attached after enable_audit()) is recorded.
 */
extern void audit_capture_install_hooks(void);

#endif							/* CRM_AUDIT_CAPTURE_H */
