import { randomBytes } from 'node:crypto';
import { privateKeyOf, signJwt } from '../../packages/resource/src/protocol/jws.ts';
import type { Keyring } from '../keys/keyring.ts';
import { issSub } from '../tokens/sub_id.ts';
import type { AuthorizationDetail } from './details.ts';
import type { Act } from './subject.ts';

export interface MintInput {
  issuer: string;
  /** The user: `sub` at the identity provider `subIssuer` (the first one of a delegation chain). */
  sub: string;
  subIssuer: string;
  audience: string;
  clientId: string;
  scope: string[];
  act: Act;
  task: string;
  ttl: number;
  details: AuthorizationDetail[];
  /** RFC 9449: the thumbprint of the key the token is bound to. */
  cnfJkt?: string;
}

export interface Minted { token: string; jti: string; iat: number; exp: number }

/** Signs one intentgate JWT with the active key: issuer, subject, audience, lifetime and a fresh jti. */
async function sign(keyring: Keyring, claims: Record<string, unknown>, h: { typ: string; issuer: string; sub: string; audience: string; ttl: number }): Promise<Minted> {
  const key = keyring.active();
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + h.ttl;
  const jti = randomBytes(18).toString('base64url');
  const token = signJwt({ alg: key.alg, kid: key.kid, typ: h.typ }, {
    ...claims, iss: h.issuer, sub: h.sub, aud: h.audience, iat, exp, jti,
  }, privateKeyOf(key.privateJwk));
  return { token, jti, iat, exp };
}

/** An RFC 9068 access token: one audience, the delegation chain in `act`, the task it belongs to. */
export async function mintAccessToken(keyring: Keyring, input: MintInput): Promise<Minted> {
  return sign(keyring, {
    sub_id: issSub(input.subIssuer, input.sub),
    client_id: input.clientId,
    scope: input.scope.join(' '),
    act: input.act,
    task: input.task,
    ...(input.details.length ? { authorization_details: input.details } : {}),
    ...(input.cnfJkt ? { cnf: { jkt: input.cnfJkt } } : {}),
  }, { typ: 'at+jwt', issuer: input.issuer, sub: input.sub, audience: input.audience, ttl: input.ttl });
}

/** A task token's JWT `typ`: no resource server accepts it (they take `at+jwt` only), nor does introspection. */
export const TASK_TOKEN_TYP = 'task+jwt';

export interface TaskMintInput {
  issuer: string;
  sub: string;
  subIssuer: string;
  clientId: string;
  task: string;
  scope: string[];
  resources: string[];
  details: AuthorizationDetail[];
  /** Actors before this agent, from the user's token (the agent itself is `client_id`). */
  act: Act | undefined;
  ttl: number;
  cnfJkt?: string;
}

/**
 * A task token: signed by intentgate, `typ` task+jwt and `aud` intentgate's own issuer, so every resource
 * server refuses it; presentable only by the agent in `client_id`, only at intentgate's token endpoint.
 */
export async function mintTaskToken(keyring: Keyring, input: TaskMintInput): Promise<Minted> {
  return sign(keyring, {
    sub_id: issSub(input.subIssuer, input.sub),
    client_id: input.clientId,
    task: input.task,
    scope: input.scope.join(' '),
    resources: input.resources,
    ...(input.details.length ? { authorization_details: input.details } : {}),
    ...(input.act ? { act: input.act } : {}),
    ...(input.cnfJkt ? { cnf: { jkt: input.cnfJkt } } : {}),
  }, { typ: TASK_TOKEN_TYP, issuer: input.issuer, sub: input.sub, audience: input.issuer, ttl: input.ttl });
}
