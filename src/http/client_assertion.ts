import { createHash } from 'node:crypto';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { isSoleAudience } from '../jwt/audience.ts';
import { lifetimeTooLong, nowSeconds, timeClaimProblem } from '../../packages/resource/src/protocol/time.ts';
import type { Db } from '../store/db.ts';
import { recordOnce } from '../store/oidc_adapter.ts';

export interface AssertionRules {
  db: Db;
  /** This server's issuer identifier, exactly as discovery states it. */
  issuer: string;
  /** The token endpoint, exactly as discovery states it (not derived from the request's Host). */
  tokenEndpoint: string;
  clockSkew: number;
  /** Longest accepted lifetime of an assertion, seconds: `exp - iat`, and `exp` ahead of our clock. */
  maxLifetime: number;
}

// Our record of used assertions, in oidc-provider's table under a model name it never uses.
const MODEL = 'ClientAssertion';

function refuse(description: string): Error {
  return Object.assign(new errors.InvalidClientAuth(description), { error_description: description });
}

/**
 * intentgate's rules for `private_key_jwt` assertions (RFC 7523 §3, rfc7523bis, FAPI 2.0), installed as
 * oidc-provider's `assertJwtClientAuthClaimsAndHeader`, so they hold on every endpoint where it
 * authenticates clients (/token, /token/introspection, /token/revocation). oidc-provider has already
 * checked the signature, `iss` = `sub` = client_id, and that `exp` and `jti` are present; its audience check takes
 * any list that contains an accepted value (audience injection) and the endpoint's own URL taken from the
 * request's Host, and it ignores `iat` whenever `exp` is present. Storage failures are the caller's to map (503).
 */
export function clientAssertionRules(rules: AssertionRules) {
  const accepted = new Set([rules.issuer, rules.tokenEndpoint]);
  return async (claims: Record<string, unknown>): Promise<void> => {
    const { aud, exp, iat, jti, iss } = claims;
    if (!isSoleAudience(aud, accepted)) {
      throw refuse(`client assertion aud must be exactly ${rules.issuer} or ${rules.tokenEndpoint}, alone`);
    }
    if (typeof exp !== 'number') throw refuse('client assertion must carry a numeric exp');
    const now = nowSeconds();
    const late = timeClaimProblem(claims, rules.clockSkew, now);
    if (late) throw refuse(`client assertion ${late}`);
    // A long-lived assertion is a bearer credential: cap both its stated lifetime and how far ahead it reaches.
    if (lifetimeTooLong(exp, iat, rules.maxLifetime, rules.clockSkew, now)) {
      throw refuse(`client assertion lifetime must not exceed ${rules.maxLifetime} s`);
    }
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw refuse('client assertion must carry a jti of at most 256 characters');
    // Once, atomically, across every process sharing the database (oidc-provider's own replay check,
    // which still runs after this, is a find followed by a save). Kept until the assertion can no
    // longer be accepted; a record past that time may be taken over.
    const id = createHash('sha256').update(JSON.stringify([iss, jti])).digest('base64url');
    const expiresAt = new Date((exp + rules.clockSkew) * 1000);
    if (!await recordOnce(rules.db, MODEL, id, { iss }, expiresAt)) throw refuse('client assertion has been used before (jti replayed); make a new one for every request');
  };
}

/**
 * RFC 6749 §5.2: a failed client authentication is 401 with a challenge. oidc-provider adds one only
 * when the request carried an Authorization header; assertion and body-secret failures get it here.
 */
export function clientAuthChallenge(realm: string) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    await next();
    const body = ctx.body as { error?: unknown } | undefined;
    if (ctx.status === 401 && body?.error === 'invalid_client' && !ctx.response.get('WWW-Authenticate')) {
      ctx.set('WWW-Authenticate', `Basic realm="${realm}", error="invalid_client"`);
    }
  };
}
