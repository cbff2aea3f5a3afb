import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface Holder { privateKey: CryptoKey; jwk: JWK; jkt: string }

/** A DPoP key pair (RFC 9449) and its thumbprint, as a token bound to it carries in `cnf.jkt`. */
export async function holder(alg = 'ES256'): Promise<Holder> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A DPoP proof for POST `htu`; any claim or header can be overridden for hostile variants. */
export async function proof(h: Holder, htu: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu, jti: randomBytes(12).toString('base64url'), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk, ...header } as { alg: string })
    .sign(h.privateKey);
}
