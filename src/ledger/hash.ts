import { createHash } from 'node:crypto';

export const ZERO_HASH = Buffer.alloc(32);

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ payload). */
export function leafOf(payload: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(payload).digest();
}

/** The chain: SHA-256(previous chain hash ‖ leaf hash); the first previous is 32 zero bytes. */
export function chainOf(previous: Uint8Array, leaf: Uint8Array): Buffer {
  return createHash('sha256').update(previous).update(leaf).digest();
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
