import type { JWTPayload } from 'jose';
import { boundKey, UnreadableCnf } from './protocol/cnf.ts';

/** The delegation chain (RFC 8693 §4.1): the current actor, nesting earlier ones. */
export interface Actor {
  sub: string;
  act?: Actor;
  [claim: string]: unknown;
}

/** One RFC 9396 authorization detail, as intentgate grants them (`tool_call` with action and object). */
export interface AuthorizationDetail {
  type: string;
  action?: string;
  object?: { type?: string; id?: string; [field: string]: unknown };
  [field: string]: unknown;
}

/** What a verified access token says, validated once: handlers can trust these types. */
export interface AccessInfo {
  token: string;
  jti: string;
  /** The user the agent acts for (or the client, for client_credentials tokens). */
  sub: string;
  /**
   * The user by their identity provider (the token's RFC 9493 `sub_id`, format `iss_sub`): compare users
   * by `iss` and `sub` together, never by `sub` alone. Undefined for tokens with no user (client_credentials).
   */
  user: { iss: string; sub: string } | undefined;
  clientId: string;
  scopes: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
  audience: string[];
  act: Actor | undefined;
  task: string | undefined;
  /** Empty when the token carries none. */
  authorizationDetails: AuthorizationDetail[];
  /** RFC 9449 key thumbprint the token is bound to. */
  cnfJkt: string | undefined;
  tokenType: 'Bearer' | 'DPoP';
  claims: JWTPayload;
}

export class ClaimError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(claims: JWTPayload, name: string, max = 1024): string {
  const v = claims[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new ClaimError(`token ${name} claim must be a non-empty string`);
  return v;
}

function actor(v: unknown, depth = 0): Actor {
  // intentgate bounds delegation depth far below this; a deeper chain is not one it minted.
  if (depth > 32 || !isObject(v) || typeof v.sub !== 'string') throw new ClaimError('token act claim must be an object with sub');
  if (v.act !== undefined) actor(v.act, depth + 1);
  return v as Actor;
}

function detail(v: unknown): AuthorizationDetail {
  if (!isObject(v) || typeof v.type !== 'string') throw new ClaimError('token authorization_details entries must be objects with a type');
  if (v.action !== undefined && typeof v.action !== 'string') throw new ClaimError('token authorization_details action must be a string');
  if (v.object !== undefined && !isObject(v.object)) throw new ClaimError('token authorization_details object must be an object');
  return v as AuthorizationDetail;
}

/** `sub_id` (RFC 9493 `iss_sub`), which must name the same `sub` as the token. */
function userOf(v: unknown, sub: string): AccessInfo['user'] {
  if (v === undefined) return undefined;
  if (!isObject(v) || v.format !== 'iss_sub' || typeof v.iss !== 'string' || v.iss.length === 0 || v.iss.length > 1024 || v.sub !== sub) {
    throw new ClaimError('token sub_id claim must be an iss_sub identifier of the token\'s sub');
  }
  return { iss: v.iss, sub };
}

/** The claims of a signature-checked token as AccessInfo; throws ClaimError for any ill-typed claim. */
export function accessFromClaims(token: string, claims: JWTPayload): AccessInfo {
  const scope = claims.scope;
  if (scope !== undefined && typeof scope !== 'string') throw new ClaimError('token scope claim must be a string');
  if (typeof claims.exp !== 'number') throw new ClaimError('token exp claim must be a number');
  const aud = claims.aud === undefined ? [] : [claims.aud].flat();
  const { task, authorization_details: details } = claims as Record<string, unknown>;
  if (task !== undefined && typeof task !== 'string') throw new ClaimError('token task claim must be a string');
  if (details !== undefined && !Array.isArray(details)) throw new ClaimError('token authorization_details claim must be an array');
  let cnfJkt: string | undefined;
  try {
    // A binding we cannot check (mTLS x5t#S256, …) must not be accepted as if it were a bearer token.
    cnfJkt = boundKey(claims);
  } catch (err) {
    if (err instanceof UnreadableCnf) throw new ClaimError(`token ${err.message}`);
    throw err;
  }
  const sub = str(claims, 'sub');
  return {
    token,
    jti: str(claims, 'jti', 256),
    sub,
    user: userOf(claims.sub_id, sub),
    clientId: str(claims, 'client_id'),
    scopes: scope ? scope.split(' ').filter(Boolean) : [],
    expiresAt: claims.exp,
    audience: aud,
    act: claims.act === undefined ? undefined : actor(claims.act),
    task,
    authorizationDetails: (details ?? []).map(detail),
    cnfJkt,
    tokenType: cnfJkt ? 'DPoP' : 'Bearer',
    claims,
  };
}
