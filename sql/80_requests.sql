\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Signed requests (API.md section 5; docs/requests.md): HMAC-SHA256 over a canonical form
-- of method, path with query, timestamp, nonce and the SHA-256 of the body.

CREATE FUNCTION crm_security.sign_request(secret text, method text, path text, body bytea,
                                          ts bigint, nonce text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_sign_request'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_request(text, text, text, bytea, bigint, text) IS
    'signature "v1=<hex>" of a request: HMAC-SHA256 over the canonical form of docs/requests.md; a NULL body is the empty body; 22023 for malformed arguments';

CREATE FUNCTION crm_security.verify_request(secret text, signature text, method text, path text,
                                            body bytea, ts bigint,
                                            max_skew interval DEFAULT '5 minutes',
                                            nonce text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_request'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.verify_request(text, text, text, text, bytea, bigint, interval, text) IS
    'whether a request signature is authentic (constant-time), its timestamp within max_skew of now either way, and its nonce (if any) not seen in that window by any session; 22023 for malformed arguments, 55000 for a nonce without shared_preload_libraries';
