import express from 'express';
import { generateKeyPair, SignJWT } from 'jose';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { accessFrom, callDenial, checkCall, createResourceVerifier, matchedDetail, ResourceAuthError, nodeAuth, type AuthState, type CallRequirement, type ResourceAuthInfo, type ResourceVerifier } from '@intentgate/resource';
import { koaAuth } from '@intentgate/resource/koa';
import { accessFromClaims, ClaimError } from '../../packages/resource/src/access.ts';
import { details, EXPENSES, HR, startWorld, type World } from '../helpers/world.ts';
import { challengeParams, exchanged, serve, type Served } from './helpers.ts';

let w: World;
let v: ResourceVerifier;
const apps: Record<string, Served> = {};

function requirementFor(path: string): CallRequirement {
  const m = /^\/expenses\/([^/]+)\/approve$/.exec(path);
  if (m) return { scope: 'expenses:approve', action: 'approve', objectType: 'Expense', objectId: decodeURIComponent(m[1]!) };
  return { scope: 'expenses:read' };
}

const summary = (a: AuthState) => ({ sub: a.sub, client_id: a.clientId, scopes: a.scopes, jti: a.jti, task: a.task, act: a.act, details: a.authorizationDetails, token_type: a.tokenType });

beforeAll(async () => {
  w = await startWorld();
  v = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, resourceMetadataUrl: 'https://expenses.example/.well-known/oauth-protected-resource' });

  const koa = new Koa();
  koa.use(koaAuth(v, (ctx) => requirementFor(ctx.path), { baseUrl: EXPENSES }));
  koa.use((ctx) => { ctx.body = summary(ctx.state.auth); });
  apps.koa = await serve(koa.callback());

  const ex = express();
  ex.get('/expenses', nodeAuth(v, { scope: 'expenses:read' }, { baseUrl: EXPENSES }), (req, res) => {
    res.json(summary(accessFrom((req as { auth?: ResourceAuthInfo }).auth)));
  });
  ex.post('/expenses/:id/approve', nodeAuth<express.Request>(v, (req) => requirementFor(`/expenses/${encodeURIComponent(String(req.params.id))}/approve`), { baseUrl: EXPENSES }), (req, res) => {
    const auth = (req as { auth?: ResourceAuthInfo }).auth!;
    res.json({ ...summary(accessFrom(auth)), resource: auth.resource.href, extra_sub: auth.extra.sub, expires_at: auth.expiresAt });
  });
  apps.express = await serve(ex);

  // node:http with no framework: the middleware's next() is the handler.
  const guarded = nodeAuth(v, (req) => requirementFor(new URL(req.url!, 'http://x').pathname), { baseUrl: EXPENSES });
  apps.node = await serve((req, res) => {
    void guarded(req, res, () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(summary(accessFrom((req as { auth?: ResourceAuthInfo }).auth))));
    });
  });
});
afterAll(async () => {
  for (const a of Object.values(apps)) await a.close();
  await w?.t.stop();
});

const call = (app: string, path: string, init: RequestInit = {}) => fetch(`${apps[app]!.url}${path}`, init);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const approveDetails = (id: string) => details('approve', { type: 'Expense', id, amount: 50 });

