import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastEntry } from '../helpers/ledger.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

interface Holder { privateKey: CryptoKey; jwk: JWK; jkt: string }

async function holder(alg = 'ES256'): Promise<Holder> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A DPoP proof (RFC 9449 §4.2); any claim or header can be overridden for hostile variants. */
async function proof(h: Holder, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: `${w.t.url}/token`, jti: randomBytes(12).toString('base64url'), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk, ...header } as { alg: string })
    .sign(h.privateKey);
}

/** POST /token as `clientId` with extra headers (DPoP). */
function exchangeWith(clientId: string, params: Record<string, string>, headers: Record<string, string> | Array<[string, string]>): Promise<Response> {
  const [id, secret] = w.creds[clientId]!;
  const h = new Headers(headers);
  h.set('authorization', `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`);
  h.set('content-type', 'application/x-www-form-urlencoded');
  return fetch(`${w.t.url}/token`, { method: 'POST', headers: h, body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...params }) });
}

function introspect(token: string): Promise<Record<string, unknown>> {
  const [id, secret] = w.creds['expenses-rs']!;
  return fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  }).then((r) => r.json() as Promise<Record<string, unknown>>);
}

async function params(claims: Record<string, unknown> = {}): Promise<Record<string, string>> {
  return exchangeParams(await w.userToken(claims)) as Record<string, string>;
}

