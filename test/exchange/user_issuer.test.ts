import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFrom, createResourceVerifier, nodeAuth, type ResourceAuthInfo, type ResourceVerifier } from '@intentgate/resource';
import { accessFromClaims, ClaimError } from '../../packages/resource/src/access.ts';
import { serve, tokenRequest, type Served } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, IDP, startWorld, type World } from '../helpers/world.ts';

// Users are (issuer, sub): alice at two trusted identity providers is two users, in every token,
// every introspection answer and at every resource server, through every delegation hop.

const IDP2 = 'https://idp2.test';
let w: World;
let idp2Key: CryptoKey;
let verifier: ResourceVerifier;
let rs: Served;

beforeAll(async () => {
  w = await startWorld();
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  idp2Key = privateKey;
  const res = await w.t.admin('POST', '/admin/api/issuers', {
    issuer: IDP2, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp2-1', alg: 'ES256' }] }, audiences: ['intentgate'], algorithms: ['ES256'],
  });
  expect(res.status, await res.clone().text()).toBe(201);
  verifier = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: { clientId: 'expenses-rs', clientSecret: w.creds['expenses-rs']![1] } });
  rs = await serve((req, res) => {
    void nodeAuth(verifier, { scope: 'expenses:read' }, { baseUrl: EXPENSES })(req, res, () => {
      const auth = (req as { auth?: ResourceAuthInfo }).auth!;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ user: accessFrom(auth).user, extra_user: auth.extra.user, sub: auth.extra.sub }));
    });
  });
});
afterAll(async () => {
  await rs?.close();
  await w?.t.stop();
});

async function idp2Token(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: IDP2, sub, aud: 'intentgate', iat: now, exp: now + 3600, jti: randomBytes(8).toString('hex'), scope: 'expenses:read expenses:submit' })
    .setProtectedHeader({ alg: 'ES256', kid: 'idp2-1', typ: 'JWT' })
    .sign(idp2Key);
}

async function exchangeOk(clientId: string, params: Record<string, string | string[]>): Promise<string> {
  const res = await w.exchange(clientId, params);
  const body = await res.json() as { access_token?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token!;
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds['expenses-rs']!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  expect(res.status).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

async function atResource(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${rs.url}/expenses`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

describe('the user\'s issuer travels with the user (RFC 9493 sub_id, iss_sub)', () => {
  it('gives alice of two identity providers distinct tokens, introspection answers and resource-server identities', async () => {
    const one = await exchangeOk('agent', exchangeParams(await w.userToken({ sub: 'alice' })));
    const two = await exchangeOk('agent', exchangeParams(await idp2Token('alice')));

    const c1 = decodeJwt(one);
    const c2 = decodeJwt(two);
    expect(c1.sub).toBe('alice');
    expect(c2.sub).toBe('alice');
    expect(c1.sub_id).toEqual({ format: 'iss_sub', iss: IDP, sub: 'alice' });
    expect(c2.sub_id).toEqual({ format: 'iss_sub', iss: IDP2, sub: 'alice' });

    const i1 = await introspect(one);
    const i2 = await introspect(two);
    expect(i1).toMatchObject({ active: true, sub: 'alice', sub_id: { format: 'iss_sub', iss: IDP, sub: 'alice' } });
    expect(i2).toMatchObject({ active: true, sub: 'alice', sub_id: { format: 'iss_sub', iss: IDP2, sub: 'alice' } });

    const r1 = await atResource(one);
    const r2 = await atResource(two);
    expect(r1).toEqual({ sub: 'alice', user: { iss: IDP, sub: 'alice' }, extra_user: { iss: IDP, sub: 'alice' } });
    expect(r2).toEqual({ sub: 'alice', user: { iss: IDP2, sub: 'alice' }, extra_user: { iss: IDP2, sub: 'alice' } });
  });

  it('keeps the first user\'s issuer through delegation hops, never intentgate\'s', async () => {
    const delegation = await exchangeOk('agent', exchangeParams(await idp2Token('alice'), {
      resource: [] as unknown as string, audience: 'sub-agent', scope: 'expenses:read', intent: 'Hand the expense reading to the sub-agent',
    }));
    expect(decodeJwt(delegation).sub_id).toEqual({ format: 'iss_sub', iss: IDP2, sub: 'alice' });
    const own = await exchangeOk('sub-agent', {
      subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read the expense reports',
    });
    const claims = decodeJwt(own);
    expect(claims.act).toEqual({ sub: 'sub-agent', act: { sub: 'agent' } });
    expect(claims.sub_id).toEqual({ format: 'iss_sub', iss: IDP2, sub: 'alice' });
    expect(await introspect(own)).toMatchObject({ sub_id: { format: 'iss_sub', iss: IDP2, sub: 'alice' } });
    expect(await atResource(own)).toMatchObject({ user: { iss: IDP2, sub: 'alice' } });
  });

  it('gives client_credentials tokens no user', async () => {
    const cc = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, w.creds.batch);
    const { access_token } = await cc.json() as { access_token: string };
    const info = await introspect(access_token);
    expect(info.active).toBe(true);
    expect(info).not.toHaveProperty('sub_id');
    expect((await atResource(access_token)).user).toBeUndefined();
  });
});

describe('sub_id at the resource server', () => {
  it('refuses a sub_id that is not an iss_sub identifier of the token\'s own sub', () => {
    const base = { jti: 'j', sub: 'alice', client_id: 'agent', exp: 1 };
    expect(accessFromClaims('t', { ...base, sub_id: { format: 'iss_sub', iss: IDP, sub: 'alice' } }).user).toEqual({ iss: IDP, sub: 'alice' });
    for (const sub_id of [{ format: 'iss_sub', iss: IDP, sub: 'bob' }, { format: 'email', email: 'a@b' }, { format: 'iss_sub', iss: '', sub: 'alice' }, 'alice', null]) {
      expect(() => accessFromClaims('t', { ...base, sub_id })).toThrow(ClaimError);
    }
  });
});