describe.each(['koa', 'express', 'node'])('%s middleware', (app) => {
  it('lets a token through that covers the call, and gives the handler its claims', async () => {
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: approveDetails('exp_1') });
    const res = await call(app, '/expenses/exp_1/approve', { method: 'POST', headers: bearer(token) });
    expect(res.status).toBe(200);
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ sub: 'alice', client_id: 'agent', scopes: ['expenses:approve'], act: { sub: 'agent' }, token_type: 'Bearer' });
    expect(body.task).toMatch(/^tsk_/);
    expect(body.details).toEqual(JSON.parse(approveDetails('exp_1')));
    if (app === 'express') expect(body).toMatchObject({ resource: 'https://expenses.example/', extra_sub: 'alice' });
  });

  it('accepts the scheme in any case', async () => {
    const token = await exchanged(w);
    expect((await call(app, '/expenses', { headers: { authorization: `bEaReR ${token}` } })).status).toBe(200);
  });

  it('answers 401 with a bare challenge (no error code) when there is no token', async () => {
    for (const headers of [{}, { authorization: 'Basic YWxpY2U6c2VjcmV0' }] as Record<string, string>[]) {
      const res = await call(app, '/expenses', { headers });
      expect(res.status).toBe(401);
      const header = res.headers.get('www-authenticate')!;
      expect(header).toMatch(/^Bearer /);
      expect(header).toContain('DPoP algs="ES256');
      expect(header).toContain('resource_metadata="https://expenses.example/.well-known/oauth-protected-resource"');
      expect(header).not.toContain('error=');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).not.toHaveProperty('error');
    }
  });

  it('answers 400 invalid_request to a malformed Authorization header', async () => {
    const token = await exchanged(w);
    for (const authorization of ['Bearer', 'Bearer ', `Bearer ${token} extra`, `Bearer ${token.replace('.', '"')}`, `Bearer\t${token}`, 'Bearer a,b', '@@@']) {
      const res = await call(app, '/expenses', { headers: { authorization } });
      expect(res.status, authorization).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
      expect(challengeParams(res.headers.get('www-authenticate')).error).toBe('invalid_request');
    }
  });

  it('refuses a token for another resource (audience)', async () => {
    const token = await exchanged(w, { resource: HR, scope: 'hr:read' });
    const res = await call(app, '/expenses', { headers: bearer(token) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('aud') });
    expect(challengeParams(res.headers.get('www-authenticate')).error).toBe('invalid_token');
  });

  it('refuses a token signed with a key intentgate does not publish, with its kid or another', async () => {
    const real = await exchanged(w);
    const [header, payload] = real.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p!, 'base64url').toString()));
    const { privateKey } = await generateKeyPair('ES256');
    for (const kid of [header.kid, 'no-such-kid']) {
      const forged = await new SignJWT(payload).setProtectedHeader({ ...header, kid }).sign(privateKey);
      const res = await call(app, '/expenses', { headers: bearer(forged) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    }
    // Not a signature failure by accident: the same payload with the real signature is accepted.
    expect((await call(app, '/expenses', { headers: bearer(real) })).status).toBe(200);
  });

  it('refuses a token that is not an access token (typ) or not signed at all', async () => {
    const real = await exchanged(w);
    const [, payload] = real.split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
    const res = await call(app, '/expenses', { headers: bearer(unsigned) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('answers 403 insufficient_scope, naming the scope, when the token lacks it', async () => {
    const token = await exchanged(w, { scope: 'expenses:read' });
    const res = await call(app, '/expenses/exp_1/approve', { method: 'POST', headers: bearer(token) });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'insufficient_scope' });
    const params = challengeParams(res.headers.get('www-authenticate'));
    expect(params).toMatchObject({ error: 'insufficient_scope', scope: 'expenses:approve' });
  });

  it('answers 403 when the authorization details name another object', async () => {
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: approveDetails('exp_1') });
    const res = await call(app, '/expenses/exp_2/approve', { method: 'POST', headers: bearer(token) });
    expect(res.status).toBe(403);
    const body = await res.json() as { error: string; error_description: string };
    expect(body.error).toBe('insufficient_scope');
    expect(body.error_description).toContain('approve on Expense exp_2');
  });

  it('never reflects request input unsafely into WWW-Authenticate', async () => {
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: approveDetails('exp_1') });
    // The object id comes from the path: quotes, CR/LF and a would-be header, percent-encoded.
    const res = await call(app, `/expenses/${encodeURIComponent('x" , error="none\r\nSet-Cookie: a=1')}/approve`, { method: 'POST', headers: bearer(token) });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
    const header = res.headers.get('www-authenticate')!;
    expect(header).not.toMatch(/[\r\n\\]/);
    expect(header.match(/"/g)!.length % 2).toBe(0);
    expect(challengeParams(header).error).toBe('insufficient_scope');
    expect((header.match(/error="/g) ?? []).length).toBe(1);
  });
});

describe('token checks', () => {
  it('refuses an expired token (the clock moved past its exp)', async () => {
    const token = await exchanged(w);
    expect((await v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` })).sub).toBe('alice');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 3600_000);
      const res = await call('koa', '/expenses', { headers: bearer(token) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_token', error_description: 'token has expired' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a token over 16 KiB before parsing it, and oversized headers do not reach a handler', async () => {
    const huge = 'a'.repeat(16_385);
    await expect(v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${huge}` })).rejects.toMatchObject({ status: 401, error: 'invalid_token' });
    // A server allowing large headers still refuses it; node's default limit answers 431 before us.
    const big = await serve(koaLike(), { maxHeaderSize: 1 << 20 });
    try {
      const res = await fetch(`${big.url}/expenses`, { headers: bearer('a'.repeat(100_000)) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    } finally {
      await big.close();
    }
    const res = await call('express', '/expenses', { headers: bearer('a'.repeat(100_000)) });
    expect(res.status).toBe(431);
  });

  it('does not echo a hostile token into the challenge', async () => {
    const err = await v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: 'Bearer abc"def\r\nSet-Cookie: x=1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, error: 'invalid_request' });
    const header = (err as { wwwAuthenticate: string }).wwwAuthenticate;
    expect(header).not.toContain('abc');
    expect(header).not.toMatch(/[\r\n]/);
  });

  it('matches authorization details on action, object type and id, one rule for every caller', async () => {
    const plain = await v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${await exchanged(w)}` });
    await expect(v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${plain.token}` }, { action: 'read' }))
      .rejects.toMatchObject({ status: 403, error: 'insufficient_scope', description: 'token carries no authorization_details for read' });
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: approveDetails('exp_1') });
    const access = await v.authenticate({ method: 'POST', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` });
    expect(() => checkCall(access, { action: 'approve', objectType: 'Expense', objectId: 'exp_1' })).not.toThrow();
    expect(() => checkCall(access, { action: 'approve' })).not.toThrow();
    for (const requirement of [{ action: 'submit' }, { action: 'approve', objectType: 'Invoice' }, { action: 'approve', objectType: 'Invoice', objectId: 'exp_1' }, { action: 'approve', objectId: 'exp_3' }]) {
      expect(callDenial(access, requirement), JSON.stringify(requirement)).toBeDefined();
      expect(() => checkCall(access, requirement)).toThrow(ResourceAuthError);
    }
    expect(callDenial(access, { scope: ['expenses:approve', 'expenses:read'] })).toEqual({ description: 'token lacks scope expenses:read', scope: ['expenses:approve', 'expenses:read'] });
  });

  it('validates its options once, at creation', () => {
    const credentials = { clientId: 'expenses-rs', clientSecret: 'secret' };
    const base = { issuer: w.t.issuer, resource: EXPENSES, introspection: false } as const;
    expect(() => createResourceVerifier({ ...base, issuer: 'not a url' })).toThrow(TypeError);
    expect(() => createResourceVerifier({ ...base, algorithms: ['HS256'] })).toThrow(TypeError);
    expect(() => createResourceVerifier({ ...base, resource: 'expenses' })).toThrow(TypeError);
    for (const bad of [{ timeoutMs: 0 }, { dpop: { replayCacheSize: 0 } }, { dpop: { replayCacheSize: 1.5 } }, { dpop: { maxProofsPerKey: 0 } }, { dpop: { replayCacheSize: 10, maxProofsPerKey: 11 } }]) {
      expect(() => createResourceVerifier({ ...base, ...bad }), JSON.stringify(bad)).toThrow(/positive|exceed/);
    }
    // Introspection is the default, and needs credentials; going without must be said.
    expect(() => createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES })).toThrow(/introspection: false/);
    expect(() => createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: {} })).toThrow(/credentials are required/);
    expect(createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials })).toMatchObject({ introspects: true, canReport: true, requiresDpop: false });
    // Credentials without introspection: reports, but no live checks.
    expect(createResourceVerifier({ ...base, credentials })).toMatchObject({ introspects: false, canReport: true });
    expect(v).toMatchObject({ introspects: false, canReport: false });
  });

  it('will not pass a sensitive call without a live status check', async () => {
    // This verifier was built with introspection: false: a configuration error, never an acceptance.
    const token = await exchanged(w);
    await expect(v.authenticate({ method: 'GET', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` }, { sensitive: true }))
      .rejects.toThrow(/sensitive requirement needs introspection/);
    // A static requirement is refused when the middleware is built, before any request.
    const sensitive = { scope: 'expenses:approve', sensitive: true };
    expect(() => koaAuth(v, sensitive, { baseUrl: EXPENSES })).toThrow(TypeError);
    expect(() => nodeAuth(v, sensitive, { baseUrl: EXPENSES })).toThrow(TypeError);
    expect(() => nodeAuth(v, { objectId: 'exp_1' }, { baseUrl: EXPENSES })).toThrow(/action/);
    // A requirement computed per request can only be refused then: a 500, without detail, never a pass.
    const dynamic = new Koa();
    dynamic.use(koaAuth(v, () => sensitive, { baseUrl: EXPENSES }));
    dynamic.use((ctx) => { ctx.body = { ok: true }; });
    dynamic.silent = true;
    const s = await serve(dynamic.callback());
    try {
      const res = await fetch(`${s.url}/x`, { headers: bearer(token) });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain('ok');
    } finally {
      await s.close();
    }
  });

  it('answers the authorization detail that matched, so a handler need not match again', async () => {
    const token = await exchanged(w, {
      scope: 'expenses:approve',
      authorization_details: JSON.stringify([
        { type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_1', amount: 50 } },
        { type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_2', amount: 70 } },
      ]),
    });
    const access = await v.authenticate({ method: 'POST', url: `${EXPENSES}/x`, authorization: `Bearer ${token}` });
    const requirement = { scope: 'expenses:approve', action: 'approve', objectType: 'Expense', objectId: 'exp_2' };
    expect(checkCall(access, requirement)).toEqual({ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_2', amount: 70 } });
    expect(v.check(access, requirement)).toEqual(matchedDetail(access, requirement));
    expect(matchedDetail(access, { action: 'approve' })!.object!.id).toBe('exp_1');
    expect(matchedDetail(access, { action: 'approve', objectId: 'exp_3' })).toBeUndefined();
    // No action named, nothing to match; the scope alone decides.
    expect(checkCall(access, { scope: 'expenses:approve' })).toBeUndefined();
  });

  it('refuses a cnf it cannot check (another confirmation method) as invalid_token, never as unbound', () => {
    const claims = { jti: 'j', sub: 'alice', client_id: 'agent', exp: 2e9, iat: 1e9 };
    expect(accessFromClaims('t', { ...claims, cnf: { jkt: 'A'.repeat(43) } }).tokenType).toBe('DPoP');
    for (const cnf of [{ 'x5t#S256': 'abc' }, { jkt: 'short' }, 'jkt', { jkt: 'A'.repeat(43), 'x5t#S256': 'abc' }]) {
      expect(() => accessFromClaims('t', { ...claims, cnf }), JSON.stringify(cnf)).toThrow(ClaimError);
    }
    expect(() => accessFromClaims('t', { ...claims, cnf: { 'x5t#S256': 'abc' } })).toThrow(/^token is bound by a confirmation method other than DPoP/);
  });
});

function koaLike() {
  const app = new Koa();
  app.use(koaAuth(v, { scope: 'expenses:read' }, { baseUrl: EXPENSES }));
  app.use((ctx) => { ctx.body = { ok: true }; });
  return app.callback();
}
