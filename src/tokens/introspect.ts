import type { JWTPayload } from 'jose';
import { verifyJwt } from '../../packages/resource/src/protocol/jws.ts';
import { boundKey } from '../../packages/resource/src/protocol/cnf.ts';
import { SIGNING_ALGS, type Keyring } from '../keys/keyring.ts';
import { issSub } from './sub_id.ts';
import { revokeCascade } from './revoke.ts';
import type { Db } from '../store/db.ts';
import { namedQuery } from '../store/prepared.ts';
import { hasPassed } from '../../packages/resource/src/protocol/time.ts';
import { isLive } from './live.ts';

const INACTIVE = Object.freeze({ active: false });


/** Our own signature, issuer and typ; undefined for anything else (including expired tokens). */
async function verifyOwn(keyring: Keyring, issuer: string, token: string): Promise<JWTPayload | undefined> {
  if (token.length > 16_384) return undefined;
  try {
    return (await verifyJwt(token, keyring.verifier(), { issuer, typ: 'at+jwt', algorithms: [...SIGNING_ALGS], requiredClaims: ['jti', 'exp', 'aud'] })).payload;
  } catch {
    return undefined;
  }
}

/**
 * RFC 7662 for the JWTs intentgate mints. Only the token's own resource server learns anything:
 * any other caller, and any token that is not live in the issued-token index, gets `{active: false}`.
 */
export async function introspect(db: Db, keyring: Keyring, issuer: string, callerResourceServer: string | null, token: string): Promise<Record<string, unknown>> {
  if (!callerResourceServer) return INACTIVE;
  const claims = await verifyOwn(keyring, issuer, token);
  if (!claims) return INACTIVE;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(callerResourceServer)) return INACTIVE;
  const [row] = await namedQuery<{ status: string; expires_at: Date; subject_issuer: string | null }>(db, 'introspect_liveness',
    'select status, expires_at, subject_issuer from issued_tokens where jti = $1 limit 1', [claims.jti]);
  if (!isLive(row)) return INACTIVE;
  // RFC 9449 §6.2: a bound token's key, as resource servers that introspect need it. Our own tokens' cnf is well-formed.
  const jkt = boundKey(claims);
  return {
    active: true,
    iss: claims.iss,
    sub: claims.sub,
    // RFC 9493 iss_sub: who the user is, by their issuer, from the index (the first hop's identity provider).
    ...(row.subject_issuer && typeof claims.sub === 'string' ? { sub_id: issSub(row.subject_issuer, claims.sub) } : {}),
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    client_id: claims.client_id,
    scope: claims.scope,
    token_type: jkt ? 'DPoP' : 'Bearer',
    ...(jkt ? { cnf: { jkt } } : {}),
    ...(claims.act ? { act: claims.act } : {}),
    ...(claims.task ? { task: claims.task } : {}),
    ...(claims.authorization_details ? { authorization_details: claims.authorization_details } : {}),
  };
}

/**
 * RFC 7009 for the JWTs intentgate mints: the client that holds the token may revoke it, and every token
 * derived from it goes too. Anyone else's request, or an unknown token, changes nothing (and is answered
 * the same way, so it reveals nothing).
 */
export async function revoke(db: Db, keyring: Keyring, issuer: string, callerClientId: string, token: string): Promise<boolean> {
  const claims = await verifyOwn(keyring, issuer, token);
  if (!claims || claims.client_id !== callerClientId) return false;
  return (await revokeCascade(db, { jti: claims.jti! }, callerClientId, 'revoked by the holder (RFC 7009)')).revoked > 0;
}
