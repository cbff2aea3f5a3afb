import express from 'express';
import http from 'node:http';
import { decodeJwt } from 'jose';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFrom, createResourceVerifier, nodeAuth, ResourceAuthError, type ResourceAuthInfo, type ResourceVerifier, type ResourceVerifierOptions } from '@intentgate/resource';
import { koaAuth } from '@intentgate/resource/koa';
import { ReplayCache } from '../../packages/resource/src/replay_cache.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { boundToken, challengeParams, dpopKey, exchanged, proof, revoke, serve, type DpopKey, type Served } from './helpers.ts';

let w: World;
let v: ResourceVerifier;
let key: DpopKey;
let token: string;
const apps: Record<string, Served & { base: string }> = {};
// The origin clients are told to use; the apps listen on 127.0.0.1:port behind it.
const PUBLIC = 'https://expenses.example';

beforeAll(async () => {
  w = await startWorld();
  v = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false });
  key = await dpopKey();
  token = await boundToken(w, key);

  const koa = new Koa();
  koa.use(koaAuth(v, { scope: 'expenses:read' }, { baseUrl: PUBLIC }));
  koa.use((ctx) => { ctx.body = { token_type: ctx.state.auth.tokenType, jkt: ctx.state.auth.cnfJkt, client_id: ctx.state.auth.clientId }; });
  apps.koa = { ...await serve(koa.callback()), base: PUBLIC };

  const ex = express();
  ex.use('/api', express.Router().get('/expenses', nodeAuth(v, { scope: 'expenses:read' }, { baseUrl: `${PUBLIC}/` }), (req, res) => {
    const auth = (req as { auth?: ResourceAuthInfo }).auth!;
    res.json({ token_type: auth.extra.token_type, jkt: accessFrom(auth).cnfJkt, client_id: auth.clientId });
  }));
  apps.express = { ...await serve(ex), base: PUBLIC };

  const guarded = nodeAuth(v, { scope: 'expenses:read' }, { baseUrl: PUBLIC });
  const plain = await serve((req, res) => {
    void guarded(req, res, () => {
      const auth = (req as { auth?: ResourceAuthInfo }).auth!;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token_type: auth.extra.token_type, jkt: accessFrom(auth).cnfJkt, client_id: auth.clientId }));
    });
  });
  apps.node = { ...plain, base: PUBLIC };
});
afterAll(async () => {
  for (const a of Object.values(apps)) await a.close();
  await w?.t.stop();
});

const paths: Record<string, string> = { koa: '/expenses', express: '/api/expenses', node: '/expenses' };

async function send(app: string, headers: Headers | Record<string, string>, method = 'GET'): Promise<Response> {
  return fetch(`${apps[app]!.url}${paths[app]}?page=2`, { method, headers });
}

describe('the DPoP-bound tokens intentgate issues', () => {
  it('carry cnf.jkt of the key that made the token request\'s proof', () => {
    expect(decodeJwt(token).cnf).toEqual({ jkt: key.jkt });
  });
});

describe.each(['koa', 'express', 'node'])('%s with DPoP (RFC 9449)', (app) => {
  const htu = () => `${apps[app]!.base}${paths[app]}`;

  it('accepts a bound token with a valid proof for this method and URL (query ignored)', async () => {
    const res = await send(app, { authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', htu(), token) });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ token_type: 'DPoP', jkt: key.jkt, client_id: 'batch' });
  });

  it('refuses a replayed proof', async () => {
    const p = await proof(key, 'GET', htu(), token);
    expect((await send(app, { authorization: `DPoP ${token}`, dpop: p })).status).toBe(200);
    const again = await send(app, { authorization: `DPoP ${token}`, dpop: p });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('already used') });
    const header = again.headers.get('www-authenticate')!;
    expect(header).toMatch(/^DPoP /);
    expect(challengeParams(header)).toMatchObject({ error: 'invalid_dpop_proof', algs: expect.stringContaining('ES256') });
  });

  it('refuses a proof made for another URL or another method', async () => {
    for (const [m, u] of [['GET', `${htu()}/other`], ['GET', 'https://elsewhere.example/expenses'], ['POST', htu()]] as const) {
      const res = await send(app, { authorization: `DPoP ${token}`, dpop: await proof(key, m, u, token) });
      expect(res.status, `${m} ${u}`).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_dpop_proof' });
    }
  });

  it('refuses a proof made with another key, or without the token hash', async () => {
    const other = await dpopKey();
    const stolen = await send(app, { authorization: `DPoP ${token}`, dpop: await proof(other, 'GET', htu(), token) });
    expect(stolen.status).toBe(401);
    expect(await stolen.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('cnf.jkt') });
    const noAth = await send(app, { authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', htu()) });
    expect(await noAth.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('ath') });
  });

  it('refuses a bound token presented as a Bearer token, even with a valid proof', async () => {
    const res = await send(app, { authorization: `Bearer ${token}`, dpop: await proof(key, 'GET', htu(), token) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('DPoP-bound') });
    const header = res.headers.get('www-authenticate')!;
    expect(header).toMatch(/^DPoP error="invalid_token"/);
    expect(header).not.toContain('Bearer');
  });

  it('refuses a bound token without a proof, and more than one DPoP header', async () => {
    const none = await send(app, { authorization: `DPoP ${token}` });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_dpop_proof' });
    const headers = new Headers({ authorization: `DPoP ${token}` });
    headers.append('dpop', await proof(key, 'GET', htu(), token));
    headers.append('dpop', await proof(key, 'GET', htu(), token));
    const two = await send(app, headers);
    expect(two.status).toBe(401);
    expect(await two.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('more than one') });
  });

  it('refuses a Bearer (unbound) token sent with the DPoP scheme', async () => {
    const plain = await exchanged(w);
    const res = await send(app, { authorization: `DPoP ${plain}`, dpop: await proof(key, 'GET', htu(), plain) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('not DPoP-bound') });
    // The same token as Bearer is fine: the refusal is about the scheme.
    expect((await send(app, { authorization: `Bearer ${plain}` })).status).toBe(200);
  });
});

