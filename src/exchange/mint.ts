import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
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

/** An RFC 9068 access token: one audience, the delegation chain in `act`, the task it belongs to. */
export async function mintAccessToken(keyring: Keyring, input: MintInput): Promise<Minted> {
  const key = keyring.active();
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + input.ttl;
  const jti = randomBytes(18).toString('base64url');
  const token = await new SignJWT({
    sub_id: issSub(input.subIssuer, input.sub),
    client_id: input.clientId,
    scope: input.scope.join(' '),
    act: input.act,
    task: input.task,
    ...(input.details.length ? { authorization_details: input.details } : {}),
    ...(input.cnfJkt ? { cnf: { jkt: input.cnfJkt } } : {}),
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(input.issuer)
    .setSubject(input.sub)
    .setAudience(input.audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(await keyring.privateKey(key));
  return { token, jti, iat, exp };
}
