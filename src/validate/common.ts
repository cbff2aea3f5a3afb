import { ValidationError } from './schema.ts';

/** Absolute http(s) URI without fragment, as RFC 8707 requires of a resource indicator. */
export function checkAbsoluteUri(value: string, field: string, { httpsOnly = false } = {}): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(`${field} must be an absolute URI`, field);
  }
  if (url.hash || value.includes('#')) throw new ValidationError(`${field} must not contain a fragment`, field);
  if (url.protocol !== 'https:' && (httpsOnly || url.protocol !== 'http:')) {
    throw new ValidationError(`${field} must use ${httpsOnly ? 'https' : 'http or https'}`, field);
  }
  return value;
}

export const SCOPE_TOKEN = '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$';
export const SCOPE_STRING = '^([\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}( [\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128})*)?$';
export const ID_PATTERN = '^[A-Za-z0-9._~-]{1,128}$';

export function splitScope(scope: string | null | undefined): string[] {
  return scope ? scope.split(' ').filter(Boolean) : [];
}

export function iso(value: unknown): string {
  return new Date(value as string).toISOString();
}

/** Postgres unique violation: the id the caller chose is taken. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23505';
}
