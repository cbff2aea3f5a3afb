import type { CryptoKeyPair } from 'oauth4webapi';
import { assertDpopKeyPair } from './dpop_key.ts';
import { AgentInputError } from './errors.ts';
import type { TokenTarget } from './token.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** One RFC 9396 authorization details entry; intentgate validates each type against its JSON Schema. */
export interface AuthorizationDetail {
  type: string;
  [member: string]: unknown;
}

/** What an agent asks for in one RFC 8693 token exchange. */
export interface ExchangeRequest {
  /** The token of the user (or the delegating agent) the agent acts for. */
  subjectToken: string;
  /** Default `urn:ietf:params:oauth:token-type:access_token`. */
  subjectTokenType?: string;
  /** What the agent is doing and why; recorded and shown to reviewers. Required. */
  intent: string;
  /** The one resource the token is for (an absolute URI), or… */
  resource?: string | URL;
  /** …the `client_id` of a sub-agent to delegate to. */
  audience?: string;
  /** Omitted: the policy's default scope. */
  scope?: string | readonly string[];
  authorizationDetails?: readonly AuthorizationDetail[];
  actorToken?: string;
  /** Default `urn:ietf:params:oauth:token-type:access_token` when `actorToken` is set. */
  actorTokenType?: string;
  /** Repeats a request a reviewer was asked to approve. */
  reviewId?: string;
  /** `true`: bind the token to the agent's own DPoP key; a key pair: bind it to that key. */
  dpop?: CryptoKeyPair | boolean;
}

/** A request checked once: the form to send, and what the response is read against. */
export interface ValidExchange {
  params: URLSearchParams;
  dpop: CryptoKeyPair | 'agent' | undefined;
  scope: string[];
  target: TokenTarget;
}

// RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

function text(field: string, value: unknown, { optional = false } = {}): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new AgentInputError(field, 'must be a non-empty string');
  if (!value.isWellFormed()) throw new AgentInputError(field, 'must be valid Unicode text');
  return value;
}

function scopes(value: unknown): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? value.split(' ') : value;
  if (!Array.isArray(list) || list.length === 0) throw new AgentInputError('scope', 'must be a space-separated string or a non-empty array of scope tokens');
  for (const s of list) {
    if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) throw new AgentInputError('scope', `${JSON.stringify(s)} is not an RFC 6749 scope token`);
  }
  return [...new Set(list as string[])];
}

function resourceUri(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const raw = value instanceof URL ? value.href : value;
  // RFC 8707 §2: an absolute URI without a fragment.
  if (typeof raw !== 'string' || !URL.canParse(raw) || raw.includes('#')) throw new AgentInputError('resource', 'must be an absolute URI without a fragment');
  return raw;
}

function details(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) throw new AgentInputError('authorizationDetails', 'must be a non-empty array');
  value.forEach((d, i) => {
    if (typeof d !== 'object' || d === null || Array.isArray(d) || typeof (d as { type?: unknown }).type !== 'string' || (d as { type: string }).type === '') {
      throw new AgentInputError(`authorizationDetails[${i}]`, 'must be an object with a string type');
    }
  });
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new AgentInputError('authorizationDetails', `must be JSON-serialisable (${(err as Error).message})`);
  }
}

function dpopOption(value: unknown): CryptoKeyPair | 'agent' | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return 'agent';
  assertDpopKeyPair(value, 'dpop');
  return value;
}

/** Checks a request the way intentgate will, so a mistake fails here instead of at the server. */
export function validateExchange(req: ExchangeRequest): ValidExchange {
  if (typeof req !== 'object' || req === null) throw new AgentInputError('request', 'must be an object');
  const subjectToken = text('subjectToken', req.subjectToken)!;
  const subjectTokenType = text('subjectTokenType', req.subjectTokenType, { optional: true }) ?? ACCESS_TOKEN_TYPE;
  const intent = text('intent', req.intent)!;
  const resource = resourceUri(req.resource);
  const audience = text('audience', req.audience, { optional: true });
  // intentgate issues a token for exactly one target: a resource, or an agent (delegation).
  if (resource === undefined && audience === undefined) throw new AgentInputError('resource', 'a resource or an audience is required');
  if (resource !== undefined && audience !== undefined && resource !== audience) {
    throw new AgentInputError('audience', 'a token has one target: pass a resource or an audience, not both');
  }
  const scope = scopes(req.scope);
  const detailsJson = details(req.authorizationDetails);
  const actorToken = text('actorToken', req.actorToken, { optional: true });
  const actorTokenType = text('actorTokenType', req.actorTokenType, { optional: true });
  if (actorTokenType !== undefined && actorToken === undefined) throw new AgentInputError('actorTokenType', 'is only meaningful with actorToken');
  const reviewId = text('reviewId', req.reviewId, { optional: true });
  const dpop = dpopOption(req.dpop);

  const params = new URLSearchParams({ subject_token: subjectToken, subject_token_type: subjectTokenType, intent });
  if (resource !== undefined) params.set('resource', resource);
  else params.set('audience', audience!);
  if (scope.length > 0) params.set('scope', scope.join(' '));
  if (detailsJson !== undefined) params.set('authorization_details', detailsJson);
  if (actorToken !== undefined) {
    params.set('actor_token', actorToken);
    params.set('actor_token_type', actorTokenType ?? ACCESS_TOKEN_TYPE);
  }
  if (reviewId !== undefined) params.set('review_id', reviewId);
  return { params, dpop, scope, target: resource !== undefined ? { resource } : { audience: audience! } };
}
