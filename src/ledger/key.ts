import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { ConfigError, type Config } from '../config/index.ts';

export interface LedgerKey { kid: string; privateKey: CryptoKey | Uint8Array; publicJwk: JWK }

async function fromText(text: string, where: string): Promise<LedgerKey> {
  let privateJwk: JWK;
  try {
    if (text.trimStart().startsWith('-----BEGIN')) {
      privateJwk = await exportJWK(await importPKCS8(text, 'EdDSA', { extractable: true }));
    } else {
      privateJwk = JSON.parse(text) as JWK;
    }
  } catch (err) {
    throw new ConfigError(`${where}: not an Ed25519 private key (PKCS#8 PEM or JWK): ${(err as Error).message}`);
  }
  if (privateJwk.kty !== 'OKP' || privateJwk.crv !== 'Ed25519' || !privateJwk.d) throw new ConfigError(`${where}: the ledger key must be an Ed25519 private key`);
  const { d: _d, ...pub } = privateJwk;
  const publicJwk = { kty: pub.kty, crv: pub.crv, x: pub.x } as JWK;
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateKey: await importJWK(privateJwk, 'EdDSA'), publicJwk: { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' } };
}

/**
 * The checkpoint signing key: from INTENTGATE_LEDGER_KEY, or in development mode one generated into
 * DATA_DIR. It is never stored in the database, so write access to the database cannot forge checkpoints.
 */
export async function loadLedgerKey(config: Config): Promise<{ key: LedgerKey; generated?: string }> {
  if (config.ledger.keyFile) return { key: await fromText(readFileSync(config.ledger.keyFile, 'utf8'), config.ledger.keyFile) };
  if (config.mode !== 'development') throw new ConfigError('INTENTGATE_LEDGER_KEY is required');
  const file = path.join(config.dataDir, 'ledger-key.jwk');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    try {
      writeFileSync(file, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600, flag: 'wx' });
      return { key: await fromText(readFileSync(file, 'utf8'), file), generated: file };
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
  return { key: await fromText(readFileSync(file, 'utf8'), file) };
}

/** A verifier's copy: the public key from a JWK or SPKI PEM file. */
export function readPublicKeyFile(file: string): string {
  return readFileSync(file, 'utf8');
}
