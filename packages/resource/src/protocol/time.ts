/**
 * The one time rule, for every JWT intentgate or its resource middleware accepts (subject and actor
 * tokens, client assertions, DPoP proofs, access tokens at a resource server). NumericDates (RFC 7519
 * §2) are compared with the current whole second, and the clock skew `s` is an exclusive bound:
 *
 * - `nbf` and `iat`: refused when `>= now + s` (a claim exactly `s` seconds ahead is already too far),
 *   though never when `<= now` (RFC 7519 §4.1.5: valid from `nbf` on; this matters only when `s` is 0);
 * - `exp`: refused when `<= now - s` (a token whose `exp` is `s` seconds past has expired; with `s` = 0,
 *   at `exp` itself, as RFC 7519 §4.1.4 says).
 *
 * jose's own checks are `nbf > now + tolerance` (one second looser) and `exp <= now - tolerance` (the
 * same), so callers may let jose run with the same tolerance and must then call `timeClaimProblem`.
 * No imports: the resource middleware uses this module too.
 */

/** The current time in whole seconds since the epoch, as JWT NumericDates are compared. */
export function nowSeconds(nowMs = Date.now()): number {
  return Math.floor(nowMs / 1000);
}

/** An `nbf` or `iat` (or any "not before" instant) too far in the future for the skew. */
export function tooFarAhead(at: number, skew: number, now = nowSeconds()): boolean {
  return at > now && at >= now + skew;
}

/** An `exp` (or any "not after" instant) past, even allowing for the skew. */
export function isExpired(exp: number, skew: number, now = nowSeconds()): boolean {
  return exp <= now - skew;
}

/**
 * An instant intentgate recorded itself (an issued token's or a review's expiry): passed at that very
 * instant, with no skew since it is our own clock.
 */
export function hasPassed(at: Date | string | number, nowMs = Date.now()): boolean {
  const ms = at instanceof Date ? at.getTime() : new Date(at).getTime();
  // An unreadable instant is treated as passed: fail closed.
  return !(ms > nowMs);
}

export interface TimeClaims { nbf?: unknown; iat?: unknown; exp?: unknown }

/**
 * Why a token's `nbf`, `iat` or `exp` is not acceptable under the skew, as words to follow the token's
 * name ("has expired"); undefined when they are. Absent claims pass: callers require the ones they need.
 */
export function timeClaimProblem(claims: TimeClaims, skew: number, now = nowSeconds()): string | undefined {
  for (const name of ['nbf', 'iat', 'exp'] as const) {
    const v = claims[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) return `claim ${name} must be a number`;
  }
  if (claims.nbf !== undefined && tooFarAhead(claims.nbf as number, skew, now)) return 'is not yet valid';
  if (claims.iat !== undefined && tooFarAhead(claims.iat as number, skew, now)) return 'was issued in the future';
  if (claims.exp !== undefined && isExpired(claims.exp as number, skew, now)) return 'has expired';
  return undefined;
}

/**
 * A self-made credential (client assertion, client-signed actor token) that lives too long to be anything
 * but a bearer credential: `exp - iat` over `max`, or `exp` reaching more than `max` (plus the skew) ahead
 * of our clock, which bounds tokens without `iat` too.
 */
export function lifetimeTooLong(exp: number, iat: unknown, max: number, skew: number, now = nowSeconds()): boolean {
  return (typeof iat === 'number' && exp - iat > max) || tooFarAhead(exp - max, skew, now);
}
