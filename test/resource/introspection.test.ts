import { decodeJwt } from 'jose';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, ResourceAuthError, type ResourceVerifier } from '@intentgate/resource';
import { koaAuth } from '@intentgate/resource/koa';
import { basicAuthorization } from '../../packages/resource/src/client_auth.ts';
import { basicAuth, tokenRequest } from '../helpers/server.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { boundToken, challengeParams, dpopKey, exchanged, introspectionCount, proof, revoke as revokeToken, serve, type Served } from './helpers.ts';

let w: World;
let app: Served;
let live: ResourceVerifier;

const credentials = () => ({ clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] });
const request = (token: string) => ({ method: 'GET', url: `${EXPENSES}/expenses`, authorization: `Bearer ${token}` });
const revoke = (token: string) => revokeToken(w, token);

beforeAll(async () => {
  w = await startWorld();
  live = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: credentials(), introspection: { cacheSeconds: 0 } });
  const koa = new Koa();
  koa.use(koaAuth(live, { scope: 'expenses:read' }, { baseUrl: EXPENSES }));
  koa.use((ctx) => { ctx.body = { ok: true }; });
  app = await serve(koa.callback());
});
afterAll(async () => {
  await app?.close();
  await w?.t.stop();
});

describe('introspection (RFC 7662)', () => {
  it('refuses a token an admin revoked, though its signature and exp are still good', async () => {
    const token = await exchanged(w);
    const get = () => fetch(`${app.url}/expenses`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get()).status).toBe(200);
    await revoke(token);
    const res = await get();
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'token is not active (revoked or expired)' });
    expect(challengeParams(res.headers.get('www-authenticate')).error).toBe('invalid_token');
    // Without introspection the same token still verifies: the JWT alone cannot know it was revoked.
    const offline = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false });
    expect((await offline.authenticate(request(token))).jti).toBe(decodeJwt(token).jti);
  });

  it('refuses a token its holder revoked (RFC 7009)', async () => {
    const token = await exchanged(w);
    await live.authenticate(request(token));
    const res = await fetch(`${w.t.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(...w.creds.agent!) },
      body: new URLSearchParams({ token }),
    });
    expect(res.status).toBe(200);
    await expect(live.authenticate(request(token))).rejects.toMatchObject({ status: 401, error: 'invalid_token' });
  });

  it('reuses an answer for cacheSeconds, but a sensitive call always asks again', async () => {
    const cached = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: credentials(), introspection: { cacheSeconds: 300 } });
    const token = await exchanged(w);
    await cached.authenticate(request(token));
    await revoke(token);
    // Within the cache window the earlier answer stands: that is the staleness cacheSeconds buys.
    expect((await cached.authenticate(request(token))).sub).toBe('alice');
    await expect(cached.authenticate(request(token), { sensitive: true })).rejects.toMatchObject({ status: 401, error: 'invalid_token' });
    // The fresh answer replaced the cached one.
    await expect(cached.authenticate(request(token))).rejects.toMatchObject({ error: 'invalid_token' });
  });

  it('asks once for concurrent misses of one token, but a sensitive call never rides on an earlier question', async () => {
    const cached = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: credentials(), introspection: { cacheSeconds: 300 } });
    const token = await exchanged(w);
    const before = await introspectionCount(w);
    const answers = await Promise.all(Array.from({ length: 8 }, () => cached.authenticate(request(token))));
    expect(answers.map((a) => a.sub)).toEqual(Array(8).fill('alice'));
    expect(await introspectionCount(w) - before).toBe(1);
    // Cached now: no more requests …
    await cached.authenticate(request(token));
    expect(await introspectionCount(w) - before).toBe(1);
    // … except for sensitive calls, each asking for itself.
    await Promise.all(Array.from({ length: 3 }, () => cached.authenticate(request(token), { sensitive: true })));
    expect(await introspectionCount(w) - before).toBe(4);
  });

  it('shares a failure with every caller that joined it, and asks again afterwards', async () => {
    const wrong = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: { clientId: 'expenses-rs', clientSecret: 'not-the-secret' }, introspection: { cacheSeconds: 300 } });
    const token = await exchanged(w);
    const before = await introspectionCount(w);
    const errors = await Promise.all(Array.from({ length: 4 }, () => wrong.authenticate(request(token)).catch((e: unknown) => e)));
    for (const err of errors) expect(err).toMatchObject({ status: 503, error: 'temporarily_unavailable' });
    expect(await introspectionCount(w) - before).toBe(1);
    // An unknown status is not cached.
    await expect(wrong.authenticate(request(token))).rejects.toMatchObject({ status: 503 });
    expect(await introspectionCount(w) - before).toBe(2);
  });

  it('covers DPoP-bound tokens, answering in the DPoP scheme', async () => {
    const key = await dpopKey();
    const token = await boundToken(w, key);
    const url = `${EXPENSES}/expenses`;
    const bound = async () => ({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token) });
    expect((await live.authenticate(await bound())).tokenType).toBe('DPoP');
    await revoke(token);
    const err = await live.authenticate(await bound()).catch((e: unknown) => e) as ResourceAuthError;
    expect(err).toMatchObject({ status: 401, error: 'invalid_token' });
    expect(err.wwwAuthenticate).toMatch(/^DPoP error="invalid_token"/);
  });

  it('fails closed (503) when intentgate will not answer it: a wrong client secret', async () => {
    const wrong = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: { clientId: 'expenses-rs', clientSecret: 'not-the-secret' }, introspection: {} });
    const err = await wrong.authenticate(request(await exchanged(w))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAuthError);
    expect(err).toMatchObject({ status: 503, error: 'temporarily_unavailable', wwwAuthenticate: undefined });
  });

  it('learns nothing for another resource server\'s client: its tokens are inactive to it', async () => {
    // hr-rs introspecting an expenses token gets {active:false}: a misconfigured client refuses, never accepts.
    const misconfigured = createResourceVerifier({
      issuer: w.t.issuer, resource: EXPENSES, credentials: { clientId: 'hr-rs', clientSecret: w.creds['hr-rs']![1] }, introspection: { cacheSeconds: 0 },
    });
    await expect(misconfigured.authenticate(request(await exchanged(w)))).rejects.toMatchObject({ status: 401, error: 'invalid_token' });
  });

  it('form-encodes the client id and secret before HTTP Basic (RFC 6749 §2.3.1)', () => {
    // intentgate's ids and secrets are URL-safe, so this cannot be seen on the wire against it; other values can.
    const header = basicAuthorization({ clientId: 'rs: expenses', clientSecret: 'p+w%d' });
    expect(Buffer.from(header.replace(/^Basic /, ''), 'base64').toString()).toBe('rs%3A+expenses:p%2Bw%25d');
  });
});

describe('client_credentials tokens', () => {
  it('verify and introspect like exchanged ones', async () => {
    const res = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, w.creds.batch);
    const { access_token } = await res.json() as { access_token: string };
    const access = await live.authenticate(request(access_token), { scope: 'expenses:read' });
    expect(access).toMatchObject({ clientId: 'batch', scopes: ['expenses:read'], tokenType: 'Bearer', act: undefined, authorizationDetails: [] });
  });
});
