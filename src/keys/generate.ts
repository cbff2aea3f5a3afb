import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SigningAlg } from '../config/index.ts';

export interface GeneratedKey { kid: string; alg: SigningAlg; publicJwk: JWK; privateJwk: JWK }

/** A fresh signing key pair; its kid is the RFC 7638 thumbprint, so it names the key's content. */
export async function generateSigningKey(alg: SigningAlg): Promise<GeneratedKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const meta = { kid, alg, use: 'sig' };
  return { kid, alg, publicJwk: { ...pub, ...meta }, privateJwk: { ...(await exportJWK(privateKey)), ...meta } };
}
