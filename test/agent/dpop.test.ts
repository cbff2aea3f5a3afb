import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowInsecureRequests, discovery } from 'openid-client';
import * as oauth from 'oauth4webapi';
import { AgentInputError, createAgent, DPOP_ALGORITHMS, ExchangeFailed, type Agent, type ExchangedToken } from '@intentgate/agent';
import { accessTokenHash, verifyDpopProof } from '../../packages/resource/src/protocol/dpop_proof.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { agentFor, ledgerCount, localServer, registerResource, type LocalServer, type SeenRequest } from './helpers.ts';

let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  agent = await agentFor(w);
});
afterAll(async () => { await w?.t.stop(); });

const read = async (dpop: ExchangedToken['dpopKey'] | boolean = true, resource = EXPENSES) =>
  agent.exchange({ subjectToken: await w.userToken(), intent: 'Read the expense reports', resource, scope: 'expenses:read', dpop });

const thumbprint = async (key: CryptoKey) => calculateJwkThumbprint(await exportJWK(key), 'sha256');

/** What a resource server checks: the JWT, then the proof against this very request and the token's cnf.jkt. */
async function checkRequest(seen: SeenRequest, origin: string, audience: string): Promise<{ claims: JWTPayload; proof: { jti: string; jkt: string } }> {
  const [scheme, token] = (seen.headers.authorization ?? '').split(' ');
  if (scheme !== 'DPoP' || !token) throw new Error(`expected an Authorization: DPoP header, got ${seen.headers.authorization}`);
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${w.t.url}/jwks`)), { issuer: w.t.issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] });
  const jkt = (payload.cnf as { jkt?: string } | undefined)?.jkt;
  const proof = await verifyDpopProof(seen.headers.dpop as string, { method: seen.method, url: `${origin}${seen.url}`, accessToken: token, maxAge: 60, clockSkew: 5, ...(jkt ? { jkt } : {}) });
  return { claims: payload, proof };
}

describe('DPoP-bound tokens', () => {
  it('dpop: true binds the token to one agent key, generated once and non-extractable', async () => {
    const first = await read();
    expect(first.tokenType).toBe('DPoP');
    expect(first.dpopKey!.privateKey.extractable).toBe(false);
    const jkt = await thumbprint(first.dpopKey!.publicKey);
    expect(decodeJwt(first.accessToken).cnf).toEqual({ jkt });
    expect(await agent.dpopThumbprint()).toBe(jkt);
    const second = await read();
    expect(second.dpopKey).toBe(first.dpopKey);
    expect(decodeJwt(second.accessToken).cnf).toEqual({ jkt });
  });

  it('binds the token to a key pair passed as given', async () => {
    const pair = await generateKeyPair('ES256');
    const token = await read(pair);
    expect(token).toMatchObject({ tokenType: 'DPoP', dpopKey: pair });
    expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt: await thumbprint(pair.publicKey) });
    expect(await thumbprint(pair.publicKey)).not.toBe(await agent.dpopThumbprint());
  });

  it("exchanges a bound delegation token only with a proof of the delegate's own key, and keeps the next token bound", async () => {
    const pair = await generateKeyPair('ES256');
    const sub = await agentFor(w, 'sub-agent');
    const delegation = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Hand the reading to the sub-agent', audience: 'sub-agent', scope: 'expenses:read', dpop: pair });
    expect(decodeJwt(delegation.accessToken).cnf).toEqual({ jkt: await thumbprint(pair.publicKey) });
    const ask = (dpop?: CryptoKeyPair | boolean) => sub.exchange({ subjectToken: delegation.accessToken, intent: 'Read the expense reports', resource: EXPENSES, scope: 'expenses:read', ...(dpop ? { dpop } : {}) });
    // Never reissued as a Bearer token.
    const without = await ask().catch((e: unknown) => e);
    expect(without).toBeInstanceOf(ExchangeFailed);
    expect(without).toMatchObject({ error: 'invalid_dpop_proof' });
    const own = await ask(true);
    expect(own.tokenType).toBe('DPoP');
    expect(decodeJwt(own.accessToken)).toMatchObject({ cnf: { jkt: await sub.dpopThumbprint() }, act: { sub: 'sub-agent', act: { sub: 'agent' } } });
    expect(await sub.dpopThumbprint()).not.toBe(await thumbprint(pair.publicKey));
  });
});

describe('DPoP keys', () => {
  it('binds tokens to ES384 and Ed25519 keys too, and their proofs pass at a resource', async () => {
    const rs = await localServer(async (seen, origin) => {
      const { proof } = await checkRequest(seen, origin, resource);
      return { status: 200, body: JSON.stringify(proof) };
    });
    const resource = await registerResource(w, `${rs.url}/keys`);
    try {
      for (const alg of ['ES384', 'Ed25519'] as const) {
        const pair = await generateKeyPair(alg);
        const token = await read(pair, resource);
        expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt: await thumbprint(pair.publicKey) });
        const res = await agent.fetch(token, `${resource}/expenses`);
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ jkt: await thumbprint(pair.publicKey) });
        expect(decodeProtectedHeader(rs.seen.at(-1)!.headers.dpop as string)).toMatchObject({ alg, typ: 'dpop+jwt' });
      }
    } finally {
      await rs.close();
    }
  });

  it('refuses RSA, P-521 and mismatched key pairs before any request, naming the algorithms it accepts', async () => {
    const endpoint = await localServer(async () => ({ status: 500, body: '{}' }));
    try {
      const offline = await createAgent({ as: { issuer: endpoint.url, token_endpoint: `${endpoint.url}/token` }, client: { client_id: 'agent' }, clientAuth: oauth.ClientSecretBasic('s'), http: { allowInsecure: true } });
      const es256 = await generateKeyPair('ES256');
      const es384 = await generateKeyPair('ES384');
      const refused: Array<[CryptoKeyPair, RegExp]> = [
        [await generateKeyPair('RS256'), /RSASSA-PKCS1-v1_5 key .*ES256, ES384, Ed25519/],
        [await generateKeyPair('PS256'), /RSA-PSS key .*ES256, ES384, Ed25519/],
        [await generateKeyPair('ES512'), /ECDSA P-521 key .*ES256, ES384, Ed25519/],
        [{ privateKey: es256.privateKey, publicKey: es384.publicKey }, /one pair/],
        [{ privateKey: es256.publicKey, publicKey: es256.privateKey }, /private and a public key/],
      ];
      for (const [dpop, message] of refused) {
        const err = await offline.exchange({ subjectToken: 't', intent: 'Read', resource: EXPENSES, dpop }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AgentInputError);
        expect(err).toMatchObject({ field: 'dpop', message: expect.stringMatching(message) });
        expect(() => offline.tools({ subjectToken: 't', resource: EXPENSES, dpop, tools: { list: { scope: 'expenses:read', action: 'list' } } })).toThrow(message);
      }
      expect(DPOP_ALGORITHMS).toEqual(['ES256', 'ES384', 'Ed25519']);
      expect(endpoint.seen).toHaveLength(0);
    } finally {
      await endpoint.close();
    }
  });
});

describe('calling the resource', () => {
  let rs: LocalServer;
  /** The resource the tokens are for: an API base URL, requests go beneath it. */
  let api: string;
  const checked: Array<{ jti: string; jkt: string }> = [];
  beforeAll(async () => {
    rs = await localServer(async (seen, origin) => {
      try {
        const { claims, proof } = await checkRequest(seen, origin, api);
        checked.push(proof);
        return { status: 200, body: JSON.stringify({ sub: claims.sub, method: seen.method, url: seen.url, body: seen.body, type: seen.headers['content-type'] ?? null, extra: seen.headers['x-extra'] ?? null }) };
      } catch (err) {
        return { status: 401, headers: { 'www-authenticate': `DPoP error="invalid_token", error_description="${(err as Error).message.replaceAll('"', "'")}"` }, body: '{}' };
      }
    });
    api = await registerResource(w, `${rs.url}/api`);
  });
  afterAll(async () => { await rs?.close(); });

  it('sends Authorization: DPoP and a fresh proof (htm, htu, ath) per request', async () => {
    const token = await read(true, api);
    expect(token.resource).toBe(api);
    const got = await agent.fetch(token, `${api}/expenses?status=open`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ sub: 'alice', method: 'GET' });
    const posted = await agent.fetch(token, new URL(`${api}/expenses`), { method: 'post', headers: { 'content-type': 'application/json', 'x-extra': '1' }, body: '{"amount":5}' });
    expect(await posted.json()).toMatchObject({ method: 'POST', body: '{"amount":5}', type: 'application/json', extra: '1' });
    const fetchLike = agent.authorizedFetch(token);
    const viaRequest = await fetchLike(new Request(`${api}/expenses/1`, { method: 'PUT', headers: new Headers({ 'x-extra': '2', authorization: 'Bearer someone-elses' }), body: 'note' }));
    expect(await viaRequest.json()).toMatchObject({ method: 'PUT', body: 'note', extra: '2' });
    const blob = await fetchLike(`${api}/upload`, { method: 'POST', body: new Blob(['bytes'], { type: 'text/plain' }) });
    expect(await blob.json()).toMatchObject({ body: 'bytes', type: 'text/plain' });
    expect(checked.slice(-4).map((p) => p.jkt)).toEqual(Array(4).fill(await agent.dpopThumbprint()));
    expect(new Set(checked.map((p) => p.jti)).size).toBe(checked.length);
    const last = rs.seen.at(-1)!;
    expect(decodeJwt(last.headers.dpop as string)).toMatchObject({ htm: 'POST', htu: `${api}/upload`, ath: accessTokenHash(token.accessToken) });
  });

  it('sends a token only to its resource: the same origin, at or beneath the resource path', async () => {
    const elsewhere = await localServer(async () => ({ status: 200, body: '{}' }));
    try {
      const port = new URL(rs.url).port;
      for (const token of [await read(true, api), await read(false, api)]) {
        const before = rs.seen.length;
        const refused = [
          `${elsewhere.url}/api/expenses`, // another origin, the same path
          `http://localhost:${port}/api/expenses`, // the same server by another name is another origin
          `https://127.0.0.1:${port}/api/expenses`, // another scheme
          `${rs.url}/other`, // a sibling path on the same origin
          `${rs.url}/apix`, // a look-alike prefix: paths match on segments
          `${rs.url}/`,
          `${api}/../admin`, // dot segments are resolved first…
          `${api}/%2e%2e/admin`, // …also percent-encoded ones
        ];
        for (const url of refused) {
          await expect(agent.fetch(token, url)).rejects.toMatchObject({ name: 'AgentInputError', field: 'url' });
          await expect(agent.authorizedFetch(token)(new Request(url))).rejects.toMatchObject({ name: 'AgentInputError', field: 'url' });
        }
        await expect(agent.fetch(token, '/api/expenses')).rejects.toMatchObject({ field: 'url', message: expect.stringContaining('absolute http(s) URL') });
        expect(rs.seen.length).toBe(before);
        for (const url of [api, `${api}/`, `${api}?page=2`, `${api}/expenses/exp_1/receipt`]) {
          const res = await agent.fetch(token, url);
          expect(res.status).toBe(token.tokenType === 'DPoP' ? 200 : 401);
        }
        expect(rs.seen.length).toBe(before + 4);
      }
      expect(elsewhere.seen).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });

  it('admits every path of a resource that is an origin, and none of another origin', async () => {
    const whole = await localServer(async () => ({ status: 200, body: '{}' }));
    try {
      const token = await read(true, await registerResource(w, whole.url));
      expect((await agent.fetch(token, `${whole.url}/any/path?at=all`)).status).toBe(200);
      expect((await agent.fetch(token, whole.url)).status).toBe(200);
      await expect(agent.fetch(token, `${api}/expenses`)).rejects.toMatchObject({ field: 'url' });
      expect(whole.seen).toHaveLength(2);
    } finally {
      await whole.close();
    }
  });

  it('never presents a delegation token, nor a token that names no resource', async () => {
    const before = rs.seen.length;
    const delegation = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Hand the reading to the sub-agent', audience: 'sub-agent', scope: 'expenses:read', dpop: true });
    expect(delegation).toMatchObject({ audience: 'sub-agent', tokenType: 'DPoP' });
    expect(delegation).not.toHaveProperty('resource');
    expect(() => agent.authorizedFetch(delegation)).toThrow(AgentInputError);
    expect(() => agent.authorizedFetch(delegation)).toThrow(/delegation token for "sub-agent"/);
    await expect(agent.fetch(delegation, `${api}/expenses`)).rejects.toMatchObject({ name: 'AgentInputError', field: 'token' });
    const unnamed = { ...await read(true, api), resource: undefined };
    await expect(agent.fetch(unnamed, `${api}/expenses`)).rejects.toMatchObject({ field: 'token', message: expect.stringContaining('names no resource') });
    expect(rs.seen.length).toBe(before);
  });

  it('answers a 401 challenge with the response, as fetch does, and presents a Bearer token as Bearer', async () => {
    const bearer = await read(false, api);
    expect(bearer.tokenType).toBe('Bearer');
    const res = await agent.fetch(bearer, `${api}/expenses`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('expected an Authorization: DPoP header, got Bearer');
    expect(rs.seen.at(-1)!.headers).not.toHaveProperty('dpop');
  });

  it('retries once with the nonce a resource asks for (RFC 9449 §9)', async () => {
    const nonced = await localServer(async (seen) => {
      const nonce = (decodeJwt(seen.headers.dpop as string) as { nonce?: string }).nonce;
      if (nonce !== 'n-1') return { status: 401, headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-1' }, body: '{}' };
      return { status: 200, body: JSON.stringify({ body: seen.body }) };
    });
    try {
      const token = await read(true, await registerResource(w, nonced.url));
      const res = await agent.fetch(token, `${nonced.url}/expenses`, { method: 'POST', body: 'again' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ body: 'again' });
      expect(nonced.seen).toHaveLength(2);
    } finally {
      await nonced.close();
    }
  });

  it('refuses an http:// resource unless http.allowInsecure is set', async () => {
    const [id, secret] = w.creds.agent!;
    const strict = await createAgent({ configuration: await discovery(new URL(w.t.issuer), id, secret, undefined, { execute: [allowInsecureRequests] }) });
    const token = await strict.exchange({ subjectToken: await w.userToken(), intent: 'Read', resource: api, scope: 'expenses:read', dpop: true });
    expect(token.tokenType).toBe('DPoP');
    const before = rs.seen.length;
    await expect(strict.fetch(token, `${api}/expenses`)).rejects.toThrow(AgentInputError);
    await expect(strict.authorizedFetch(token)(`${api}/expenses`)).rejects.toThrow(/not https.*allowInsecure/);
    expect(rs.seen.length).toBe(before);
  });
});

