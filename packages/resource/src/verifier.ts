import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { DPOP_ALGS, DpopProofError, dpopHeader, verifyDpopProof, type VerifiedProof } from './protocol/dpop_proof.ts';
import { timeClaimProblem } from './protocol/time.ts';
import { accessFromClaims, ClaimError, type AccessInfo, type AuthorizationDetail } from './access.ts';
import { presentedToken, MAX_TOKEN_LENGTH } from './authorization.ts';
import type { ClientCredentials } from './client_auth.ts';
import { challenge, ERROR_STATUS, ResourceAuthError, type AuthScheme, type ChallengeContext, type ResourceErrorCode } from './errors.ts';
import { IntrospectionUnavailable, Introspector } from './introspection.ts';
import { ReplayCache } from './replay_cache.ts';
import { postResourceEvent, type ResourceEventReport } from './report.ts';
import { assertRequirementShape, checkCall, type CallRequirement } from './requirement.ts';
import { denialEvent } from './denial.ts';
import { TaskQueue } from './task_queue.ts';

export interface ResourceVerifierOptions {
  /** intentgate's issuer URL, exactly as in the tokens' `iss`. */
  issuer: string;
  /** This resource server's identifier: the `aud` its tokens carry. */
  resource: string;
  /** Default `${issuer}/jwks`. */
  jwksUri?: string;
  /** Token signing algorithms accepted; default ES256 and EdDSA. Asymmetric only. */
  algorithms?: string[];
  /** Seconds of clock difference tolerated on exp/nbf/iat; default 5. */
  clockTolerance?: number;
  dpop?: {
    /** Seconds a proof is accepted after its iat; default 60. */
    maxAge?: number;
    /** Seconds a client clock may run ahead; default 5. */
    clockSkew?: number;
    /** Proofs remembered for replay detection, all keys together; default 50 000. */
    replayCacheSize?: number;
    /**
     * Proofs remembered per DPoP key within a proof's lifetime (maxAge + 2 × clockSkew); default 1/20 of
     * replayCacheSize (at least 1). A key over it is answered 429 until its proofs age out; the others are not.
     */
    maxProofsPerKey?: number;
  };
  /**
   * Refuse tokens that are not DPoP-bound (401 invalid_token, challenging DPoP only). Pass the verifier
   * to protectedResourceMetadata so `dpop_bound_access_tokens_required` says the same. Default false.
   */
  requireDpop?: boolean;
  /**
   * The resource server's own intentgate client (registered with `resource_server`): introspection and
   * report(). Required unless `introspection: false`.
   */
  credentials?: ClientCredentials;
  /**
   * Live status checks (RFC 7662) of every token, an answer reused for `cacheSeconds` (default 10, never
   * beyond the token's exp; 0 = always ask); they need `credentials`. `false` verifies the JWT only: a
   * revoked token then keeps working until it expires (intentgate's tokens live minutes), and a
   * `sensitive` requirement cannot be met (a TypeError: when the middleware is built if the requirement
   * is static, else when it is used).
   */
  introspection?: { cacheSeconds?: number } | false;
  /** RFC 9728 metadata URL, announced in every challenge. */
  resourceMetadataUrl?: string;
  /** Milliseconds for each call to intentgate; default 5000. */
  timeoutMs?: number;
}

/** The request as the verifier needs it; the middlewares build it. */
export interface ResourceRequest {
  method: string;
  /** The full external URL of this request: what a DPoP proof's htu names. */
  url: string;
  authorization?: string;
  dpop?: string | string[];
}