describe('htu is baseUrl + the request path, whatever the Host header says', () => {
  // fetch may not set Host, so these requests go through node:http.
  function withHost(url: string, host: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      http.get(url, { headers: { ...headers, host } }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
  }
  const dpopFor = async (htu: string) => ({ authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', htu, token) });

  it.each(['koa', 'express', 'node'])('%s refuses a proof made for another origin, even with a matching Host', async (app) => {
    const target = `${apps[app]!.url}${paths[app]}`;
    // A proof captured at another server, replayed here with that server's Host.
    expect(await withHost(target, 'attacker.example', await dpopFor(`http://attacker.example${paths[app]}`))).toBe(401);
    // The origin the app really listens on is not the one clients are told to use either.
    const listening = new URL(apps[app]!.url);
    expect(await withHost(target, listening.host, await dpopFor(`${apps[app]!.url}${paths[app]}`))).toBe(401);
    // A proof for the public URL is good whatever Host the request carries.
    expect(await withHost(target, 'attacker.example', await dpopFor(`${PUBLIC}${paths[app]}`))).toBe(200);
  });

  it('requires baseUrl, an absolute http(s) URL without query or fragment, when the middleware is built', () => {
    for (const options of [undefined, {}, { baseUrl: '' }, { baseUrl: '/api' }, { baseUrl: 'expenses.example' }, { baseUrl: 'ftp://expenses.example' },
      { baseUrl: 'https://expenses.example/?a=1' }, { baseUrl: 'https://expenses.example/#x' }, { baseUrl: 'https://u:p@expenses.example' }]) {
      expect(() => koaAuth(v, {}, options as never), JSON.stringify(options)).toThrow(TypeError);
      expect(() => nodeAuth(v, {}, options as never), JSON.stringify(options)).toThrow(/baseUrl/);
    }
    expect(() => nodeAuth(v, {}, { baseUrl: 'http://127.0.0.1:8080/prefix/' })).not.toThrow();
  });
});

describe('requireDpop', () => {
  it('refuses Bearer tokens, challenging DPoP only, and still takes bound tokens with their proof', async () => {
    const strict = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, requireDpop: true });
    expect(strict.requiresDpop).toBe(true);
    const url = `${PUBLIC}/expenses`;
    const plain = await exchanged(w);
    const err = await strict.authenticate({ method: 'GET', url, authorization: `Bearer ${plain}` }).catch((e: unknown) => e) as ResourceAuthError;
    expect(err).toMatchObject({ status: 401, error: 'invalid_token', description: 'this resource accepts DPoP-bound tokens only' });
    expect(err.wwwAuthenticate).toMatch(/^DPoP error="invalid_token"/);
    expect(err.wwwAuthenticate).not.toContain('Bearer');
    // No token at all: the challenge offers DPoP alone.
    const none = await strict.authenticate({ method: 'GET', url }).catch((e: unknown) => e) as ResourceAuthError;
    expect(none).toMatchObject({ status: 401, error: undefined });
    expect(none.wwwAuthenticate).toMatch(/^DPoP algs="/);
    expect((await strict.authenticate({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token) })).tokenType).toBe('DPoP');
    // The default takes both.
    expect(v.requiresDpop).toBe(false);
    expect((await v.authenticate({ method: 'GET', url, authorization: `Bearer ${plain}` })).tokenType).toBe('Bearer');
  });
});

describe('replay cache', () => {
  const url = `${PUBLIC}/expenses`;
  const presented = async (k: DpopKey, t: string) => ({ method: 'GET', url, authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', url, t) });
  const verifier = (dpop: ResourceVerifierOptions['dpop'], more: Partial<ResourceVerifierOptions> = {}) =>
    createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, dpop, ...more });
  const keyWithToken = async () => {
    const k = await dpopKey();
    return { k, t: await boundToken(w, k) };
  };

  it('refuses (503) rather than forgets when all keys together fill it with live proofs', async () => {
    const small = verifier({ replayCacheSize: 2, maxProofsPerKey: 1 });
    const [a, b, c] = [await keyWithToken(), await keyWithToken(), await keyWithToken()];
    expect((await small.authenticate(await presented(a.k, a.t))).cnfJkt).toBe(a.k.jkt);
    expect((await small.authenticate(await presented(b.k, b.t))).cnfJkt).toBe(b.k.jkt);
    const err = await small.authenticate(await presented(c.k, c.t)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAuthError);
    expect(err).toMatchObject({ status: 503, error: 'temporarily_unavailable', retryAfter: 5 });
  });

  it('gives each key a bounded share: one key flooding is slowed down (429), another still gets in', async () => {
    // 40 entries, so 2 per key (1/20) by default.
    const small = verifier({ replayCacheSize: 40 });
    const koa = new Koa();
    koa.use(koaAuth(small, {}, { baseUrl: PUBLIC }));
    koa.use((ctx) => { ctx.body = { jkt: ctx.state.auth.cnfJkt }; });
    const s = await serve(koa.callback());
    try {
      const send = async (k: DpopKey, t: string) => fetch(`${s.url}/expenses`, { headers: { authorization: `DPoP ${t}`, dpop: await proof(k, 'GET', url, t) } });
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await send(key, token)).status);
      expect(statuses).toEqual([200, 200, 429, 429, 429, 429, 429, 429, 429, 429]);
      const slowed = await send(key, token);
      expect(slowed.status).toBe(429);
      expect(slowed.headers.get('retry-after')).toBe('70');
      expect(slowed.headers.get('www-authenticate')).toBeNull();
      expect(await slowed.json()).toEqual({ error: 'slow_down', error_description: 'too many DPoP proofs from this key in the last 70 s; slow down' });
      const other = await keyWithToken();
      const res = await send(other.k, other.t);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ jkt: other.k.jkt });
    } finally {
      await s.close();
    }
  });

  it('records only proofs of live tokens: a revoked token\'s proofs take no room', async () => {
    const live = verifier({ replayCacheSize: 1 }, {
      introspection: { cacheSeconds: 0 }, credentials: { clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] },
    });
    const k = await dpopKey();
    const revoked = await boundToken(w, k);
    await revoke(w, revoked);
    for (let i = 0; i < 3; i++) {
      await expect(live.authenticate(await presented(k, revoked))).rejects.toMatchObject({ status: 401, error: 'invalid_token' });
    }
    // The one slot (this key's whole share) is still free for a live token of the same key …
    const fresh = await boundToken(w, k);
    expect((await live.authenticate(await presented(k, fresh))).cnfJkt).toBe(k.jkt);
    // … and now taken.
    await expect(live.authenticate(await presented(k, fresh))).rejects.toMatchObject({ status: 429, error: 'slow_down' });
  });

  it('keeps proofs of different keys apart (jkt + jti)', async () => {
    const other = await dpopKey();
    const otherToken = await boundToken(w, other);
    const jti = 'shared-jti-value';
    await v.authenticate({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token, { jti }) });
    await v.authenticate({ method: 'GET', url, authorization: `DPoP ${otherToken}`, dpop: await proof(other, 'GET', url, otherToken, { jti }) });
    await expect(v.authenticate({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token, { jti }) }))
      .rejects.toMatchObject({ error: 'invalid_dpop_proof' });
  });
});

