import { errors as joseErrors, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';
import { parseJws, verifyJwt, type JwtVerifyOptions, type ParsedJws } from '../../packages/resource/src/protocol/jws.ts';
import { boundKey, UnreadableCnf } from '../../packages/resource/src/protocol/cnf.ts';
import { SIGNING_ALGS, type Keyring } from '../keys/keyring.ts';
import type { TrustedIssuer } from '../registry/issuers.ts';
import type { RegistryCache } from '../registry/cache.ts';
import type { Db } from '../store/db.ts';
import { malformedString } from '../validate/schema.ts';
import { MAX_JSON_DEPTH, tooDeep } from '../validate/json.ts';
import { hasInvisible, INVISIBLE_KINDS } from '../validate/text.ts';
import { rethrowAsStorageFailure } from '../store/errors.ts';
import type { AuthorizationDetail } from './details.ts';
import { ExchangeError, invalidRequest } from './errors.ts';
import type { IssuerKeys } from './issuer_keys.ts';
import { hasPassed, timeClaimProblem } from '../../packages/resource/src/protocol/time.ts';
import { isLive } from '../tokens/live.ts';
import { issuedToken } from '../tokens/issued.ts';

export interface Act { sub: string; act?: Act }

/** A validated subject token, reduced to what the rest of the pipeline needs. */
export interface Subject {
  /** The user: identified by (issuer, sub), never sub alone. */
  user: { issuer: string; sub: string; claims: Record<string, unknown> };
  scopes: string[];
  exp: number;
  /** Earlier actors the subject token records (RFC 8693 §4.1), validated. */
  act: Act | undefined;
  /** Set when the subject token is one intentgate issued (a delegation hop). */
  parent?: { jti: string; task: string; act: Act | undefined; details: AuthorizationDetail[]; audience: string };
  mayAct: { sub?: string; iss?: string } | undefined;
  cnfJkt: string | undefined;
  /** Set when the subject is a task token: the task's ceiling, which each tool call must stay within. */
  task?: TaskCeiling;
}

/** What a task may do at most, as its start was granted. */
export interface TaskCeiling {
  scope: string[];
  resources: string[];
  details: AuthorizationDetail[];
  purpose: string | null;
}

export interface SubjectDeps {
  db: Db;
  issuer: string;
  keyring: Keyring;
  issuerKeys: IssuerKeys;
  clockSkew: number;
  /** Issuers trusted without a registry row: the development issuer, in development mode only. */
  builtInIssuers: ReadonlyMap<string, TrustedIssuer>;
  /** The registered trusted issuers, in memory. */
  registry: Pick<RegistryCache, 'issuer'>;
}


/** Why a token failed, in words a client developer can act on; never the token itself. */
export function describeJoseError(err: unknown, what: string): ExchangeError {
  if (err instanceof joseErrors.JWTExpired) return invalidRequest(`${what} has expired`);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return invalidRequest(`${what} is not yet valid`);
    if (err.claim === 'aud') return invalidRequest(`${what} audience is not accepted`);
    if (err.claim === 'iss') return invalidRequest(`${what} issuer does not match`);
    return invalidRequest(`${what} claim ${err.claim} is invalid: ${err.reason === 'missing' ? 'missing' : 'check failed'}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalidRequest(`${what} is signed with an algorithm this issuer may not use`);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalidRequest(`${what} signature is invalid`);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return invalidRequest(`${what} is signed with a key the issuer does not publish`);
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return new ExchangeError('temporarily_unavailable', `the keys of the ${what} issuer could not be fetched; retry later`, {}, 503);
  }
  if (err instanceof joseErrors.JOSEError) return invalidRequest(`${what} is not a valid JWT (${err.code})`);
  if (err instanceof TypeError || (err as { name?: string })?.name === 'AbortError') {
    return new ExchangeError('temporarily_unavailable', `the keys of the ${what} issuer could not be fetched; retry later`, {}, 503);
  }
  throw err;
}

/** Reads the header and claims without trusting them: only to choose which issuer's rules apply. */
export function peek(token: string, what: string): { header: ProtectedHeaderParameters; claims: JWTPayload; jws: ParsedJws } {
  const parts = token.split('.');
  if (parts.length === 5) throw invalidRequest(`${what} is encrypted (JWE); only signed JWTs are accepted`);
  if (parts.length !== 3) throw invalidRequest(`${what} is not a JWT`);
  let decoded;
  try {
    // Decoded once: the signature check below takes this same parse.
    const jws = parseJws(token);
    decoded = { header: jws.header, claims: jws.payload, jws };
  } catch {
    throw invalidRequest(`${what} is not a JWT`);
  }
  // The string walkers below recurse: bound the nesting first (this runs before any signature check).
  if (tooDeep(decoded.header) || tooDeep(decoded.claims)) {
    throw invalidRequest(`${what} nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep`);
  }
  // Claims are looked up and recorded (parsing has already refused bytes that are not UTF-8): lone
  // surrogates and NUL are refused here, before any query can trip over them.
  if (malformedString(decoded.header) !== undefined || malformedString(decoded.claims) !== undefined) {
    throw invalidRequest(`${what} carries text that is not well-formed Unicode, or that contains NUL`);
  }
  return decoded;
}

function normTyp(typ: string): string {
  const t = typ.toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

function scopesFrom(claims: JWTPayload, claim: 'scope' | 'scp'): string[] {
  const v = claims[claim];
  if (typeof v === 'string') return v.split(' ').filter(Boolean);
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  return [];
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

function mayActOf(claims: JWTPayload): Subject['mayAct'] {
  const m = claims.may_act;
  if (m === undefined) return undefined;
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalidRequest('subject_token may_act claim is malformed');
  const { sub, iss } = m as Record<string, unknown>;
  // A may_act that cannot be read restricts nothing we could enforce: refuse it rather than ignore it.
  if ((sub !== undefined && !nonEmpty(sub)) || (iss !== undefined && !nonEmpty(iss))) throw invalidRequest('subject_token may_act claim is malformed');
  return { ...(sub !== undefined ? { sub } : {}), ...(iss !== undefined ? { iss } : {}) };
}

/** RFC 8693 §4.1: `act` is `{sub, act?}` all the way down. */
export function actOf(value: unknown, depth = 0): Act | undefined {
  if (value === undefined) return undefined;
  if (depth > 32 || value === null || typeof value !== 'object' || Array.isArray(value) || !nonEmpty((value as { sub?: unknown }).sub)) {
    throw invalidRequest('subject_token act claim is malformed');
  }
  const { sub, act } = value as { sub: string; act?: unknown };
  const inner = actOf(act, depth + 1);
  return { sub, ...(inner ? { act: inner } : {}) };
}

/** The longest user `sub` accepted (RFC 7519 sets none; OpenID Connect's is 255 ASCII characters). */
export const MAX_SUB_LENGTH = 255;

// The user's sub is stored, indexed, and shown to reviewers: bounded, and nothing in it they cannot see.
export function checkSub(payload: JWTPayload): string {
  const { sub } = payload;
  if (!nonEmpty(sub)) throw invalidRequest('subject_token sub must be a non-empty string');
  if (sub.length > MAX_SUB_LENGTH) throw invalidRequest(`subject_token sub must be at most ${MAX_SUB_LENGTH} characters`);
  if (hasInvisible(sub)) throw invalidRequest(`subject_token sub must not contain ${INVISIBLE_KINDS}`);
  return sub;
}

/** A sender-constrained token's key (RFC 9449 `cnf.jkt`): exchanging it needs a proof made by that key (src/exchange/dpop.ts). */
export function jktOf(claims: JWTPayload, what: string): string | undefined {
  try {
    return boundKey(claims);
  } catch (err) {
    if (err instanceof UnreadableCnf) throw invalidRequest(`${what} ${err.message}`);
    throw err;
  }
}

export async function verify(token: string | ParsedJws, key: JWTVerifyGetKey, options: JwtVerifyOptions, what: string) {
  try {
    return await verifyJwt(token, key, options);
  } catch (err) {
    throw describeJoseError(err, what);
  }
}

/**
 * Names the issuer that is not trusted (cut short: it is the caller's text). A token from some development
 * issuer that is not this server's (another port, another DATA_DIR) is the usual first-run mistake: say which
 * one this server trusts.
 */
function untrusted(iss: string, builtIn: ReadonlyMap<string, TrustedIssuer>): string {
  const shown = iss.length > 200 ? `${iss.slice(0, 200)}...` : iss;
  const dev = [...builtIn.keys()].find((i) => i.endsWith('/dev-issuer'));
  const hint = dev && iss.endsWith('/dev-issuer') ? `; this server's development issuer is ${dev}` : '';
  return `subject_token issuer is not trusted: ${shown}${hint}`;
}

/**
 * Authenticates the subject token (RFC 8693 §2.1, RFC 8725, RFC 9068): either a JWT from a trusted
 * issuer, checked against that issuer's keys, algorithms, audiences and typ; or a token intentgate
 * issued, which must still be live in the issued-token index and presentable by this client.
 */
export async function authenticateSubject(deps: SubjectDeps, token: string, clientId: string): Promise<Subject> {
  const { header, claims, jws } = peek(token, 'subject_token');
  if (typeof claims.iss !== 'string') throw invalidRequest('subject_token has no issuer');
  if (claims.iss === deps.issuer) return ownToken(deps, jws, clientId);

  const issuer = deps.builtInIssuers.get(claims.iss) ?? deps.registry.issuer(claims.iss);
  if (!issuer) throw invalidRequest(untrusted(claims.iss, deps.builtInIssuers));
  const typ = typeof header.typ === 'string' ? normTyp(header.typ) : undefined;
  if (!typ || !issuer.typs.map(normTyp).includes(typ)) throw invalidRequest(`subject_token typ must be one of ${issuer.typs.join(', ')}`);
  const { payload } = await verify(jws, deps.issuerKeys.for(issuer), {
    issuer: issuer.issuer,
    audience: issuer.audiences,
    algorithms: issuer.algorithms,
    clockTolerance: deps.clockSkew,
    requiredClaims: ['exp', 'sub'],
  }, 'subject_token');
  checkTimeClaims(payload, deps.clockSkew, 'subject_token');
  return {
    user: { issuer: issuer.issuer, sub: checkSub(payload), claims: payload as Record<string, unknown> },
    scopes: scopesFrom(payload, issuer.scope_claim),
    exp: payload.exp!,
    act: actOf(payload.act),
    mayAct: mayActOf(payload),
    cnfJkt: jktOf(payload, 'subject_token'),
  };
}

/** After jose, which is one second looser at the `nbf` boundary: the one time rule (src/jwt/time.ts). */
export function checkTimeClaims(payload: JWTPayload, skew: number, what: string): void {
  const problem = timeClaimProblem(payload, skew);
  if (problem) throw invalidRequest(`${what} ${problem}`);
}

async function ownToken(deps: SubjectDeps, token: ParsedJws, clientId: string): Promise<Subject> {
  const { payload } = await verify(token, deps.keyring.verifier(), {
    issuer: deps.issuer,
    typ: 'at+jwt',
    algorithms: [...SIGNING_ALGS],
    clockTolerance: deps.clockSkew,
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'aud'],
  }, 'subject_token');
  checkTimeClaims(payload, deps.clockSkew, 'subject_token');
  const mayAct = mayActOf(payload);
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(clientId) && mayAct?.sub !== clientId) {
    throw invalidRequest('subject_token may not be presented by this client: it is not in the token audience or may_act');
  }
  const row = await issuedToken(deps.db, String(payload.jti)).catch(rethrowAsStorageFailure);
  if (!isLive(row)) {
    throw invalidRequest('subject_token has been revoked or is no longer live');
  }
  // Only an exchanged token speaks for a user; one without a user's issuer (client_credentials) does not.
  if (typeof row.subject_issuer !== 'string' || row.subject_issuer === '') throw invalidRequest('subject_token does not represent a user');
  // Every exchanged token belongs to a task; a row without one was not made by an exchange.
  if (!row.task) throw invalidRequest('subject_token does not belong to a task');
  return {
    // The original user's claims, as the first exchange saw them: policy on `user` holds on every hop.
    user: { issuer: row.subject_issuer, sub: checkSub(payload), claims: (row.subject_claims as Record<string, unknown> | null) ?? {} },
    act: actOf(payload.act),
    scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
    exp: payload.exp!,
    parent: {
      jti: payload.jti!,
      task: row.task,
      act: actOf(payload.act),
      // What the parent granted; a token without the claim granted no detail-level action.
      details: Array.isArray(payload.authorization_details) ? payload.authorization_details as AuthorizationDetail[] : [],
      audience: aud[0] as string,
    },
    mayAct,
    cnfJkt: jktOf(payload, 'subject_token'),
  };
}
