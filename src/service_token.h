/*
 * service_token.h
 *		Service tokens (service_token.c): issue_service_token().
 */
#ifndef CRM_SERVICE_TOKEN_H
#define CRM_SERVICE_TOKEN_H

/* The role whose members (and superusers) may mint service tokens. */
#define SERVICE_TOKEN_ISSUER_ROLE "crm_security_token_issuer"

/* The longest lifetime of a service token (seconds); the shortest is one second. */
#define SERVICE_TOKEN_MAX_SECONDS 3600

#endif							/* CRM_SERVICE_TOKEN_H */
