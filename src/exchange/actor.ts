import { createLocalJWKSet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ASYMMETRIC_ALGS, verifyJwt, type JwtVerifyOptions, type ParsedJws } from '../../packages/resource/src/protocol/jws.ts';
import type { PublicJwks } from '../registry/jwks.ts';
import type { Db } from '../store/db.ts';
import { invalidRequest } from './errors.ts';
import { SIGNING_ALGS } from '../keys/keyring.ts';
import { isSoleAudience } from '../jwt/audience.ts';
import { lifetimeTooLong } from '../../packages/resource/src/protocol/time.ts';
import { isLive } from '../tokens/live.ts';
import { checkTimeClaims, describeJoseError, jktOf, peek, type Subject } from './subject.ts';
import { issuedToken } from '../tokens/issued.ts';

export interface ActorDeps {
  db: Db;
  issuer: string;
  ownKeys: () => JWTVerifyGetKey;
  clockSkew: number;
  /** Longest accepted lifetime of a client-signed actor token, seconds (the client assertions' cap). */
  maxLifetime: number;
}

export interface ActingClient { id: string; jwks: PublicJwks | null }

async function verified(token: ParsedJws, key: JWTVerifyGetKey, options: JwtVerifyOptions & { clockTolerance: number }): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await verifyJwt(token, key, options));
  } catch (err) {
    throw describeJoseError(err, 'actor_token');
  }
  checkTimeClaims(payload, options.clockTolerance, 'actor_token');
  return payload;
}

/**
 * The authenticated client is the actor (RFC 8693 §4.1). An actor_token, when sent, must identify that
 * same client: a token intentgate issued to it, or a JWT the client signed with its registered keys
 * (`iss` = `sub` = client_id, `aud` exactly this issuer, alone, and no longer-lived than a client assertion).
 * A subject token's may_act must name it too.
 * Returns the actor token's DPoP key (`cnf.jkt`) when it is bound: the request's proof must be made by it.
 */
export async function checkActor(deps: ActorDeps, client: ActingClient, actorToken: string | undefined, subject: Subject): Promise<string | undefined> {
  if (subject.mayAct?.sub !== undefined && subject.mayAct.sub !== client.id) {
    throw invalidRequest('the subject token\'s may_act does not allow this client to act');
  }
  if (subject.mayAct?.iss !== undefined && subject.mayAct.iss !== deps.issuer) {
    throw invalidRequest('the subject token\'s may_act names an actor from another issuer');
  }
  if (actorToken === undefined) return;

  const { claims, jws } = peek(actorToken, 'actor_token');
  if (claims.iss === deps.issuer) {
    const payload = await verified(jws, deps.ownKeys(), {
      issuer: deps.issuer, typ: 'at+jwt', algorithms: [...SIGNING_ALGS], clockTolerance: deps.clockSkew, requiredClaims: ['exp', 'client_id'],
    });
    if (payload.client_id !== client.id) throw invalidRequest('actor_token was issued to another client');
    const jkt = jktOf(payload, 'actor_token');
    const row = await issuedToken(deps.db, payload.jti ?? '');
    if (!isLive(row)) throw invalidRequest('actor_token has been revoked or is no longer live');
    return jkt;
  }
  if (claims.iss === client.id && client.jwks) {
    const payload = await verified(jws, createLocalJWKSet(client.jwks), {
      issuer: client.id, subject: client.id, algorithms: ASYMMETRIC_ALGS, clockTolerance: deps.clockSkew, requiredClaims: ['exp', 'aud'],
    });
    // jose takes any audience list that contains ours: a token made for several servers is refused here, and
    // a long-lived one is a bearer credential, held to the client assertions' cap.
    if (!isSoleAudience(payload.aud, new Set([deps.issuer]))) throw invalidRequest(`actor_token aud must be exactly ${deps.issuer}, alone`);
    if (lifetimeTooLong(payload.exp!, payload.iat, deps.maxLifetime, deps.clockSkew)) {
      throw invalidRequest(`actor_token lifetime must not exceed ${deps.maxLifetime} s`);
    }
    return jktOf(payload, 'actor_token');
  }
  throw invalidRequest('actor_token must identify the authenticated client');
}
