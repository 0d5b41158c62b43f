-- Signed requests and rate limits: a webhook signed by its sender is accepted once, its
-- replay is refused, and a rate limit shared by every connection kicks in with the time to
-- wait.  (The demo server preloads the library: shared_preload_libraries = 'crm_security'.)
\echo
\echo '################################################################'
\echo '# Chapter 7. Webhooks and limits'
\echo '#   A partner''s webhook is signed; the database accepts it once and refuses its replay.'
\echo '#   Rate limits are shared by every connection and say how long to wait.'
\echo '################################################################'
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS crm_security;

\echo
\echo == The sender signs a webhook: method, path with query, timestamp, nonce, SHA-256 of the body
SELECT 'whsec_demo_4f1c9a7e2b8d6e0f3a5c' AS secret,
       floor(extract(epoch FROM now()))::bigint AS ts,
       'n-' || md5(random()::text) AS nonce,
       convert_to('{"event": "deal.won", "deal": 42, "amount": 12000}', 'UTF8') AS body \gset
SELECT crm_security.sign_request(:'secret', 'POST', '/hooks/deals?tenant=acme', :'body', :ts, :'nonce') AS signature \gset
\echo signature header: :signature

\echo
\echo == The receiver verifies it: accepted
SELECT crm_security.verify_request(:'secret', :'signature', 'POST', '/hooks/deals?tenant=acme', :'body', :ts,
                                   nonce => :'nonce') AS accepted;

\echo
\echo == The same request replayed (any connection, within the 5-minute window): refused
SELECT crm_security.verify_request(:'secret', :'signature', 'POST', '/hooks/deals?tenant=acme', :'body', :ts,
                                   nonce => :'nonce') AS accepted;

\echo
\echo == Tampered: the amount changed, or the timestamp moved an hour back
SELECT crm_security.verify_request(:'secret', :'signature', 'POST', '/hooks/deals?tenant=acme',
                                   convert_to('{"event": "deal.won", "deal": 42, "amount": 99000}', 'UTF8'), :ts) AS amount_changed,
       crm_security.verify_request(:'secret', crm_security.sign_request(:'secret', 'POST', '/hooks/deals?tenant=acme', :'body', :ts - 3600),
                                   'POST', '/hooks/deals?tenant=acme', :'body', :ts - 3600) AS an_hour_old;

\echo
\echo == A rate limit of 5 requests per minute for one API client, across all connections
CREATE TEMP TABLE demo_requests AS SELECT n, 'acme-billing' AS client FROM generate_series(1, 7) n;
SELECT q.n AS request, r.allowed, r.remaining, date_trunc('second', r.retry_after) AS retry_after
  FROM demo_requests q, crm_security.rate_limit('client:' || q.client, 5, '1 minute') r
 ORDER BY q.n;

\echo
\echo == Lock an account after 3 failed logins (shared by all connections, kept through rollbacks)
SELECT n AS attempt, crm_security.register_failed_attempt('login:ada@acme.example', 3, '15 minutes') AS locked_now
  FROM generate_series(1, 3) n;
SELECT crm_security.is_locked_out('login:ada@acme.example') AS locked;
SELECT crm_security.clear_failed_attempts('login:ada@acme.example');

\echo
\echo == An API key with its own limit (2 uses a minute): the third use is refused, with the time to wait
SELECT api_key AS limited_key FROM crm_security.create_api_key('report export', 'initech', '{reports:read}',
                                                              rate_limit_per_minute => 2) \gset
SELECT name AS first_use FROM crm_security.verify_api_key(:'limited_key');
SELECT name AS second_use FROM crm_security.verify_api_key(:'limited_key');
SELECT demo_refused(format('SELECT crm_security.verify_api_key(%L)', :'limited_key')) AS third_use;
