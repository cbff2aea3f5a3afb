import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { accessTokenHash } from '../../packages/resource/src/protocol/dpop_proof.ts';
import { basicAuth } from './server.ts';
import { EXPENSES, type World } from './world.ts';

export interface Holder { privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK; jkt: string }

/** A DPoP key pair (RFC 9449) and its thumbprint, as a token bound to it carries in `cnf.jkt`. */
export async function holder(alg = 'ES256'): Promise<Holder> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  return { privateKey, publicKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A DPoP proof for POST `htu`; any claim (`htm` too) or header can be overridden, or dropped with undefined. */
export async function proof(h: Holder, htu: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu, jti: randomBytes(12).toString('base64url'), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk, ...header } as { alg: string })
    .sign(h.privateKey);
}

/** A proof for presenting `token` at a resource (`ath` set, RFC 9449 §4.2). */
export function resourceProof(h: Holder, htm: string, htu: string, token: string, claims: Record<string, unknown> = {}): Promise<string> {
  return proof(h, htu, { htm, ath: accessTokenHash(token), ...claims });
}

/** client_credentials as the world's `batch` client (expenses:read), at `base` (default: the world's server), with an optional DPoP proof. */
export function clientCredentials(w: World, options: { base?: string; dpop?: string } = {}): Promise<Response> {
  const [id, secret] = w.creds.batch!;
  return fetch(`${options.base ?? w.t.url}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(id, secret), 'content-type': 'application/x-www-form-urlencoded', ...(options.dpop ? { dpop: options.dpop } : {}) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }),
  });
}
