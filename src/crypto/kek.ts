import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/index.ts';

/**
 * The key-encryption key: AES-256-GCM over private keys and client secrets at rest. Each ciphertext is
 * bound to what it protects through the additional data (e.g. `client_secret:<client_id>`), so rows
 * cannot be swapped for each other.
 */
export interface Kek {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export function parseKek(encoded: string): Buffer {
  const key = Buffer.from(encoded.trim(), 'base64url');
  if (key.length !== 32) throw new ConfigError('INTENTGATE_KEK must be 32 random bytes, base64 or base64url encoded (e.g. `openssl rand -base64 32`)');
  return key;
}

export function createKek(key: Buffer): Kek {
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, context) {
      const [version, ivPart, bodyPart] = sealed.split('.');
      if (version !== 'v1' || !ivPart || !bodyPart) throw new Error('sealed value has an unknown format');
      const body = Buffer.from(bodyPart, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivPart, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
    },
  };
}

/**
 * The KEK from INTENTGATE_KEK, else from DATA_DIR/kek; when neither exists and `generate` is set
 * (development mode), a new one is written there. Says whether it was generated so the caller can warn.
 */
export function loadKek(kek: string | undefined, dataDir: string, generate: boolean): { kek: Kek; generated: boolean; file?: string } {
  if (kek) return { kek: createKek(parseKek(kek)), generated: false };
  const file = path.join(dataDir, 'kek');
  if (existsSync(file)) return { kek: createKek(parseKek(readFileSync(file, 'utf8'))), generated: false, file };
  if (!generate) throw new ConfigError(`INTENTGATE_KEK is not set and ${file} does not exist`);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { kek: createKek(parseKek(readFileSync(file, 'utf8'))), generated: true, file };
}
