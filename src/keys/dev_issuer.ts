import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { Config } from '../config/index.ts';
import type { TrustedIssuer } from '../registry/issuers.ts';
import { generateSigningKey } from './generate.ts';

/**
 * The development issuer: a stand-in identity provider so that `npm start` can be tried end to end
 * without one. Its key lives in DATA_DIR (never in the database), and only a server in development
 * mode trusts it; production mode never does, whatever files exist.
 */
export function devIssuerId(config: Config): string {
  return `${config.issuer}/dev-issuer`;
}

function keyFile(config: Config): string {
  return path.join(config.dataDir, 'dev-issuer.jwk');
}

export async function loadDevIssuerKey(config: Config): Promise<JWK> {
  const file = keyFile(config);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as JWK;
  mkdirSync(config.dataDir, { recursive: true });
  const { privateJwk } = await generateSigningKey('ES256');
  try {
    writeFileSync(file, JSON.stringify(privateJwk), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  return JSON.parse(readFileSync(file, 'utf8')) as JWK;
}

/** The dev issuer as a trusted issuer record (held in memory, never stored). */
export async function devTrustedIssuer(config: Config): Promise<TrustedIssuer> {
  const { d: _private, ...publicJwk } = await loadDevIssuerKey(config);
  const now = new Date(0).toISOString();
  return {
    issuer: devIssuerId(config),
    jwks: { keys: [publicJwk] },
    jwks_uri: null,
    algorithms: ['ES256'],
    audiences: [config.issuer],
    typs: ['JWT'],
    scope_claim: 'scope',
    created_at: now,
    updated_at: now,
  };
}

/** A user token as an identity provider would issue it: `typ: JWT`, audience intentgate. */
export async function mintDevUserToken(config: Config, sub: string, scope: string, ttlSeconds: number, claims: Record<string, unknown>): Promise<string> {
  const jwk = await loadDevIssuerKey(config);
  return new SignJWT({ ...claims, scope })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ: 'JWT' })
    .setIssuer(devIssuerId(config))
    .setSubject(sub)
    .setAudience(config.issuer)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .setJti(randomBytes(12).toString('base64url'))
    .sign(await importJWK(jwk, 'ES256'));
}
