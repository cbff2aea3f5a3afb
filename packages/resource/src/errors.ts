import type { AccessInfo } from './access.ts';

/**
 * The error codes a resource server answers with (RFC 6750 §3.1, RFC 9449 §7.1, RFC 6749 §4.1.2.1), and
 * `slow_down` with 429 (RFC 6585 §4), as intentgate's token endpoint answers a client that sends too much.
 */
export type ResourceErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'slow_down' | 'temporarily_unavailable';

export type ResourceErrorStatus = 400 | 401 | 403 | 429 | 503;

export type AuthScheme = 'Bearer' | 'DPoP';

export const ERROR_STATUS: Record<ResourceErrorCode, ResourceErrorStatus> = {
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  invalid_dpop_proof: 401,
  slow_down: 429,
  temporarily_unavailable: 503,
};

/**
 * A refused request. `error` is undefined when the request carried no credentials we accept: RFC 6750
 * §3.1 says such a challenge names no error. `access` is set when the token was valid but does not
 * cover the call, so the refusal can be reported to the ledger.
 */
export class ResourceAuthError extends Error {
  readonly status: ResourceErrorStatus;
  readonly error: ResourceErrorCode | undefined;
  readonly description: string;
  /** The `WWW-Authenticate` value; absent for 429 and 503, which are no challenge. */
  readonly wwwAuthenticate: string | undefined;
  /** Seconds, for 429 and 503. */
  readonly retryAfter: number | undefined;
  readonly access: AccessInfo | undefined;

  constructor(status: ResourceErrorStatus, error: ResourceErrorCode | undefined, description: string, options: { wwwAuthenticate?: string; retryAfter?: number; access?: AccessInfo } = {}) {
    super(description);
    this.name = 'ResourceAuthError';
    this.status = status;
    this.error = error;
    this.description = description;
    this.wwwAuthenticate = options.wwwAuthenticate;
    this.retryAfter = options.retryAfter;
    this.access = options.access;
  }
}

/**
 * A value safe inside a quoted auth-param: RFC 6750 §3 allows %x20-21 / %x23-5B / %x5D-7E only, so
 * quotes, backslashes, CR/LF and anything non-ASCII (often from the request: an object id in a path)
 * are dropped rather than escaped, and the length is capped.
 */
export function headerSafe(value: string, max = 256): string {
  return value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '').slice(0, max);
}

export interface ChallengeParams {
  error?: ResourceErrorCode;
  description?: string;
  scope?: string[];
}

export interface ChallengeContext {
  /** RFC 9728 §5.1: where the client finds this resource's metadata. */
  resourceMetadataUrl?: string;
  /** Algorithms accepted for DPoP proofs (RFC 9449 §7.1 `algs`). */
  dpopAlgs: readonly string[];
}

function challengeFor(scheme: AuthScheme, params: ChallengeParams, ctx: ChallengeContext): string {
  const parts: string[] = [];
  if (params.error) parts.push(`error="${params.error}"`);
  if (params.error && params.description) parts.push(`error_description="${headerSafe(params.description)}"`);
  if (params.scope && params.scope.length > 0) parts.push(`scope="${headerSafe(params.scope.join(' '), 1024)}"`);
  if (scheme === 'DPoP') parts.push(`algs="${ctx.dpopAlgs.join(' ')}"`);
  if (ctx.resourceMetadataUrl) parts.push(`resource_metadata="${headerSafe(ctx.resourceMetadataUrl, 2048)}"`);
  return parts.length > 0 ? `${scheme} ${parts.join(', ')}` : scheme;
}

/**
 * One `WWW-Authenticate` value with a challenge per scheme. The error goes on `errorOn` (the scheme the
 * client used, or DPoP for proof errors); the other schemes are offered without it.
 */
export function challenge(schemes: AuthScheme[], params: ChallengeParams, ctx: ChallengeContext, errorOn?: AuthScheme): string {
  return schemes.map((s) => challengeFor(s, !errorOn || s === errorOn ? params : {}, ctx)).join(', ');
}

/** What a middleware sends for a refusal: status, headers and an RFC 6750-style JSON body. */
export function errorResponse(err: ResourceAuthError): { status: number; headers: Record<string, string>; body: Record<string, string> } {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (err.wwwAuthenticate) headers['www-authenticate'] = err.wwwAuthenticate;
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  const body: Record<string, string> = err.error ? { error: err.error, error_description: err.description } : { error_description: err.description };
  return { status: err.status, headers, body };
}
