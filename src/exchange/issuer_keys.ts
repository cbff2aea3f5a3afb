import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { TrustedIssuer } from '../registry/issuers.ts';

/**
 * Verification keys per trusted issuer: inline sets as given; remote sets fetched with a timeout,
 * cached, and refetched on an unknown `kid` at most once per cooldown (jose's remote set does this).
 * A registry change (updated_at) replaces the entry. Keys never come from a token's own headers.
 */
export class IssuerKeys {
  readonly #sets = new Map<string, { version: string; get: JWTVerifyGetKey }>();

  for(issuer: TrustedIssuer): JWTVerifyGetKey {
    const cached = this.#sets.get(issuer.issuer);
    if (cached && cached.version === issuer.updated_at) return cached.get;
    const get = issuer.jwks
      ? createLocalJWKSet(issuer.jwks)
      : createRemoteJWKSet(new URL(issuer.jwks_uri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    this.#sets.set(issuer.issuer, { version: issuer.updated_at, get });
    return get;
  }
}