describe('ReplayCache', () => {
  const A = 'A'.repeat(43);
  const B = 'B'.repeat(43);

  it('remembers a proof for its lifetime, then frees it and its key\'s share from the front', () => {
    const cache = new ReplayCache({ maxEntries: 3, maxPerKey: 2, lifetimeMs: 1000 });
    expect(cache.record(A, '1', 0)).toBe('fresh');
    expect(cache.record(A, '1', 999)).toBe('replay');
    expect(cache.seen(A, '1', 999)).toBe(true);
    expect(cache.record(A, '2', 500)).toBe('fresh');
    expect(cache.record(A, '3', 600)).toBe('key_over_share');
    expect(cache.record(B, '1', 600)).toBe('fresh');
    expect(cache.record(B, '2', 700)).toBe('full');
    // At 1000 the first entry has aged out: A has room again, and the same jti is new.
    expect(cache.seen(A, '1', 1000)).toBe(false);
    expect(cache.record(A, '1', 1000)).toBe('fresh');
    expect(cache.size).toBe(3);
    // Everything ages out together once the last lifetime has passed.
    expect(cache.record(B, '9', 2000)).toBe('fresh');
    expect(cache.size).toBe(1);
  });

  it('keeps entries when the clock goes back, never forgetting a live one', () => {
    const cache = new ReplayCache({ maxEntries: 10, maxPerKey: 10, lifetimeMs: 1000 });
    expect(cache.record(A, '1', 5000)).toBe('fresh');
    expect(cache.record(A, '2', 1000)).toBe('fresh');
    expect(cache.record(A, '3', 5500)).toBe('fresh');
    // The second entry expired at 2000, but sits behind a live one: it is kept, which is only safe.
    expect(cache.size).toBe(3);
    expect(cache.record(A, '1', 5999)).toBe('replay');
  });
});