export interface ResourceVerifier {
  readonly issuer: string;
  readonly resource: string;
  /** True when credentials are configured, so report() can work. */
  readonly canReport: boolean;
  /** True unless built with `introspection: false`. */
  readonly introspects: boolean;
  /** The `requireDpop` option: only DPoP-bound tokens are accepted. */
  readonly requiresDpop: boolean;
  /** Verifies the token of a request and that it covers the call; throws ResourceAuthError. */
  authenticate(request: ResourceRequest, requirement?: CallRequirement): Promise<AccessInfo>;
  /** Checks an already verified token against a call (checkCall); answers the detail that matched. */
  check(access: AccessInfo, requirement: CallRequirement): AuthorizationDetail | undefined;
  /** Throws TypeError for a requirement this verifier can never meet (the middlewares call it once for static ones). */
  assertRequirement(requirement: CallRequirement): void;
  /** Reports what a call did to intentgate's ledger; answers the entry's sequence number. */
  report(access: AccessInfo, event: ResourceEventReport): Promise<number>;
  /**
   * Reports a refusal of a valid token (403) to the ledger in the background, so the answer does not
   * wait for it: at most 8 at once, up to 1000 waiting (beyond that, while the ledger is slow or down,
   * further ones are dropped); failures are swallowed. Does nothing without credentials.
   */
  reportDenial(access: AccessInfo, requirement: CallRequirement): void;
  /** Resolves once every background denial report has been sent or has failed (e.g. before shutdown). */
  flushReports(): Promise<void>;
}

