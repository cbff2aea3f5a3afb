import express from 'express';
import http from 'node:http';
import { decodeJwt } from 'jose';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFrom, createResourceVerifier, koaAuth, nodeAuth, ResourceAuthError, type ResourceAuthInfo, type ResourceVerifier } from '../../src/resource/index.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { boundToken, challengeParams, dpopKey, exchanged, proof, serve, type DpopKey, type Served } from './helpers.ts';

let w: World;
let v: ResourceVerifier;
let key: DpopKey;
let token: string;
const apps: Record<string, Served & { base: string }> = {};
// The origin clients are told to use; the apps listen on 127.0.0.1:port behind it.
const PUBLIC = 'https://expenses.example';

beforeAll(async () => {
  w = await startWorld();
  v = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES });
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

  // No baseUrl: the URL is built from the Host header (what the client addressed).
  const guarded = nodeAuth(v, { scope: 'expenses:read' });
  const plain = await serve((req, res) => {
    void guarded(req, res, () => {
      const auth = (req as { auth?: ResourceAuthInfo }).auth!;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token_type: auth.extra.token_type, jkt: accessFrom(auth).cnfJkt, client_id: auth.clientId }));
    });
  });
  apps.node = { ...plain, base: plain.url };
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

describe('htu without baseUrl', () => {
  // fetch may not set Host, so these requests go through node:http.
  function withHost(url: string, host: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      http.get(url, { headers: { ...headers, host } }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
  }

  it('follows the Host header, which is why baseUrl is recommended', async () => {
    const forHost = async () => ({ authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', 'http://attacker.example/expenses', token) });
    // Without baseUrl, a client-chosen Host decides what htu must be.
    expect(await withHost(`${apps.node!.url}/expenses`, 'attacker.example', await forHost())).toBe(200);
    // With baseUrl, the Host header plays no part.
    expect(await withHost(`${apps.koa!.url}/expenses`, 'attacker.example', await forHost())).toBe(401);
  });
});

describe('replay cache', () => {
  it('refuses (503) rather than forgets when it is full of live proofs', async () => {
    const small = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, dpop: { replayCacheSize: 1 } });
    const url = `${PUBLIC}/expenses`;
    const request = async () => ({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token) });
    expect((await small.authenticate(await request())).cnfJkt).toBe(key.jkt);
    const err = await small.authenticate(await request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceAuthError);
    expect(err).toMatchObject({ status: 503, error: 'temporarily_unavailable', retryAfter: 5 });
  });

  it('keeps proofs of different keys apart (jkt + jti)', async () => {
    const other = await dpopKey();
    const otherToken = await boundToken(w, other);
    const url = `${PUBLIC}/expenses`;
    const jti = 'shared-jti-value';
    await v.authenticate({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token, { jti }) });
    await v.authenticate({ method: 'GET', url, authorization: `DPoP ${otherToken}`, dpop: await proof(other, 'GET', url, otherToken, { jti }) });
    await expect(v.authenticate({ method: 'GET', url, authorization: `DPoP ${token}`, dpop: await proof(key, 'GET', url, token, { jti }) }))
      .rejects.toMatchObject({ error: 'invalid_dpop_proof' });
  });
});
