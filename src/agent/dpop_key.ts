import { DPoP, generateKeyPair, type CryptoKeyPair, type DPoPHandle } from 'oauth4webapi';
import { AgentInputError } from './errors.ts';

/** A key pair oauth4webapi can sign DPoP proofs with: asymmetric, public half exportable for the proof's `jwk`. */
export function assertDpopKeyPair(value: unknown, field: string): asserts value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | null;
  if (typeof pair !== 'object' || pair === null || !(pair.privateKey instanceof CryptoKey) || !(pair.publicKey instanceof CryptoKey)) {
    throw new AgentInputError(field, 'must be true, false, or a CryptoKeyPair');
  }
  if (pair.privateKey.type !== 'private' || pair.publicKey.type !== 'public') throw new AgentInputError(field, 'must hold a private and a public key');
  if (!pair.publicKey.extractable) throw new AgentInputError(field, 'the public key must be extractable (it is sent in every proof)');
}

/**
 * The agent's own DPoP key, made on first use: ES256 with a non-extractable private key, so the
 * tokens bound to it cannot be used by anything that merely copies them out of this process.
 */
export class AgentKey {
  #pair: Promise<CryptoKeyPair> | undefined;

  get(): Promise<CryptoKeyPair> {
    if (!this.#pair) {
      const pair = generateKeyPair('ES256', { extractable: false });
      // A failed generation must not poison every later call.
      pair.catch(() => { if (this.#pair === pair) this.#pair = undefined; });
      this.#pair = pair;
    }
    return this.#pair;
  }
}

/**
 * One oauth4webapi DPoP handle per key pair: the handle remembers the server's `DPoP-Nonce` per
 * origin, so reusing it saves a round trip on servers that require nonces.
 */
export class DpopHandles {
  #handles = new WeakMap<CryptoKeyPair, DPoPHandle>();
  readonly #make: (pair: CryptoKeyPair) => DPoPHandle;

  constructor(make: (pair: CryptoKeyPair) => DPoPHandle = (pair) => DPoP({}, pair)) {
    this.#make = make;
  }

  for(pair: CryptoKeyPair): DPoPHandle {
    let handle = this.#handles.get(pair);
    if (!handle) {
      handle = this.#make(pair);
      this.#handles.set(pair, handle);
    }
    return handle;
  }
}