describe('DPoP (RFC 9449) at the token exchange', () => {
  it('binds the issued token to the proof key: token_type DPoP, cnf.jkt, introspection and ledger say so', async () => {
    const h = await holder();
    const res = await exchangeWith('agent', await params(), { dpop: await proof(h) });
    expect(res.status).toBe(200);
    const body = await res.json() as { access_token: string; token_type: string };
    expect(body.token_type).toBe('DPoP');
    expect(decodeJwt(body.access_token).cnf).toEqual({ jkt: h.jkt });
    expect(await introspect(body.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: h.jkt } });
    const entry = await lastEntry(w.t.server.db, 'exchange.granted');
    expect(entry.payload).toMatchObject({ jti: decodeJwt(body.access_token).jti, cnf_jkt: h.jkt });
  });

  it('issues a Bearer token, and says so, when no proof is sent', async () => {
    const res = await exchangeWith('agent', await params(), {});
    const body = await res.json() as { access_token: string; token_type: string };
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.access_token).cnf).toBeUndefined();
    expect(await introspect(body.access_token)).toMatchObject({ active: true, token_type: 'Bearer' });
  });

  it('refuses a replayed proof', async () => {
    const h = await holder();
    const p = await proof(h);
    expect((await exchangeWith('agent', await params(), { dpop: p })).status).toBe(200);
    const again = await exchangeWith('agent', await params(), { dpop: p });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('replay') });
  });

  it('refuses proofs that are malformed, hostile or made for another request', async () => {
    const h = await holder();
    const { privateKey: hsKey } = { privateKey: new TextEncoder().encode('a'.repeat(32)) };
    const privateJwk = await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey);
    const cases: Array<[string, string | Array<[string, string]>]> = [
      ['garbage', 'not-a-jwt'],
      ['wrong htu', await proof(h, { htu: 'https://elsewhere.example/token' })],
      ['wrong htm', await proof(h, { htm: 'GET' })],
      ['too old', await proof(h, { iat: Math.floor(Date.now() / 1000) - 3600 })],
      ['from the future', await proof(h, { iat: Math.floor(Date.now() / 1000) + 3600 })],
      ['no jti', await proof(h, { jti: undefined })],
      ['oversized jti', await proof(h, { jti: 'x'.repeat(300) })],
      ['typ JWT', await proof(h, {}, { typ: 'JWT' })],
      ['no embedded key', await proof(h, {}, { jwk: undefined })],
      ['a private key embedded', await proof(h, {}, { jwk: privateJwk })],
      ['signed by another key than the embedded one', await proof({ ...h, privateKey: (await holder()).privateKey })],
      ['HS256', await new SignJWT({ htm: 'POST', htu: `${w.t.url}/token`, jti: 'x', iat: Math.floor(Date.now() / 1000) })
        .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: h.jwk } as { alg: string }).sign(hsKey)],
      ['oversized', `${'a'.repeat(9000)}.b.c`],
      ['two headers', [['dpop', await proof(h)], ['dpop', await proof(h)]]],
    ];
    for (const [name, value] of cases) {
      const res = await exchangeWith('agent', await params(), typeof value === 'string' ? { dpop: value } : value);
      expect(res.status, name).toBe(400);
      const body = await res.json() as { error: string; error_description: string };
      expect(body.error, name).toBe('invalid_dpop_proof');
      expect(body.error_description, name).toMatch(/DPoP/);
      expect(body.error_description, name).not.toMatch(/\n\s+at /);
    }
  });

  it('exchanges a DPoP-bound subject token only with a proof made by its key', async () => {
    const h = await holder();
    const bound = await params({ cnf: { jkt: h.jkt } });
    const none = await exchangeWith('agent', bound, {});
    expect(await none.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('subject_token is DPoP-bound') });
    const thief = await exchangeWith('agent', bound, { dpop: await proof(await holder()) });
    expect(thief.status).toBe(400);
    expect(await thief.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('cnf.jkt') });
    const owner = await exchangeWith('agent', bound, { dpop: await proof(h) });
    expect(owner.status).toBe(200);
    const { access_token } = await owner.json() as { access_token: string };
    expect(decodeJwt(access_token).cnf).toEqual({ jkt: h.jkt });
  });

  it('refuses a subject token whose cnf it cannot check', async () => {
    for (const cnf of [{ 'x5t#S256': 'abc' }, { jkt: 7 }, 'jkt', null]) {
      const res = await exchangeWith('agent', await params({ cnf }), { dpop: await proof(await holder()) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('cnf') });
    }
  });

  it('holds a bound delegation token to its key on the next hop', async () => {
    const h = await holder();
    const delegate = await params();
    delete (delegate as Record<string, string | undefined>).resource;
    const first = await exchangeWith('agent', { ...delegate, audience: 'sub-agent' }, { dpop: await proof(h) });
    expect(first.status).toBe(200);
    const { access_token: delegation } = await first.json() as { access_token: string };
    const hop = { subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' };
    const stolen = await exchangeWith('sub-agent', hop, { dpop: await proof(await holder()) });
    expect(await stolen.json()).toMatchObject({ error: 'invalid_dpop_proof' });
    const ok = await exchangeWith('sub-agent', hop, { dpop: await proof(h) });
    expect(ok.status).toBe(200);
    expect(decodeJwt(((await ok.json()) as { access_token: string }).access_token).act).toEqual({ sub: 'sub-agent', act: { sub: 'agent' } });
  });

  it('exchanges with a DPoP-bound actor token only with a proof made by its key', async () => {
    const h = await holder();
    const got = await exchangeWith('agent', await params(), { dpop: await proof(h) });
    const { access_token: actorToken } = await got.json() as { access_token: string };
    const withActor = { ...await params(), actor_token: actorToken, actor_token_type: ACCESS_TOKEN_TYPE };
    expect(await (await exchangeWith('agent', withActor, {})).json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('actor_token') });
    expect((await exchangeWith('agent', withActor, { dpop: await proof(h) })).status).toBe(200);
    // A subject bound to one key and an actor bound to another cannot both be proven by one proof.
    const other = await holder();
    const both = { ...await params({ cnf: { jkt: other.jkt } }), actor_token: actorToken, actor_token_type: ACCESS_TOKEN_TYPE };
    expect(await (await exchangeWith('agent', both, { dpop: await proof(other) })).json()).toMatchObject({ error: 'invalid_dpop_proof' });
  });

  it('binds client_credentials tokens too (oidc-provider), and introspection reports it', async () => {
    const h = await holder();
    const [id, secret] = w.creds.batch!;
    const res = await fetch(`${w.t.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', dpop: await proof(h) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }),
    });
    expect(res.status).toBe(200);
    const body = await res.json() as { access_token: string; token_type: string };
    expect(body.token_type).toBe('DPoP');
    expect(decodeJwt(body.access_token).cnf).toEqual({ jkt: h.jkt });
    expect(await introspect(body.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: h.jkt } });
  });

  it('advertises the proof algorithms it accepts', async () => {
    const meta = await (await fetch(`${w.t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>;
    expect(meta.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA']));
    expect(meta.dpop_signing_alg_values_supported).not.toContain('HS256');
  });
});
