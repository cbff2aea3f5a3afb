import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, type JWK, type JWSHeaderParameters } from 'jose';
import { verifyJwt } from './jws.ts';
import { MAX_JSON_DEPTH, tooDeep } from './json_depth.ts';
import { isExpired, nowSeconds, timeClaimProblem } from './time.ts';

/**
 * RFC 9449 proof checks shared by the authorization server (the token-exchange grant) and the
 * resource-server middleware. Replay is the caller's concern: the server keeps seen `jti`s in its
 * database, a resource server in memory.
 */

/**
 * Algorithms accepted for DPoP proofs, advertised as `dpop_signing_alg_values_supported`. Elliptic curves
 * only: an RSA proof carries a key whose size the client picks, and verifying a huge one costs us.
 */
export const DPOP_ALGS = ['ES256', 'ES384', 'EdDSA', 'Ed25519'] as const;

/** A proof is a compact JWS with an embedded EC or OKP public key: a few hundred bytes. */
const MAX_PROOF_BYTES = 4096;

export class DpopProofError extends Error {}

export interface DpopExpectation {
  /** The HTTP method of the request the proof must be made for. */
  method: string;
  /** The request URL as the client addressed it; query and fragment are ignored (RFC 9449 §4.3). */
  url: string;
  /** When presenting an access token: the proof must carry `ath`, its SHA-256 (RFC 9449 §4.2). */
  accessToken?: string;
  /** Seconds a proof stays acceptable after its `iat`. */
  maxAge: number;
  /** Seconds of tolerance for a client clock ahead of ours. */
  clockSkew: number;
  /** The key the proof must be made with (a bound token's `cnf.jkt`), when there is one. */
  jkt?: string;
}

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key: what a bound token's `cnf.jkt` holds. */
  jkt: string;
  jti: string;
  iat: number;
}

/**
 * The single DPoP header of a request. Node joins repeated headers with ", ", which a compact JWS
 * never contains, so a comma means the request carried more than one (refused by RFC 9449 §4.3).
 */
export function dpopHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value) || value.includes(',')) throw new DpopProofError('more than one DPoP header was sent');
  return value;
}

/** base64url SHA-256, as `ath` is computed over an access token. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function normalisedUrl(value: string): string | undefined {
  const u = URL.parse(value);
  if (!u) return undefined;
  u.search = '';
  u.hash = '';
  return u.href;
}

// An agent makes every proof with the same key: imported keys are kept by algorithm and thumbprint, so a
// proof costs its signature check, not a key import. Bounded; the oldest go first.
const MAX_CACHED_KEYS = 10_000;
const importedKeys = new Map<string, KeyObject>();

const EC_CURVES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const OKP_CURVES: Readonly<Record<string, number>> = { Ed25519: 32, Ed448: 57 };
const B64URL = /^[A-Za-z0-9_-]+$/;

function coordinate(v: unknown, bytes: number): v is string {
  return typeof v === 'string' && B64URL.test(v) && Buffer.from(v, 'base64url').length === bytes;
}

/**
 * RFC 7638 SHA-256 thumbprint of an EC or OKP public key: its required members, in lexicographic order,
 * as JSON without whitespace. The members must be well-formed (a known curve, coordinates of its size).
 */
function thumbprint(jwk: JWK): string {
  const { kty, crv, x, y } = jwk;
  let members: string;
  if (kty === 'EC' && typeof crv === 'string' && EC_CURVES[crv] && coordinate(x, EC_CURVES[crv]) && coordinate(y, EC_CURVES[crv])) {
    members = JSON.stringify({ crv, kty, x, y });
  } else if (kty === 'OKP' && typeof crv === 'string' && OKP_CURVES[crv] && coordinate(x, OKP_CURVES[crv])) {
    members = JSON.stringify({ crv, kty, x });
  } else {
    throw new DpopProofError('DPoP proof jwk is not a well-formed EC or OKP public key');
  }
  return createHash('sha256').update(members).digest('base64url');
}

/**
 * The proof's embedded public key (RFC 9449 §4.2), with the checks of jose's EmbeddedJWK: a JSON object,
 * no private part, `use` sig and `alg` the header's when present. Imported from the members its RFC 7638
 * thumbprint covers, so the key checked is exactly the key `jkt` names.
 */
