import { DPoP, generateKeyPair, type CryptoKeyPair, type DPoPHandle } from 'oauth4webapi';
import { AgentInputError } from './errors.ts';

/**
 * The DPoP proof algorithms an agent may use: those intentgate accepts (`dpop_signing_alg_values_supported`;
 * no RSA) that oauth4webapi signs with. Another key would only be refused by the server, after a request.
 */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'Ed25519'] as const;

function proofAlgorithm(key: CryptoKey): (typeof DPOP_ALGORITHMS)[number] | undefined {
  const { name, namedCurve } = key.algorithm as { name: string; namedCurve?: string };
  if (name === 'ECDSA') return namedCurve === 'P-256' ? 'ES256' : namedCurve === 'P-384' ? 'ES384' : undefined;
  // oauth4webapi signs either name's keys as Ed25519 (the fully specified JOSE name of EdDSA on that curve).
  return name === 'Ed25519' || name === 'EdDSA' ? 'Ed25519' : undefined;
}

const describeKey = (key: CryptoKey) => {
  const { name, namedCurve } = key.algorithm as { name: string; namedCurve?: string };
  return namedCurve ? `${name} ${namedCurve}` : name;
};

/**
 * A key pair oauth4webapi can sign DPoP proofs with and intentgate accepts: ES256, ES384 or Ed25519,
 * a private key that may sign, its public half exportable for the proof's `jwk`.
 */
export function assertDpopKeyPair(value: unknown, field: string): asserts value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | null;
  if (typeof pair !== 'object' || pair === null || !(pair.privateKey instanceof CryptoKey) || !(pair.publicKey instanceof CryptoKey)) {
    throw new AgentInputError(field, 'must be true, false, or a CryptoKeyPair');
  }
  if (pair.privateKey.type !== 'private' || pair.publicKey.type !== 'public') throw new AgentInputError(field, 'must hold a private and a public key');
  if (proofAlgorithm(pair.privateKey) === undefined) throw new AgentInputError(field, `a ${describeKey(pair.privateKey)} key cannot sign an accepted DPoP proof; use ${DPOP_ALGORITHMS.join(', ')} (ECDSA P-256, ECDSA P-384, Ed25519)`);
  if (describeKey(pair.publicKey) !== describeKey(pair.privateKey)) throw new AgentInputError(field, 'the private and public keys must be of one kind (one pair)');
  if (!pair.privateKey.usages.includes('sign')) throw new AgentInputError(field, 'the private key must be usable to sign');
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
