/*
 * apikey_context.h
 *		The API-key context (apikey_context.c): set_api_key_context().
 */
#ifndef CRM_APIKEY_CONTEXT_H
#define CRM_APIKEY_CONTEXT_H

/* How long the token that carries an API-key context lives at most (seconds). */
#define APIKEY_CONTEXT_SECONDS 300

#endif							/* CRM_APIKEY_CONTEXT_H */