function embeddedKey(header: JWSHeaderParameters, out: { jkt?: string }): KeyObject {
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw new DpopProofError('DPoP proof header must carry its public key as a JSON object (jwk)');
  if (jwk.d !== undefined || (jwk.kty !== 'EC' && jwk.kty !== 'OKP')) throw new DpopProofError('DPoP proof jwk must be an EC or OKP public key');
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new DpopProofError('DPoP proof jwk use must be sig when present');
  if (jwk.alg !== undefined && jwk.alg !== header.alg) throw new DpopProofError('DPoP proof jwk alg must be the header alg when present');
  const jkt = thumbprint(jwk);
  out.jkt = jkt;
  const cacheKey = `${header.alg}:${jkt}`;
  const cached = importedKeys.get(cacheKey);
  if (cached) return cached;
  const { kty, crv, x, y } = jwk;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty, crv, x, ...(kty === 'EC' ? { y } : {}) } as JsonWebKey, format: 'jwk' });
  } catch {
    throw new DpopProofError('DPoP proof jwk is not a valid public key');
  }
  if (importedKeys.size >= MAX_CACHED_KEYS) importedKeys.delete(importedKeys.keys().next().value!);
  importedKeys.set(cacheKey, key);
  return key;
}

/** Verifies one DPoP proof against the request it came with; throws DpopProofError saying why. */
export async function verifyDpopProof(proof: string, expect: DpopExpectation): Promise<VerifiedProof> {
  if (proof.length > MAX_PROOF_BYTES) throw new DpopProofError(`DPoP proof is larger than ${MAX_PROOF_BYTES} bytes`);
  let payload;
  const key: { jkt?: string } = {};
  try {
    const verified = await verifyJwt(proof, async (header) => embeddedKey(header, key) as never, { algorithms: DPOP_ALGS, clockTolerance: expect.clockSkew });
    // RFC 9449 §4.3 asks for exactly `dpop+jwt`; jose's typ option would also take `application/dpop+jwt`.
    if (verified.protectedHeader.typ !== 'dpop+jwt') throw new DpopProofError('DPoP proof typ must be dpop+jwt');
    // Like every JSON from outside, bounded in depth before anything reads it.
    if (tooDeep(verified.protectedHeader) || tooDeep(verified.payload)) throw new DpopProofError(`DPoP proof nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep`);
    payload = verified.payload;
  } catch (err) {
    if (err instanceof DpopProofError) throw err;
    if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new DpopProofError(`DPoP proof must be signed with one of ${DPOP_ALGS.join(', ')}`);
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new DpopProofError('DPoP proof signature is invalid');
    if (err instanceof joseErrors.JOSEError) throw new DpopProofError(`DPoP proof is not a valid JWS with an embedded public key (${err.code})`);
    throw new DpopProofError('DPoP proof is not a valid JWS with an embedded public key');
  }
  const { jti, htm, htu, iat, ath } = payload as Record<string, unknown>;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw new DpopProofError('DPoP proof must carry a jti string of at most 256 characters');
  // The jti is stored for replay detection: NUL, other controls and lone surrogates are refused, not sent to storage.
  if (/\p{Cc}/u.test(jti) || !jti.isWellFormed()) throw new DpopProofError('DPoP proof jti must be printable text');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new DpopProofError('DPoP proof must carry a numeric iat');
  // The one time rule (src/jwt/time.ts); a proof's age limit is an exp of iat + maxAge.
  const now = nowSeconds();
  const problem = timeClaimProblem(payload, expect.clockSkew, now);
  if (problem) throw new DpopProofError(`DPoP proof ${problem}`);
  if (isExpired(iat + expect.maxAge, expect.clockSkew, now)) throw new DpopProofError(`DPoP proof is older than ${expect.maxAge} s`);
  if (htm !== expect.method) throw new DpopProofError(`DPoP proof htm must be ${expect.method}`);
  if (typeof htu !== 'string' || normalisedUrl(htu) !== normalisedUrl(expect.url)) throw new DpopProofError(`DPoP proof htu must be ${normalisedUrl(expect.url)}`);
  if (expect.accessToken !== undefined && ath !== accessTokenHash(expect.accessToken)) {
    throw new DpopProofError('DPoP proof ath does not match the access token');
  }
  const jkt = key.jkt!;
  if (expect.jkt !== undefined && jkt !== expect.jkt) throw new DpopProofError('DPoP proof is not made with the key the token is bound to (cnf.jkt)');
  return { jkt, jti, iat };
}
