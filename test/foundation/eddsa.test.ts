import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeParams, EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { tokenRequest } from '../helpers/server.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ keys: { algorithm: 'EdDSA' } }); });
afterAll(async () => { await w?.t.stop(); });

describe('EdDSA signing keys (keys.algorithm: EdDSA)', () => {
  it('signs client_credentials and exchanged tokens with Ed25519, verifiable from /jwks', async () => {
    const jwks = createRemoteJWKSet(new URL(`${w.t.url}/jwks`));
    const cc = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, w.creds.batch);
    expect(cc.status).toBe(200);
    const { protectedHeader } = await jwtVerify((await cc.json() as { access_token: string }).access_token, jwks, { issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['EdDSA'] });
    expect(protectedHeader.alg).toBe('EdDSA');
    const ex = await w.exchange('agent', exchangeParams(await w.userToken()));
    expect(ex.status).toBe(200);
    await jwtVerify((await ex.json() as { access_token: string }).access_token, jwks, { issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['EdDSA'] });
    const keys = (await (await fetch(`${w.t.url}/jwks`)).json() as { keys: Array<Record<string, unknown>> }).keys;
    expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
  });
});
