// The per-request pattern: one transaction per request, the verified context set first, in
// the same connection.  Errors are mapped to HTTP statuses by their SQLSTATE.
import pg from 'pg';

export function createPool(config) {
  const pool = new pg.Pool({ max: 10, ...config });
  // A connection that fails while idle in the pool is dropped by node-postgres; without a
  // listener the error would end the process.
  pool.on('error', () => {});
  return pool;
}

// Run fn(client) in a transaction whose claim context is `token`.  The transaction is rolled
// back on any error; a client whose ROLLBACK fails too is destroyed (release(err)), never
// handed to the next request in an unknown state.
export async function withContext(pool, token, fn, { requestId } = {}) {
  const client = await pool.connect();
  let broken;
  try {
    await client.query('BEGIN');
    if (token !== undefined) {
      await client.query('SELECT crm_security.set_claim_context($1)', [token]);
    }
    if (requestId !== undefined) {
      // set_config takes a bind parameter where SET LOCAL cannot.
      await client.query("SELECT set_config('crm_security.request_id', $1, true)", [requestId]);
    }
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      broken = rollbackErr;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

// The connection option that gives every refused token a SQLSTATE of its own inside class 28
// and its reason at the start of the detail (docs/errors.md).  It changes only how a
// refusal is reported, never whether a token is accepted; any role may set it.
export const SPECIFIC_ERROR_CODES = '-c crm_security.error_codes=specific';

// The reason of a refused token ('expired', 'bad_signature', 'unknown_key', ...), or null:
// with specific error codes, the detail starts with it and a colon.
export function refusalReason(err) {
  const code = err && err.code;
  if (typeof code !== 'string' || !code.startsWith('28') || code === '28000') return null;
  const m = /^([a-z_]+):/.exec((err && err.detail) || '');
  return m ? m[1] : null;
}

// SQLSTATE → HTTP status, as an API in front of the database would answer.
export function httpStatus(err) {
  const code = err && err.code;
  if (typeof code !== 'string') return 500;
  if (code === '28P1D') return 403;        // a service token the registry does not allow
  if (code.startsWith('28')) return 401;   // token refused (expired, bad signature, unknown key, ...)
  if (code === '42501') return 403;        // permission denied, or a row outside the tenant
  if (code === '22023' || code === '22P02') return 400;   // malformed argument
  return 500;
}

// The HTTP answer to an error: status, the token's refusal reason (null when none) and, for a
// 401, the WWW-Authenticate header of RFC 6750, where a client reads that its token expired
// and refreshes it.
export function httpError(err) {
  const status = httpStatus(err);
  const reason = refusalReason(err);
  const headers = {};
  if (status === 401) {
    headers['WWW-Authenticate'] = reason
      ? `Bearer error="invalid_token", error_description="${reason}"`
      : 'Bearer error="invalid_token"';
  }
  return { status, reason, headers };
}
