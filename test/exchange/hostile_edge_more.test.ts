import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

// Review findings on issue #10: a Host that is not a URL authority, a query string on the OAuth form
// endpoints, and client-signed actor tokens made for several servers or to live long.

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const FORM = 'application/x-www-form-urlencoded';
let w: World;
let key: CryptoKey;

beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 }, admin: { burst: 100_000, per_second: 100_000 } } });
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'pk-1', alg: 'ES256', use: 'sig' };
  const res = await w.t.admin('POST', '/admin/api/clients', {
    client_id: 'pk-agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  expect(res.status, await res.clone().text()).toBe(201);
});
afterAll(async () => { await w?.t.stop(); });

const nowSec = () => Math.floor(Date.now() / 1000);

/** A JWT signed by pk-agent's registered key: a client assertion by default; any claim can be overridden. */
function signed(claims: Record<string, unknown> = {}): Promise<string> {
  const now = nowSec();
  return new SignJWT({ iss: 'pk-agent', sub: 'pk-agent', aud: w.t.issuer, jti: randomBytes(12).toString('base64url'), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'pk-1' })
    .sign(key);
}

interface Answer { status: number; json: Record<string, unknown> }

/** A raw HTTP request, so the Host header can be anything. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${w.t.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>; } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a Host header that is not a URL authority', () => {
  it('is 400 invalid_request before any authentication, on /token with a client assertion, the checkpoint and admin lists', async () => {
    expect((await w.t.admin('POST', '/admin/api/ledger/checkpoint')).status).toBeLessThan(300);
    const assertionForm = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE, ...exchangeParams('x') as Record<string, string>, client_assertion_type: JWT_BEARER, client_assertion: await signed(),
    }).toString();
    for (const host of ['[', 'a b', 'exa mple.com:80', '[::1']) {
      const answers = [
        await send('POST', '/token', { host, 'content-type': FORM }, assertionForm),
        await send('GET', '/.well-known/ledger-checkpoint', { host }),
        await send('GET', '/.well-known/ledger-checkpoint?from=1', { host }),
        await send('GET', '/admin/api/clients?limit=5', { host, authorization: `Bearer ${w.t.adminToken}` }),
        await send('GET', '/admin/api/ledger?limit=5', { host, authorization: `Bearer ${w.t.adminToken}` }),
      ];
      for (const a of answers) {
        expect(a.status, `${host}: ${JSON.stringify(a.json)}`).toBe(400);
        expect(a.json.error).toBe('invalid_request');
      }
    }
    // The same requests with a real Host are answered as usual.
    expect((await send('GET', '/.well-known/ledger-checkpoint', { host: 'localhost' })).status).toBe(200);
    expect((await send('GET', '/admin/api/clients?limit=5', { host: 'localhost', authorization: `Bearer ${w.t.adminToken}` })).status).toBe(200);
  });
});

describe('a query string on the OAuth form endpoints', () => {
  const basic = (client: string) => basicAuth(...w.creds[client]!);
  const post = (path: string, query: string, form: Record<string, string>) => fetch(`${w.t.url}${path}?${query}`, {
    method: 'POST', headers: { 'content-type': FORM, authorization: basic('agent') }, body: new URLSearchParams(form),
  });

  it('is refused with 400 invalid_request, never silently ignored', async () => {
    const exchange: Record<string, string> = { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) as Record<string, string> };
    delete exchange.scope;
    for (const res of [
      await post('/token', 'scope=expenses:read', exchange),
      await post('/token', 'resource=https://hr.example', exchange),
      await post('/token/introspection', 'token_type_hint=access_token', { token: 'x' }),
      await post('/token/revocation', 'token=x', { token: 'y' }),
    ]) {
      const body = await res.json() as { error: string; error_description: string };
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/query string/) });
    }
    const ok = await fetch(`${w.t.url}/token`, { method: 'POST', headers: { 'content-type': FORM, authorization: basic('agent') }, body: new URLSearchParams(exchange) });
    expect(ok.status, await ok.clone().text()).toBe(200);
  });
});

describe('client-signed actor tokens', () => {
  const exchangeWith = async (actorClaims: Record<string, unknown>) => fetch(`${w.t.url}/token`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) as Record<string, string>,
      actor_token: await signed(actorClaims), actor_token_type: ACCESS_TOKEN_TYPE,
      client_assertion_type: JWT_BEARER, client_assertion: await signed(),
    }),
  });
  const refused = async (res: Response, description: RegExp) => {
    const body = await res.json() as { error: string; error_description: string };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toMatch(description);
  };

  it('must name this issuer as their only audience', async () => {
    for (const aud of [[w.t.issuer, 'https://evil.example'], ['https://evil.example', w.t.issuer], [w.t.issuer, w.t.issuer], `${w.t.issuer}/`]) {
      await refused(await exchangeWith({ aud }), /^actor_token /);
    }
    expect((await exchangeWith({ aud: [w.t.issuer] })).status).toBe(200);
    expect((await exchangeWith({ aud: w.t.issuer })).status).toBe(200);
  });

  it('live no longer than a client assertion', async () => {
    const max = w.t.config.exchange.clientAssertionMaxLifetime;
    const now = nowSec();
    await refused(await exchangeWith({ iat: now, exp: now + max + 1 }), /^actor_token lifetime must not exceed/);
    await refused(await exchangeWith({ iat: now - 3600, exp: now + 30 }), /^actor_token lifetime must not exceed/);
    await refused(await exchangeWith({ iat: undefined, exp: now + 86_400 }), /^actor_token lifetime must not exceed/);
    expect((await exchangeWith({ iat: now, exp: now + max })).status).toBe(200);
  });
});

it('answers /readyz from the background pool', async () => {
  const res = await fetch(`${w.t.url}/readyz`);
  expect(res.status).toBe(200);
});
