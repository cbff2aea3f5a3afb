import { createPrivateKey, KeyObject, sign as cryptoSign, verify as cryptoVerify, constants, type JsonWebKey } from 'node:crypto';
import { errors, type CryptoKey, type JWK, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';

/**
 * Compact JWS for JWTs on the hot path, with synchronous node:crypto: keys become KeyObjects once (per
 * CryptoKey, per private JWK), a signature check or a signature is one call, with no WebCrypto job and no
 * promise per step. WebCrypto's asynchronous ECDSA was the largest single cost of an exchange (issue #13).
 * Key selection stays with jose's JWKS resolvers (kid matching, remote fetch and cooldown); the errors are
 * jose's public error classes, so every caller's mapping of a failure to an answer is unchanged.
 * Shared by the authorization server (src/) and this package's DPoP proof check; imports nothing of either.
 */

export interface ParsedJws {
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
  /** `base64url(header).base64url(payload)`: the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
  /** The encoded parts, as jose's key resolvers receive them. */
  parts: readonly [string, string, string];
}

export interface JwtVerifyOptions {
  /** The only algorithms accepted (RFC 8725 §3.1); required. */
  algorithms: readonly string[];
  issuer?: string | readonly string[];
  audience?: string | readonly string[];
  subject?: string;
  /** Expected `typ` header, compared as media types (`application/` prefix and case ignored). */
  typ?: string;
  /** Seconds of skew tolerated on `exp` and `nbf`. */
  clockTolerance?: number;
  requiredClaims?: readonly string[];
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64urlBytes(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw new errors.JWSInvalid(`${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

function jsonObject(part: string, what: string, Err: typeof errors.JWSInvalid): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(b64urlBytes(part, what).toString('utf8'));
  } catch {
    throw new Err(`${what} is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Err(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWS whose payload is a JWT claims set; checks nothing about trust. */
export function parseJws(token: string): ParsedJws {
  if (typeof token !== 'string') throw new errors.JWSInvalid('a compact JWS must be a string');
  const parts = token.split('.');
  if (parts.length !== 3) throw new errors.JWSInvalid('a compact JWS has three parts');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(h, 'the protected header', errors.JWSInvalid) as ProtectedHeaderParameters;
  const payload = jsonObject(p, 'the JWT claims set', errors.JWTInvalid) as JWTPayload;
  const signature = b64urlBytes(s, 'the signature');
  return { header, payload, signingInput: `${h}.${p}`, signature, parts: [h, p, s] };
}

interface AlgSpec { digest: string | null; keyTypes: readonly string[]; curve?: string; sigLength?: number; pss?: boolean }

const ALGS: Readonly<Record<string, AlgSpec>> = {
  ES256: { digest: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', sigLength: 64 },
  ES384: { digest: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', sigLength: 96 },
  ES512: { digest: 'sha512', keyTypes: ['ec'], curve: 'secp521r1', sigLength: 132 },
  RS256: { digest: 'sha256', keyTypes: ['rsa'] },
  RS384: { digest: 'sha384', keyTypes: ['rsa'] },
  RS512: { digest: 'sha512', keyTypes: ['rsa'] },
  PS256: { digest: 'sha256', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS384: { digest: 'sha384', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS512: { digest: 'sha512', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  EdDSA: { digest: null, keyTypes: ['ed25519', 'ed448'] },
  Ed25519: { digest: null, keyTypes: ['ed25519'] },
};

/** Every algorithm verified here: asymmetric only (a shared secret would let the other side mint tokens). */
export const ASYMMETRIC_ALGS: readonly string[] = Object.keys(ALGS);

const SALT: Readonly<Record<string, number>> = { sha256: 32, sha384: 48, sha512: 64 };

/** Per key: the algorithms it fits (reading a KeyObject's type and details crosses into C++ each time). */
const fitting = new WeakMap<KeyObject, Map<string, boolean>>();

/** The key must be of the algorithm's family and curve, and an RSA key at least 2048 bits (RFC 7518 §3.3). */
function keyFits(key: KeyObject, alg: string, spec: AlgSpec): boolean {
  let known = fitting.get(key);
  if (!known) fitting.set(key, known = new Map());
  let fits = known.get(alg);
  if (fits === undefined) {
    const type = key.asymmetricKeyType;
    const details = key.asymmetricKeyDetails;
    fits = !!type && spec.keyTypes.includes(type)
      && (!spec.curve || details?.namedCurve === spec.curve)
      && (!spec.keyTypes.includes('rsa') || (details?.modulusLength ?? 0) >= 2048);
    known.set(alg, fits);
  }
  return fits;
}

// ECDSA goes through node:crypto with the bare KeyObject and DER signatures: passing an options object
// ({ key, dsaEncoding: 'ieee-p1363' }) costs some 40 µs per call in key preparation, more than the
// conversion between JWS's r‖s form (RFC 7518 §3.4) and DER done here.
function signOptions(key: KeyObject, spec: AlgSpec) {
  if (spec.pss) return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SALT[spec.digest!]! };
  return key;
}

/** One DER INTEGER of an unsigned big-endian value: leading zeros dropped, one added when the high bit is set. */
function derInteger(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const magnitude = v.subarray(i);
  const pad = magnitude[0]! & 0x80 ? 1 : 0;
  const out = Buffer.alloc(2 + pad + magnitude.length);
  out[0] = 0x02;
  out[1] = pad + magnitude.length;
  magnitude.copy(out, 2 + pad);
  return out;
}

/** r‖s (each `size` bytes) as a DER ECDSA-Sig-Value. */
function p1363ToDer(sig: Buffer, size: number): Buffer {
  const r = derInteger(sig.subarray(0, size));
  const s = derInteger(sig.subarray(size));
  const len = r.length + s.length;
  const head = len < 0x80 ? Buffer.of(0x30, len) : Buffer.of(0x30, 0x81, len);
  return Buffer.concat([head, r, s], head.length + len);
}

/** A DER ECDSA-Sig-Value (as OpenSSL makes it) as r‖s, each left-padded to `size` bytes. */
function derToP1363(der: Buffer, size: number): Buffer {
  let at = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  const out = Buffer.alloc(2 * size);
  for (let k = 0; k < 2; k++) {
    if (der[at] !== 0x02) throw new Error('unexpected ECDSA signature encoding');
    const len = der[at + 1]!;
    let v = der.subarray(at + 2, at + 2 + len);
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new Error('unexpected ECDSA signature encoding');
    v.copy(out, k * size + size - v.length);
    at += 2 + len;
  }
  return out;
}

const fromCryptoKey = new WeakMap<object, KeyObject>();

/** A jose key (a WebCrypto CryptoKey) as a KeyObject, converted once per key object. */
export function keyObjectOf(key: CryptoKey | KeyObject | Uint8Array): KeyObject {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array) throw new errors.JOSENotSupported('symmetric keys are not accepted here');
  let ko = fromCryptoKey.get(key);
  if (!ko) {
    ko = KeyObject.from(key as unknown as Parameters<typeof KeyObject.from>[0]);
    fromCryptoKey.set(key, ko);
  }
  return ko;
}

/** Whether `signature` is `alg`'s signature over `input` by `key` (false for a key of another kind). */
export function verifySignature(alg: string, key: KeyObject, input: string, signature: Buffer): boolean {
  const spec = ALGS[alg];
  if (!spec || !keyFits(key, alg, spec)) throw new errors.JOSENotSupported(`the key does not fit the algorithm ${alg}`);
  // An ECDSA signature in JWS is exactly r‖s of the curve's size (RFC 7518 §3.4): no other length is read.
  if (spec.sigLength && signature.length !== spec.sigLength) return false;
  try {
    const sig = spec.sigLength ? p1363ToDer(signature, spec.sigLength / 2) : signature;
    return cryptoVerify(spec.digest, Buffer.from(input), signOptions(key, spec), sig);
  } catch {
    return false;
  }
}

const typOf = (t: string) => {
  const lower = t.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
};
const asList = (v: string | readonly string[]) => (typeof v === 'string' ? [v] : v);
const claimFailed = (payload: JWTPayload, claim: string, reason: 'missing' | 'check_failed' | 'invalid', message: string) =>
  new errors.JWTClaimValidationFailed(message, payload, claim, reason);

/**
 * Verifies a JWT: the header (object, `alg` allowed, no `crit` extension, since none is understood here),
 * the key the resolver picks for it, the signature, `typ`, and the registered claims as options name them
 * (required claims present; `iss`, `sub`, `aud` as expected; `iat`, `nbf`, `exp` numbers, `exp` and `nbf`
 * within `clockTolerance`). Callers add the one time rule (packages/resource/src/protocol/time.ts) after.
 */
export async function verifyJwt(token: string | ParsedJws, getKey: JWTVerifyGetKey, options: JwtVerifyOptions): Promise<{ payload: JWTPayload; protectedHeader: ProtectedHeaderParameters }> {
  const jws = typeof token === 'string' ? parseJws(token) : token;
  const { header, payload } = jws;
  if (header.crit !== undefined) {
    // RFC 7515 §4.1.11: an extension this code does not understand must be refused; it understands none.
    if (!Array.isArray(header.crit) || header.crit.length === 0 || header.crit.some((c) => typeof c !== 'string' || c === '' || header[c] === undefined)) {
      throw new errors.JWSInvalid('"crit" is malformed');
    }
    throw new errors.JOSENotSupported('an extension listed in "crit" is not supported');
  }
  if (typeof header.alg !== 'string' || header.alg === '') throw new errors.JWSInvalid('"alg" is missing or invalid');
  if (!options.algorithms.includes(header.alg) || !ALGS[header.alg]) throw new errors.JOSEAlgNotAllowed('"alg" is not allowed');
  const resolved = await getKey(header as Parameters<JWTVerifyGetKey>[0], { payload: jws.parts[1], signature: jws.parts[2], protected: jws.parts[0] } as never);
  const key = keyObjectOf(resolved as CryptoKey | KeyObject | Uint8Array);
  if (!verifySignature(header.alg, key, jws.signingInput, jws.signature)) throw new errors.JWSSignatureVerificationFailed();

  if (options.typ !== undefined && (typeof header.typ !== 'string' || typOf(header.typ) !== typOf(options.typ))) {
    throw claimFailed(payload, 'typ', 'check_failed', 'unexpected "typ" JWT header value');
  }
  const required = new Set(options.requiredClaims ?? []);
  if (options.issuer !== undefined) required.add('iss');
  if (options.audience !== undefined) required.add('aud');
  if (options.subject !== undefined) required.add('sub');
  for (const claim of required) {
    if (!Object.hasOwn(payload, claim)) throw claimFailed(payload, claim, 'missing', `missing required "${claim}" claim`);
  }
  if (options.issuer !== undefined && !asList(options.issuer).includes(payload.iss as string)) {
    throw claimFailed(payload, 'iss', 'check_failed', 'unexpected "iss" claim value');
  }
  if (options.subject !== undefined && payload.sub !== options.subject) {
    throw claimFailed(payload, 'sub', 'check_failed', 'unexpected "sub" claim value');
  }
  if (options.audience !== undefined) {
    const expected = asList(options.audience);
    const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    if (!aud.some((a) => expected.includes(a))) throw claimFailed(payload, 'aud', 'check_failed', 'unexpected "aud" claim value');
  }
  const tolerance = options.clockTolerance ?? 0;
  const now = Math.floor(Date.now() / 1000);
  if (payload.iat !== undefined && typeof payload.iat !== 'number') throw claimFailed(payload, 'iat', 'invalid', '"iat" claim must be a number');
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== 'number') throw claimFailed(payload, 'nbf', 'invalid', '"nbf" claim must be a number');
    if (payload.nbf > now + tolerance) throw claimFailed(payload, 'nbf', 'check_failed', '"nbf" claim timestamp check failed');
  }
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== 'number') throw claimFailed(payload, 'exp', 'invalid', '"exp" claim must be a number');
    if (payload.exp <= now - tolerance) throw new errors.JWTExpired('"exp" claim timestamp check failed', payload, 'exp', 'check_failed');
  }
  return { payload, protectedHeader: header };
}

const fromPrivateJwk = new WeakMap<object, KeyObject>();

/** A private JWK as a KeyObject, imported once per JWK object. */
export function privateKeyOf(jwk: JWK): KeyObject {
  let ko = fromPrivateJwk.get(jwk);
  if (!ko) {
    ko = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    fromPrivateJwk.set(jwk, ko);
  }
  return ko;
}

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Signs a JWT: the header as given (it must name `alg`), the claims as given. */
export function signJwt(header: { alg: string } & Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const spec = ALGS[header.alg];
  if (!spec || !keyFits(key, header.alg, spec)) throw new Error(`cannot sign ${header.alg} with this key`);
  const input = `${b64json(header)}.${b64json(claims)}`;
  const raw = cryptoSign(spec.digest, Buffer.from(input), signOptions(key, spec));
  return `${input}.${(spec.sigLength ? derToP1363(raw, spec.sigLength / 2) : raw).toString('base64url')}`;
}
