/**
 * The database could not be reached or answered with a server-side failure. Everything above the store
 * turns this into 503 `temporarily_unavailable` with Retry-After: fail closed, never a token.
 */
export class StorageUnavailable extends Error {
  constructor(cause: unknown) {
    super('storage unavailable', { cause });
    this.name = 'StorageUnavailable';
  }
}

// SQLSTATE classes that mean "the database is not there or not working", not "your input is wrong".
const UNAVAILABLE_SQLSTATE = /^(08|28|3D|53|57|58|XX)|^55000$/;
// SQLSTATE classes about the statement or the values in it (data exceptions such as 22021 for a NUL
// byte or 22P05 for \u0000 in jsonb, constraint violations, syntax and access errors, program limits). A caller can
// cause some of these at will, so none of them may ever read as an outage.
// Class 25 is left out: 25006 (read-only transaction) is what a failed-over primary answers.
const STATEMENT_SQLSTATE = /^(0A|2[0-46-9A-F]|3F|42|44|54)/;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

function sqlstate(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * The database refused a value: SQLSTATE class 22 (data exception) or 54 (program limit exceeded, e.g.
 * an index row too large for a very long value). The request's fault, answered 400.
 */
export function isRejectedInput(err: unknown): boolean {
  return /^(22|54)/.test(sqlstate(err) ?? '');
}

export function isStorageFailure(err: unknown, depth = 0): boolean {
  if (err instanceof StorageUnavailable) return true;
  if (!(err instanceof Error)) return false;
  const state = sqlstate(err);
  if (state !== undefined && STATEMENT_SQLSTATE.test(state)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  const name = err.name;
  if (name === 'KnexTimeoutError') return true;
  const msg = err.message;
  // pg's own words for a peer that went silent: the connect timeout ('timeout expired'), the client-side
  // query_timeout ('Query read timeout'), and a socket that ended under a query.
  if (/Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error|pool is probably full|Unable to acquire a connection|PGlite is closed/i.test(msg)) return true;
  // knex wraps some driver errors; judge the cause as well.
  const cause = (err as { cause?: unknown }).cause;
  return depth < 4 && cause !== undefined && cause !== err && isStorageFailure(cause, depth + 1);
}

/** For `.catch` around a query: a storage failure becomes StorageUnavailable, anything else is rethrown as it is. */
export function rethrowAsStorageFailure(err: unknown): never {
  throw isStorageFailure(err) ? new StorageUnavailable(err) : err;
}
