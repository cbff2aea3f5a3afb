import { randomBytes } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { sweepDpopProofs } from '../../src/exchange/dpop.ts';
import { startServer } from '../../src/server.ts';
import { basicAuth, freePort, onPostgres } from '../helpers/server.ts';
import { clientCredentials as batchToken, holder, proof as proofFor, type Holder } from '../helpers/dpop.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastEntry } from '../helpers/ledger.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

/** A proof for this server's token endpoint. */
const proof = (h: Holder, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => proofFor(h, `${w.t.url}/token`, claims, header);

/** POST /token as `clientId` with extra headers (DPoP), at `base` (default: the world's server). */
function exchangeWith(clientId: string, params: Record<string, string>, headers: Record<string, string> | Array<[string, string]>, base = w.t.url): Promise<Response> {
  const h = new Headers(headers);
  h.set('authorization', basicAuth(...w.creds[clientId]!));
  h.set('content-type', 'application/x-www-form-urlencoded');
  return fetch(`${base}/token`, { method: 'POST', headers: h, body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...params }) });
}

/** client_credentials as the `batch` client with a DPoP proof, at one server instance. */
const clientCredentials = (base: string, dpop: string) => batchToken(w, { base, dpop });

function introspect(token: string): Promise<Record<string, unknown>> {
  return fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basicAuth(...w.creds['expenses-rs']!), 'content-type': 'application/x-www-form-urlencoded' },
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
      ['typ application/dpop+jwt', await proof(h, {}, { typ: 'application/dpop+jwt' })],
      ['typ in capitals', await proof(h, {}, { typ: 'DPOP+JWT' })],
      ['RS256 (not accepted: the client would choose the key size we verify)', await (async () => {
        const rsa = await generateKeyPair('RS256');
        return new SignJWT({ htm: 'POST', htu: `${w.t.url}/token`, jti: randomBytes(8).toString('hex'), iat: Math.floor(Date.now() / 1000) })
          .setProtectedHeader({ alg: 'RS256', typ: 'dpop+jwt', jwk: await exportJWK(rsa.publicKey) }).sign(rsa.privateKey);
      })()],
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
    for (const cnf of [{ 'x5t#S256': 'abc' }, { jkt: 7 }, { jkt: 'abc' }, { jkt: 'A'.repeat(43), 'x5t#S256': 'abc' }, {}, 'jkt', null]) {
      const res = await exchangeWith('agent', await params({ cnf }), { dpop: await proof(await holder()) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('cnf') });
    }
  });

  it('lets the delegate of a bound delegation token prove its own key, and keeps the next token bound', async () => {
    const delegator = await holder();
    const delegate = await holder();
    const delegationParams = await params();
    delete (delegationParams as Record<string, string | undefined>).resource;
    const first = await exchangeWith('agent', { ...delegationParams, audience: 'sub-agent' }, { dpop: await proof(delegator) });
    expect(first.status).toBe(200);
    const { access_token: delegation } = await first.json() as { access_token: string };
    expect(decodeJwt(delegation).cnf).toEqual({ jkt: delegator.jkt });
    const hop = { subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' };
    // Never turned into a Bearer token: the delegate must prove a key of its own.
    expect(await (await exchangeWith('sub-agent', hop, {})).json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('your own key') });
    const ok = await exchangeWith('sub-agent', hop, { dpop: await proof(delegate) });
    expect(ok.status).toBe(200);
    const claims = decodeJwt(((await ok.json()) as { access_token: string }).access_token);
    expect(claims.cnf).toEqual({ jkt: delegate.jkt });
    expect(claims.act).toEqual({ sub: 'sub-agent', act: { sub: 'agent' } });
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
    const res = await clientCredentials(w.t.url, await proof(h));
    expect(res.status).toBe(200);
    const body = await res.json() as { access_token: string; token_type: string };
    expect(body.token_type).toBe('DPoP');
    expect(decodeJwt(body.access_token).cnf).toEqual({ jkt: h.jkt });
    expect(await introspect(body.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: h.jkt } });
  });

  it('holds client_credentials proofs to the same rules as the exchange\'s (age, typ, once)', async () => {
    const h = await holder();
    // oidc-provider alone would take a proof up to 300 s old and typ application/dpop+jwt.
    for (const p of [await proof(h, { iat: Math.floor(Date.now() / 1000) - 150 }), await proof(h, {}, { typ: 'application/dpop+jwt' })]) {
      const res = await clientCredentials(w.t.url, p);
      expect(res.status).toBe(400);
      expect((await res.json() as { error: string }).error).toBe('invalid_dpop_proof');
    }
    const once = await proof(h);
    expect((await clientCredentials(w.t.url, once)).status).toBe(200);
    expect((await clientCredentials(w.t.url, once)).status).toBe(400);
  });

  it('advertises the proof algorithms it accepts', async () => {
    const meta = await (await fetch(`${w.t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>;
    expect(meta.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA']));
    expect(meta.dpop_signing_alg_values_supported).not.toContain('HS256');
  });

  it('keeps a proof\'s replay record until it could no longer be accepted anyway, then sweeps it', async () => {
    const db = w.t.server.db;
    const now = Date.now();
    await db('dpop_proofs').insert([
      { jkt: 'sweep-test', jti: 'old', expires_at: new Date(now - 1000) },
      { jkt: 'sweep-test', jti: 'live', expires_at: new Date(now + 60_000) },
    ]);
    expect(await sweepDpopProofs(db)).toBeGreaterThanOrEqual(1);
    expect((await db('dpop_proofs').where({ jkt: 'sweep-test' }).select('jti')).map((r: { jti: string }) => r.jti)).toEqual(['live']);
    // A proof just accepted is kept for its age limit plus twice the clock skew (60 + 2 × 60 s by default).
    const h = await holder();
    expect((await exchangeWith('agent', await params(), { dpop: await proof(h) })).status).toBe(200);
    const row = await db('dpop_proofs').where({ jkt: h.jkt }).first('expires_at');
    const kept = (new Date(row.expires_at).getTime() - Date.now()) / 1000;
    expect(kept).toBeGreaterThan(170);
    expect(kept).toBeLessThanOrEqual(181);
  });
});

describe.skipIf(!onPostgres)('DPoP replay across server processes sharing one database (PostgreSQL only)', () => {
  it('accepts a proof once, whichever instance it reaches first', async () => {
    // A second instance of the same deployment: same database, same issuer (behind one load balancer), another port.
    const port = await freePort();
    const second = await startServer({ ...w.t.config, port });
    try {
      const h = await holder();
      const p = await proof(h);
      const body = await params();
      const answers = await Promise.all([w.t.url, `http://127.0.0.1:${port}`].map((base) =>
        exchangeWith('agent', body, { dpop: p }, base).then(async (r) => ({ status: r.status, body: await r.json() as { error?: string } }))));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      expect(answers.find((a) => a.status === 400)!.body.error).toBe('invalid_dpop_proof');
      // client_credentials too, where oidc-provider's own replay check (find, then save) could let both through.
      const cc = await proof(await holder());
      const ccAnswers = await Promise.all([w.t.url, `http://127.0.0.1:${port}`].map((base) => clientCredentials(base, cc).then((r) => r.status)));
      expect(ccAnswers.sort()).toEqual([200, 400]);
    } finally {
      await second.close();
    }
  });
});