const SYMMETRIC_OR_NONE = /^(HS|none$)/i;
const JWKS_UNAVAILABLE = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number`);
  return v;
}

// Zero would make every call time out, or every DPoP request refused: never what was meant.
function positive(name: string, value: number | undefined, fallback: number, integer = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) throw new TypeError(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

function absoluteUrl(name: string, value: string): string {
  const u = URL.parse(value);
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new TypeError(`${name} must be an absolute http(s) URL`);
  return value;
}

/** A jose failure as the caller's fault (invalid_token) or ours (the key set could not be fetched). */
function tokenFailure(err: unknown): { code: ResourceErrorCode; description: string } {
  if (!(err instanceof joseErrors.JOSEError) || JWKS_UNAVAILABLE.has(err.code)) {
    return { code: 'temporarily_unavailable', description: 'the issuer\'s signing keys could not be fetched' };
  }
  if (err instanceof joseErrors.JWTExpired) return { code: 'invalid_token', description: 'token has expired' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) return { code: 'invalid_token', description: `token ${err.claim} claim is invalid (${err.reason})` };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { code: 'invalid_token', description: 'token signature is invalid' };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { code: 'invalid_token', description: 'token is not signed with a key the issuer publishes' };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { code: 'invalid_token', description: 'token is signed with an algorithm that is not accepted' };
  return { code: 'invalid_token', description: 'token is not a valid signed JWT' };
}

/**
 * A resource server's check of intentgate tokens: RFC 9068 JWT validation, RFC 9449 DPoP binding,
 * RFC 7662 live status (unless `introspection: false`), and the call's scope and authorization details.
 * Every failure is a ResourceAuthError carrying its status and challenge; nothing is accepted when a check
 * cannot run. Options are validated here, once (TypeError).
 */
export function createResourceVerifier(options: ResourceVerifierOptions): ResourceVerifier {
  const issuer = absoluteUrl('issuer', options.issuer);
  const resource = options.resource;
  // RFC 8707 §2: an absolute URI; it also becomes the MCP SDK's AuthInfo.resource URL.
  if (typeof resource !== 'string' || !URL.parse(resource)) throw new TypeError('resource must be this resource server\'s identifier, an absolute URI');
  const base = issuer.replace(/\/+$/, '');
  const algorithms = options.algorithms ?? ['ES256', 'EdDSA'];
  if (algorithms.length === 0 || algorithms.some((a) => SYMMETRIC_OR_NONE.test(a))) throw new TypeError('algorithms must be a non-empty list of asymmetric algorithms');
  const clockTolerance = nonNegative('clockTolerance', options.clockTolerance, 5);
  const maxAge = nonNegative('dpop.maxAge', options.dpop?.maxAge, 60);
  const clockSkew = nonNegative('dpop.clockSkew', options.dpop?.clockSkew, 5);
  const timeoutMs = positive('timeoutMs', options.timeoutMs, 5000);
  const replayCacheSize = positive('dpop.replayCacheSize', options.dpop?.replayCacheSize, 50_000, true);
  const maxProofsPerKey = positive('dpop.maxProofsPerKey', options.dpop?.maxProofsPerKey, Math.max(1, Math.floor(replayCacheSize / 20)), true);
  if (maxProofsPerKey > replayCacheSize) throw new TypeError('dpop.maxProofsPerKey must not exceed dpop.replayCacheSize');
  const requiresDpop = options.requireDpop ?? false;
  if (typeof requiresDpop !== 'boolean') throw new TypeError('requireDpop must be a boolean');
  const credentials = options.credentials;
  if (credentials && (!credentials.clientId || !credentials.clientSecret)) throw new TypeError('credentials need clientId and clientSecret');
  const introspection = options.introspection;
  if (introspection !== false && !credentials) {
    throw new TypeError('credentials are required to introspect tokens (and so to see revocations); pass introspection: false to verify JWTs only, a revoked token then working until it expires');
  }
  const jwks = createRemoteJWKSet(new URL(absoluteUrl('jwksUri', options.jwksUri ?? `${base}/jwks`)), { timeoutDuration: timeoutMs });
  // An accepted proof has iat > now - maxAge - skew and is refused once older; with iat below now + skew,
  // that is at most maxAge + 2 × skew after acceptance: one lifetime for every entry.
  const replays = new ReplayCache({ maxEntries: replayCacheSize, maxPerKey: maxProofsPerKey, lifetimeMs: (maxAge + 2 * clockSkew) * 1000 });
  const introspector = introspection !== false && credentials
    ? new Introspector({
      endpoint: `${base}/token/introspection`,
      credentials,
      cacheSeconds: nonNegative('introspection.cacheSeconds', introspection?.cacheSeconds, 10),
      timeoutMs,
      maxEntries: 10_000,
    })
    : undefined;
  const denials = new TaskQueue(8, 1000);
  const context: ChallengeContext = { dpopAlgs: DPOP_ALGS, resourceMetadataUrl: options.resourceMetadataUrl };
  const offered: AuthScheme[] = requiresDpop ? ['DPoP'] : ['Bearer', 'DPoP'];

  const refuse = (error: ResourceErrorCode | undefined, description: string, scheme?: AuthScheme, bound?: boolean): ResourceAuthError => {
    if (error === 'temporarily_unavailable') return new ResourceAuthError(503, error, description, { retryAfter: 5 });
    if (error === 'slow_down') return new ResourceAuthError(429, error, description, { retryAfter: Math.ceil(replays.lifetimeMs / 1000) });
    // A proof error is answered in the DPoP scheme (RFC 9449 §7.1); a bound token can only be used with DPoP.
    const dpopOnly = error === 'invalid_dpop_proof' || bound === true;
    const wwwAuthenticate = challenge(dpopOnly ? ['DPoP'] : offered, { error, description }, context, dpopOnly ? 'DPoP' : scheme);
    return new ResourceAuthError(error ? ERROR_STATUS[error] : 401, error, description, { wwwAuthenticate });
  };

  function assertRequirement(requirement: CallRequirement): void {
    assertRequirementShape(requirement);
    // A call marked sensitive must not silently go without a live check.
    if (requirement.sensitive && !introspector) throw new TypeError('a sensitive requirement needs introspection, which this verifier was built without (introspection: false)');
  }

  async function verifyToken(token: string, scheme: AuthScheme): Promise<AccessInfo> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer, audience: resource, typ: 'at+jwt', algorithms, clockTolerance, requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
      }));
    } catch (err) {
      const { code, description } = tokenFailure(err);
      throw refuse(code, description, scheme);
    }
    // jose checks iat only against maxTokenAge, and nbf one second looser: the one time rule decides.
    const late = timeClaimProblem(payload, clockTolerance);
    if (late) throw refuse('invalid_token', `token ${late}`, scheme);
    try {
      return accessFromClaims(token, payload);
    } catch (err) {
      if (err instanceof ClaimError) throw refuse('invalid_token', err.message, scheme);
      throw err;
    }
  }

  /** The binding and the proof, checked locally; the proof is not recorded yet (see recordProof). */
  async function checkBinding(access: AccessInfo, scheme: AuthScheme, request: ResourceRequest): Promise<VerifiedProof | undefined> {
    if (!access.cnfJkt) {
      if (requiresDpop) throw refuse('invalid_token', 'this resource accepts DPoP-bound tokens only', scheme, true);
      if (scheme === 'DPoP') throw refuse('invalid_token', 'token is not DPoP-bound; present it with the Bearer scheme', scheme);
      return undefined;
    }
    // RFC 9449 §7.2: a bound token presented as a bearer token is refused, or a thief could drop the proof.
    if (scheme !== 'DPoP') throw refuse('invalid_token', 'token is DPoP-bound; present it with the DPoP scheme and a proof', scheme, true);
    let proof: VerifiedProof;
    try {
      const header = dpopHeader(request.dpop);
      if (!header) throw new DpopProofError('a DPoP proof is required with a DPoP-bound token');
      proof = await verifyDpopProof(header, { method: request.method, url: request.url, accessToken: access.token, maxAge, clockSkew, jkt: access.cnfJkt });
    } catch (err) {
      if (err instanceof DpopProofError) throw refuse('invalid_dpop_proof', err.message, scheme, true);
      throw err;
    }
    // Looked up now (a replay costs no introspection), recorded only once the token is known live.
    if (replays.seen(proof.jkt, proof.jti)) throw replayed();
    return proof;
  }

  const replayed = () => refuse('invalid_dpop_proof', 'DPoP proof was already used (jti replayed)', 'DPoP', true);

  /**
   * Remembers an accepted proof. Only live tokens with valid proofs get here, so revoked or forged ones
   * cannot fill the cache. A key over its share is answered 429 slow_down with Retry-After (RFC 6585 §4:
   * too many requests from one sender in a given time), not 401: its proof is valid, and a client told
   * its proof is bad would fetch a new token rather than wait; not 503 either, which would say the
   * whole server is unavailable. Only when all keys together fill the cache is everyone refused (503).
   */
  function recordProof(proof: VerifiedProof): void {
    const verdict = replays.record(proof.jkt, proof.jti);
    if (verdict === 'replay') throw replayed();
    if (verdict === 'key_over_share') throw refuse('slow_down', `too many DPoP proofs from this key in the last ${Math.ceil(replays.lifetimeMs / 1000)} s; slow down`);
    if (verdict === 'full') throw refuse('temporarily_unavailable', 'too many recent DPoP proofs to check this one for replay');
  }

  async function checkLive(access: AccessInfo, requirement: CallRequirement, scheme: AuthScheme): Promise<void> {
    if (!introspector) return;
    let active: boolean;
    try {
      active = await introspector.active(access.token, access.expiresAt, requirement.sensitive === true);
    } catch (err) {
      if (err instanceof IntrospectionUnavailable) throw refuse('temporarily_unavailable', 'token status could not be checked with the authorization server');
      throw err;
    }
    if (!active) throw refuse('invalid_token', 'token is not active (revoked or expired)', scheme, Boolean(access.cnfJkt));
  }

  return {
    issuer,
    resource,
    canReport: Boolean(credentials),
    introspects: Boolean(introspector),
    requiresDpop,
    assertRequirement,

    async authenticate(request, requirement = {}) {
      if (typeof request?.method !== 'string' || typeof request.url !== 'string') throw new TypeError('request needs method and url');
      assertRequirement(requirement);
      const presented = presentedToken(request.authorization);
      if (presented.kind === 'none') throw refuse(undefined, 'an access token is required');
      if (presented.kind === 'malformed') throw refuse('invalid_request', presented.reason);
      if (presented.kind === 'too_large') throw refuse('invalid_token', `token is larger than ${MAX_TOKEN_LENGTH} bytes`);
      const { scheme, token } = presented;
      const access = await verifyToken(token, scheme);
      // Cheap local checks first: a stolen token without its key costs no introspection.
      const proof = await checkBinding(access, scheme, request);
      await checkLive(access, requirement, scheme);
      if (proof) recordProof(proof);
      checkCall(access, requirement, context);
      return access;
    },

    check(access, requirement) {
      return checkCall(access, requirement, context);
    },

    async report(access, event) {
      if (!credentials) throw new TypeError('report() needs the verifier\'s credentials (the resource server\'s intentgate client)');
      return postResourceEvent(`${base}/ledger/events`, credentials, access, event, timeoutMs);
    },

    reportDenial(access, requirement) {
      if (!credentials) return;
      const event = denialEvent(requirement);
      denials.push(() => postResourceEvent(`${base}/ledger/events`, credentials, access, event, timeoutMs));
    },

    flushReports() {
      return denials.idle();
    },
  };
}
