import { createLocalJWKSet, errors, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { verifyJwt } from '../../packages/resource/src/protocol/jws.ts';

// A required claim must be the token's own member: a name every object inherits (toString, constructor,
// __proto__) is not a claim the token carries (jose checks with Object.hasOwn too).
describe('required claims', () => {
  it('counts only the payload\'s own members as present', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    const token = await new SignJWT({ scope: 'a' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    await expect(verifyJwt(token, jwks, { algorithms: ['ES256'], requiredClaims: ['scope', 'exp'] })).resolves.toMatchObject({ payload: { scope: 'a' } });
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      await expect(verifyJwt(token, jwks, { algorithms: ['ES256'], requiredClaims: [name] })).rejects.toBeInstanceOf(errors.JWTClaimValidationFailed);
    }
  });
});
