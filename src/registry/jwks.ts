import { importJWK, type JWK } from 'jose';
import { ValidationError } from '../validate/schema.ts';

export interface PublicJwks { keys: JWK[] }

export const jwksSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['keys'],
  properties: {
    keys: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: { type: 'object', required: ['kty'], properties: { kty: { enum: ['RSA', 'EC', 'OKP'] } } },
    },
  },
} as const;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Every key must be a public key that jose can import; private members are refused, never stored. */
export async function checkPublicJwks(jwks: PublicJwks, field: string): Promise<void> {
  for (const [i, key] of jwks.keys.entries()) {
    if (PRIVATE_MEMBERS.some((m) => m in key)) throw new ValidationError(`${field}.keys.${i} contains private key material`, `${field}.keys.${i}`);
    try {
      await importJWK(key, key.alg ?? (key.kty === 'RSA' ? 'RS256' : key.kty === 'OKP' ? 'EdDSA' : key.crv === 'P-384' ? 'ES384' : key.crv === 'P-521' ? 'ES512' : 'ES256'));
    } catch (err) {
      throw new ValidationError(`${field}.keys.${i} is not a usable public key: ${(err as Error).message}`, `${field}.keys.${i}`);
    }
  }
}
