/*
 * request_sign.h
 *		Signed requests: sign_request(), verify_request() and their nonce store
 *		(request_sign.c).
 */
#ifndef CRM_REQUEST_SIGN_H
#define CRM_REQUEST_SIGN_H

/* Settings, and the shared nonce store when the library is being preloaded. */
extern void request_sign_init(void);

#endif							/* CRM_REQUEST_SIGN_H */
