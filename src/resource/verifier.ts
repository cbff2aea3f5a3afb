import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { DPOP_ALGS, DpopProofError, dpopHeader, verifyDpopProof } from '../dpop/proof.ts';
import { accessFromClaims, ClaimError, type AccessInfo } from './access.ts';
import { presentedToken, MAX_TOKEN_LENGTH } from './authorization.ts';
import type { ClientCredentials } from './client_auth.ts';
import { challenge, ERROR_STATUS, ResourceAuthError, type AuthScheme, type ChallengeContext, type ResourceErrorCode } from './errors.ts';
import { IntrospectionUnavailable, Introspector } from './introspection.ts';
import { ReplayCache } from './replay_cache.ts';
import { postResourceEvent, type ResourceEventReport } from './report.ts';
import { checkCall, type CallRequirement } from './requirement.ts';

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
    /** Proofs remembered for replay detection; default 50 000. */
    replayCacheSize?: number;
  };
  /**
   * The resource server's own intentgate client (registered with `resource_server`). With it, every
   * token's live status is introspected (so revocation is seen) and report() works.
   */
  credentials?: ClientCredentials;
  /** Seconds an introspection answer is reused (default 10, never beyond the token's exp; 0 = always ask). */
  introspection?: { cacheSeconds?: number };
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
  /** Verifies the token of a request and that it covers the call; throws ResourceAuthError. */
  authenticate(request: ResourceRequest, requirement?: CallRequirement): Promise<AccessInfo>;
  /** Checks an already verified token against a call (the same rule authenticate applies). */
  check(access: AccessInfo, requirement: CallRequirement): void;
  /** Reports what a call did to intentgate's ledger; answers the entry's sequence number. */
  report(access: AccessInfo, event: ResourceEventReport): Promise<number>;
}

const SYMMETRIC_OR_NONE = /^(HS|none$)/i;
const JWKS_UNAVAILABLE = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number`);
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
 * RFC 7662 live status (with credentials), and the call's scope and authorization details. Every failure is a
 * ResourceAuthError carrying its status and challenge; nothing is accepted when a check cannot run.
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
  const timeoutMs = nonNegative('timeoutMs', options.timeoutMs, 5000);
  const credentials = options.credentials;
  if (credentials && (!credentials.clientId || !credentials.clientSecret)) throw new TypeError('credentials need clientId and clientSecret');
  if (options.introspection && !credentials) throw new TypeError('introspection needs credentials');
  const jwks = createRemoteJWKSet(new URL(absoluteUrl('jwksUri', options.jwksUri ?? `${base}/jwks`)), { timeoutDuration: timeoutMs });
  const replays = new ReplayCache(nonNegative('dpop.replayCacheSize', options.dpop?.replayCacheSize, 50_000));
  const introspector = credentials
    ? new Introspector({
      endpoint: `${base}/token/introspection`,
      credentials,
      cacheSeconds: nonNegative('introspection.cacheSeconds', options.introspection?.cacheSeconds, 10),
      timeoutMs,
      maxEntries: 10_000,
    })
    : undefined;
  const context: ChallengeContext = { dpopAlgs: DPOP_ALGS, resourceMetadataUrl: options.resourceMetadataUrl };

  const refuse = (error: ResourceErrorCode | undefined, description: string, scheme?: AuthScheme, bound?: boolean): ResourceAuthError => {
    if (error === 'temporarily_unavailable') return new ResourceAuthError(503, error, description, { retryAfter: 5 });
    // A proof error is answered in the DPoP scheme (RFC 9449 §7.1); a bound token can only be used with DPoP.
    const schemes: AuthScheme[] = error === 'invalid_dpop_proof' || bound ? ['DPoP'] : ['Bearer', 'DPoP'];
    const errorOn = error === 'invalid_dpop_proof' || bound ? 'DPoP' : scheme;
    const wwwAuthenticate = challenge(schemes, { error, description }, context, errorOn);
    return new ResourceAuthError(error ? ERROR_STATUS[error] : 401, error, description, { wwwAuthenticate });
  };

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
    // jose checks iat only against maxTokenAge; a token from the future was not minted by a sane clock.
    if (typeof payload.iat !== 'number' || payload.iat > Date.now() / 1000 + clockTolerance) throw refuse('invalid_token', 'token iat is in the future', scheme);
    try {
      return accessFromClaims(token, payload);
    } catch (err) {
      if (err instanceof ClaimError) throw refuse('invalid_token', err.message, scheme);
      throw err;
    }
  }

  async function checkBinding(access: AccessInfo, scheme: AuthScheme, request: ResourceRequest): Promise<void> {
    if (!access.cnfJkt) {
      if (scheme === 'DPoP') throw refuse('invalid_token', 'token is not DPoP-bound; present it with the Bearer scheme', scheme);
      return;
    }
    // RFC 9449 §7.2: a bound token presented as a bearer token is refused, or a thief could drop the proof.
    if (scheme !== 'DPoP') throw refuse('invalid_token', 'token is DPoP-bound; present it with the DPoP scheme and a proof', scheme, true);
    let proof;
    try {
      const header = dpopHeader(request.dpop);
      if (!header) throw new DpopProofError('a DPoP proof is required with a DPoP-bound token');
      proof = await verifyDpopProof(header, { method: request.method, url: request.url, accessToken: access.token, maxAge, clockSkew, jkt: access.cnfJkt });
    } catch (err) {
      if (err instanceof DpopProofError) throw refuse('invalid_dpop_proof', err.message, scheme, true);
      throw err;
    }
    const verdict = replays.check(`${proof.jkt}:${proof.jti}`, (proof.iat + maxAge + clockSkew) * 1000);
    if (verdict === 'replay') throw refuse('invalid_dpop_proof', 'DPoP proof was already used (jti replayed)', scheme, true);
    if (verdict === 'full') throw refuse('temporarily_unavailable', 'too many recent DPoP proofs to check this one for replay');
  }

  async function checkLive(access: AccessInfo, requirement: CallRequirement, scheme: AuthScheme): Promise<void> {
    if (!introspector) {
      // A call marked sensitive must not silently go without a live check.
      if (requirement.sensitive) throw new TypeError('a sensitive requirement needs the verifier\'s credentials for introspection');
      return;
    }
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

    async authenticate(request, requirement = {}) {
      if (typeof request?.method !== 'string' || typeof request.url !== 'string') throw new TypeError('request needs method and url');
      const presented = presentedToken(request.authorization);
      if (presented.kind === 'none') throw refuse(undefined, 'an access token is required');
      if (presented.kind === 'malformed') throw refuse('invalid_request', presented.reason);
      if (presented.kind === 'too_large') throw refuse('invalid_token', `token is larger than ${MAX_TOKEN_LENGTH} bytes`);
      const { scheme, token } = presented;
      const access = await verifyToken(token, scheme);
      // Cheap local checks first: a stolen token without its key costs no introspection.
      await checkBinding(access, scheme, request);
      await checkLive(access, requirement, scheme);
      checkCall(access, requirement, context);
      return access;
    },

    check(access, requirement) {
      checkCall(access, requirement, context);
    },

    async report(access, event) {
      if (!credentials) throw new TypeError('report() needs the verifier\'s credentials (the resource server\'s intentgate client)');
      return postResourceEvent(`${base}/ledger/events`, credentials, access, event, timeoutMs);
    },
  };
}
