-- RFC 8037 Appendix A: Ed25519 in JOSE (A.1 key, A.4 signature, A.5 verification).
-- Ed25519 is deterministic, so sign_message must reproduce the RFC's signature exactly.

BEGIN;
SELECT plan(10);

CREATE TEMP TABLE rfc (name text PRIMARY KEY, val text NOT NULL);
INSERT INTO rfc VALUES
    ('private', '{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'),
    ('public', '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'),
    -- {"alg":"EdDSA"} . "Example of Ed25519 signing"
    ('jws', 'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg');

\ir include/rfc_vectors.sql

SELECT is(crm_security.jws_verify(pg_temp.r('jws'), pg_temp.rj('public')),
          pg_catalog.convert_to('Example of Ed25519 signing', 'UTF8'), 'A.5 jws_verify with the public JWK returns the payload');
SELECT is(crm_security.jws_verify(pg_temp.r('jws'), pg_temp.rj('private')),
          pg_catalog.convert_to('Example of Ed25519 signing', 'UTF8'), 'A.5 jws_verify with the private JWK too');
SELECT is(pg_temp.b64u(crm_security.sign_message('EdDSA', pg_temp.rj('private'),
              pg_catalog.convert_to('eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc', 'UTF8'))),
          pg_catalog.split_part(pg_temp.r('jws'), '.', 3), 'A.4 sign_message reproduces the RFC signature');
SELECT is(pg_temp.b64u(crm_security.sign_message('Ed25519', pg_temp.rj('private'),
              pg_catalog.convert_to('eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc', 'UTF8'))),
          pg_catalog.split_part(pg_temp.r('jws'), '.', 3), 'A.4 with the algorithm name Ed25519 (RFC 9864) too');
SELECT ok(crm_security.verify_signature('Ed25519', pg_temp.rj('public'),
              pg_catalog.convert_to('eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc', 'UTF8'),
              pg_catalog.decode(pg_catalog.translate(pg_catalog.split_part(pg_temp.r('jws'), '.', 3), '-_', '+/') || '==', 'base64')),
          'verify_signature Ed25519 accepts the RFC signature');
SELECT ok(NOT crm_security.verify_signature('EdDSA', pg_temp.rj('public'),
              pg_catalog.convert_to('eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd', 'UTF8'),
              pg_catalog.decode(pg_catalog.translate(pg_catalog.split_part(pg_temp.r('jws'), '.', 3), '-_', '+/') || '==', 'base64')),
          'verify_signature EdDSA refuses it over another message');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.r('jws'), pg_temp.r('public')),
                 '28000', NULL, 'jwt_verify refuses it: the payload is not a JSON object');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)',
                     pg_catalog.replace(pg_temp.r('jws'), '.hgyY', '.hgyZ'), pg_temp.r('public')),
                 '28000', NULL, 'a changed signature is refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)', pg_temp.r('jws'),
                     '{"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'),
                 '28000', NULL, 'an OKP key of curve X25519 is refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.sign_message(%L, %L::jsonb, %L::bytea)', 'EdDSA',
                     pg_temp.r('public'), '\x00'),
                 '28000', NULL, 'sign_message with the public JWK is refused');

SELECT * FROM finish();
ROLLBACK;
