-- JWT and JWS (API.md section 2)

CREATE FUNCTION crm_security.jwt_verify(token text, key text, algorithms text[] DEFAULT NULL,
                                        audience text DEFAULT NULL, issuer text DEFAULT NULL,
                                        leeway interval DEFAULT '0 seconds')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwt_verify_text'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_verify(text, text, text[], text, text, interval) IS
'verify a compact JWT with an HMAC secret or PEM key and check its claims; returns the claims or raises 28000';

CREATE FUNCTION crm_security.jwt_verify(token text, key jsonb, algorithms text[] DEFAULT NULL,
                                        audience text DEFAULT NULL, issuer text DEFAULT NULL,
                                        leeway interval DEFAULT '0 seconds')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwt_verify_jsonb'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_verify(text, jsonb, text[], text, text, interval) IS
'verify a compact JWT with a JWK or a JWKS (key picked by kid) and check its claims';

CREATE FUNCTION crm_security.jwt_sign(claims jsonb, key text, algorithm text DEFAULT 'HS256',
                                      header jsonb DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_jwt_sign_text'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_sign(jsonb, text, text, jsonb) IS
'sign claims into a compact JWT with an HMAC secret or a PEM private key';

CREATE FUNCTION crm_security.jwt_sign(claims jsonb, key jsonb, algorithm text DEFAULT 'HS256',
                                      header jsonb DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_jwt_sign_jsonb'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_sign(jsonb, jsonb, text, jsonb) IS
'sign claims into a compact JWT with a private JWK (its kid goes into the header)';

CREATE FUNCTION crm_security.jwt_decode(token text,
                                        OUT header jsonb, OUT payload jsonb, OUT signature bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'crm_jwt_decode'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_decode(text) IS
'split and decode a compact JWT WITHOUT verifying it, for inspection only';

CREATE FUNCTION crm_security.jws_verify(jws text, key jsonb)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_jws_verify_jsonb'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jws_verify(text, jsonb) IS
'verify a compact JWS with a JWK or JWKS and return its payload; no claim checks';

CREATE FUNCTION crm_security.jws_verify(jws text, key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_jws_verify_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jws_verify(text, text) IS
'verify a compact JWS with an HMAC secret or PEM key and return its payload';
