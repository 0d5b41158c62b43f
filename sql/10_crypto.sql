-- Crypto primitives (API.md section 1)

CREATE FUNCTION crm_security.hmac(data bytea, key bytea, algorithm text DEFAULT 'sha256')
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_hmac_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.hmac(bytea, bytea, text) IS
'HMAC-SHA256/384/512 of data with key (any key length); algorithm is sha256, sha384 or sha512';

CREATE FUNCTION crm_security.hmac(data text, key text, algorithm text DEFAULT 'sha256')
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_hmac_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.hmac(text, text, text) IS
'HMAC-SHA256/384/512 of the UTF-8 bytes of data with the UTF-8 bytes of key';

CREATE FUNCTION crm_security.secure_compare(a bytea, b bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_secure_compare'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.secure_compare(bytea, bytea) IS
'equality in time that depends only on the lengths, for MACs and secrets';

CREATE FUNCTION crm_security.secure_compare(a text, b text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_secure_compare'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.secure_compare(text, text) IS
'byte equality of two texts in time that depends only on their lengths';

CREATE FUNCTION crm_security.random_bytes(n integer)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_random_bytes'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.random_bytes(integer) IS
'n bytes (1 to 1048576) from the OpenSSL CSPRNG';

CREATE FUNCTION crm_security.verify_signature(algorithm text, key text, message bytea, signature bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_signature_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_signature(text, text, bytea, bytea) IS
'raw JOSE signature check with an HMAC secret or a PEM key; false for a wrong signature';

CREATE FUNCTION crm_security.verify_signature(algorithm text, key jsonb, message bytea, signature bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_signature_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_signature(text, jsonb, bytea, bytea) IS
'raw JOSE signature check with a JWK or JWKS; false for a wrong signature';

CREATE FUNCTION crm_security.sign_message(algorithm text, key text, message bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_sign_message_text'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_message(text, text, bytea) IS
'raw JOSE signature (ECDSA as r||s) with an HMAC secret or a PEM private key';

CREATE FUNCTION crm_security.sign_message(algorithm text, key jsonb, message bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_sign_message_jsonb'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_message(text, jsonb, bytea) IS
'raw JOSE signature (ECDSA as r||s) with a private JWK';

-- Keys as JWK (additions to API.md section 1: making and publishing keys in SQL)

CREATE FUNCTION crm_security.generate_jwk(algorithm text, kid text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_generate_jwk'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.generate_jwk(text, text) IS
'a new private JWK for algorithm (RSA 2048, EC P-256/384/521, Ed25519, or an HMAC secret as long as the hash), bound to it with "alg"';

CREATE FUNCTION crm_security.jwk_public(jwk jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwk_public'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwk_public(jsonb) IS
'the public JWK of a private JWK (kid and alg kept), for publishing in a JWKS';

CREATE FUNCTION crm_security.pem_to_jwk(pem text, kid text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_pem_to_jwk'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.pem_to_jwk(text, text) IS
'the public JWK of a PEM key (SPKI, PKCS#8, traditional or X.509 certificate)';
