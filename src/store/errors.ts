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
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

export function isStorageFailure(err: unknown): boolean {
  if (err instanceof StorageUnavailable) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  const name = err.name;
  if (name === 'KnexTimeoutError') return true;
  const msg = err.message;
  return /Connection terminated|connection timeout|Client has encountered a connection error|pool is probably full|Unable to acquire a connection|PGlite is closed/i.test(msg);
}
