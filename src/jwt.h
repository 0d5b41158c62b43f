/*
 * jwt.h
 *		Compact JWT/JWS verification and signing, for the SQL functions and the claim context.
 */
#ifndef CRM_JWT_H
#define CRM_JWT_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "keys.h"

/* At most this many keys are tried for one token (a JWKS or key store without kid). */
#define JWT_MAX_CANDIDATES 64

typedef struct JwtVerifyOptions
{
	const CrmAlg **algorithms;	/* allowed algorithms, NULL: whatever the key allows */
	int			nalgorithms;
	const char *audience;		/* NULL: not checked */
	const char *issuer;			/* NULL: not checked */
	double		leeway;			/* seconds, >= 0 */
	bool		require_exp;
	TimestampTz now;
	bool		skip_claims;	/* jwt_verify_token() checks the signature only: the
								 * caller checks the claims (jwt_check_claims) */
} JwtVerifyOptions;

/* Defaults: any algorithm the key allows, no aud/iss check, no leeway, now(). */
extern void jwt_options_init(JwtVerifyOptions *opts);

/*
 * Verify a compact JWT with the keys of `keys` and check its claims; return the claims.
 * Every failure raises SQLSTATE 28000 with a detail saying why.  When `key_used` is not
 * NULL it receives the key that verified the signature.
 */
extern Jsonb *jwt_verify_token(const char *token, int len, CrmKeySet *keys,
							   const JwtVerifyOptions *opts, const CrmKey **key_used);

/*
 * The claim checks of jwt_verify_token(): exp, nbf (with the leeway), the types of iat,
 * iss, sub and aud, the audience and the issuer of `opts`; raises 28000.
 */
extern void jwt_check_claims(Jsonb *claims, const JwtVerifyOptions *opts);

/*
 * The algorithm and kid of a compact token's header, after the header checks that
 * verification makes (segments, base64url, JSON object, alg, crit, kid a string); raises
 * 28000 like jwt_verify_token().  For callers that pick keys before verifying.
 */
extern void jwt_token_header(const char *token, int len, const CrmAlg **alg, const char **kid);

/* Parse a text[] of algorithm names into `opts` (22023 for an unknown name or "none"). */
extern void jwt_options_set_algorithms(JwtVerifyOptions *opts, ArrayType *algs);

/* Verify a compact JWS with the keys of `keys`, no claim checks; return its payload. */
extern bytea *jws_verify_token(const char *jws, int len, CrmKeySet *keys, const CrmKey **key_used);

/* Sign `claims` with `key` and `alg`, with extra header members from `header` (or NULL). */
extern text *jwt_sign_claims(Jsonb *claims, const CrmKey *key, const CrmAlg *alg, Jsonb *header);

/* Until when accepted claims hold: exp plus the leeway, or DT_NOEND without exp. */
extern TimestampTz jwt_claims_end(Jsonb *claims, const JwtVerifyOptions *opts);

/* Parse a compact token without verifying it: header, payload, signature (28000 if malformed). */
extern void jwt_decode_token(const char *token, int len, Jsonb **header, Jsonb **payload, bytea **sig);

/* The token argument `argno` of a SQL function; 28000 "invalid token" when it is NULL. */
extern text *jwt_token_arg(FunctionCallInfo fcinfo, int argno);

/* Refuse a token longer than crm_security.max_token_length (28000). */
extern void jwt_check_length(int len);

/* Whether a token of `len` bytes is within crm_security.max_token_length (never raises). */
extern bool jwt_length_allowed(size_t len);

/* Module initialisation (the setting crm_security.max_token_length), from _PG_init. */
extern void jwt_init(void);

#endif							/* CRM_JWT_H */