describe('as the fetch of the MCP SDK', () => {
  let mcp: { url: string; close(): Promise<void> };
  const proofs: string[] = [];
  // Every Authorization header that reached the server, recorded before anything else is done with it.
  const presented: Array<string | undefined> = [];
  beforeAll(async () => {
    const server = http.createServer((req, res) => {
      presented.push(req.headers.authorization);
      void (async () => {
        const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        try {
          const { claims, proof } = await checkRequest({ method: req.method!, url: req.url!, headers: req.headers, body: '' }, origin, mcp.url);
          proofs.push(proof.jti);
          if (req.method !== 'POST') return void res.writeHead(405).end();
          const mcpServer = new McpServer({ name: 'expenses', version: '1.0.0' });
          mcpServer.registerTool('whoami', { description: 'Who the token is for' }, async () => ({ content: [{ type: 'text', text: `${claims.sub} via ${(claims.act as { sub: string }).sub}` }] }));
          const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
          res.on('close', () => { void transport.close(); void mcpServer.close(); });
          await mcpServer.connect(transport);
          await transport.handleRequest(req, res);
        } catch (err) {
          res.writeHead(401, { 'www-authenticate': `DPoP error="invalid_token", error_description="${(err as Error).message.replaceAll('"', "'")}"` }).end();
        }
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    mcp = {
      // An MCP server's resource identifier is its endpoint's URL, and every request goes to exactly that URL.
      url: await registerResource(w, `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`),
      close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    };
  });
  afterAll(async () => { await mcp?.close(); });

  it('carries a DPoP token and a valid proof on every request of an MCP session', async () => {
    const token = await read(true, mcp.url);
    const client = new Client({ name: 'agent-tests', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { fetch: agent.authorizedFetch(token) }));
    try {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      expect(result.content).toEqual([{ type: 'text', text: 'alice via agent' }]);
    } finally {
      await client.close();
    }
    // initialize, notifications/initialized, tools/call: each with its own accepted proof.
    expect(proofs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(proofs).size).toBe(proofs.length);
  });

  it('will not carry a token for another resource into an MCP session', async () => {
    const other = await read(true);
    const client = new Client({ name: 'agent-tests', version: '1.0.0' });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { fetch: agent.authorizedFetch(other) }))).rejects.toThrow(/not the origin of the token's resource/);
    // Counting requests would race the previous session's last ones; the token itself must never have arrived.
    expect(presented.some((h) => h?.endsWith(other.accessToken))).toBe(false);
  });
});
