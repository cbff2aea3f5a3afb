import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowInsecureRequests, discovery } from 'openid-client';
import { AgentInputError, createAgent, ExchangeFailed, type Agent, type ExchangedToken } from '../../src/agent/index.ts';
import { accessTokenHash, verifyDpopProof } from '../../src/dpop/proof.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { agentFor, localServer, type LocalServer, type SeenRequest } from './helpers.ts';

let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  agent = await agentFor(w);
});
afterAll(async () => { await w?.t.stop(); });

const read = async (dpop: ExchangedToken['dpopKey'] | boolean = true, subjectToken?: string) =>
  agent.exchange({ subjectToken: subjectToken ?? await w.userToken(), intent: 'Read the expense reports', resource: EXPENSES, scope: 'expenses:read', dpop });

const thumbprint = async (key: CryptoKey) => calculateJwkThumbprint(await exportJWK(key), 'sha256');

/** What a resource server checks: the JWT, then the proof against this very request and the token's cnf.jkt. */
async function checkRequest(seen: SeenRequest, origin: string): Promise<{ claims: JWTPayload; proof: { jti: string; jkt: string } }> {
  const [scheme, token] = (seen.headers.authorization ?? '').split(' ');
  if (scheme !== 'DPoP' || !token) throw new Error(`expected an Authorization: DPoP header, got ${seen.headers.authorization}`);
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${w.t.url}/jwks`)), { issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['ES256'] });
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

  it('exchanges a DPoP-bound subject token only with a proof from its key', async () => {
    const pair = await generateKeyPair('ES256');
    const sub = await agentFor(w, 'sub-agent');
    const delegation = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Hand the reading to the sub-agent', audience: 'sub-agent', scope: 'expenses:read', dpop: pair });
    expect(decodeJwt(delegation.accessToken).cnf).toEqual({ jkt: await thumbprint(pair.publicKey) });
    const ask = (dpop?: CryptoKeyPair) => sub.exchange({ subjectToken: delegation.accessToken, intent: 'Read the expense reports', resource: EXPENSES, scope: 'expenses:read', ...(dpop ? { dpop } : {}) });
    const without = await ask().catch((e: unknown) => e);
    expect(without).toBeInstanceOf(ExchangeFailed);
    expect(without).toMatchObject({ error: 'invalid_dpop_proof' });
    const otherKey = await ask(await generateKeyPair('ES256')).catch((e: unknown) => e);
    expect(otherKey).toMatchObject({ error: 'invalid_dpop_proof' });
    const own = await ask(pair);
    expect(own.tokenType).toBe('DPoP');
    expect(decodeJwt(own.accessToken)).toMatchObject({ cnf: { jkt: await thumbprint(pair.publicKey) }, act: { sub: 'sub-agent', act: { sub: 'agent' } } });
  });
});

describe('calling the resource', () => {
  let rs: LocalServer;
  const checked: Array<{ jti: string; jkt: string }> = [];
  beforeAll(async () => {
    rs = await localServer(async (seen, origin) => {
      try {
        const { claims, proof } = await checkRequest(seen, origin);
        checked.push(proof);
        return { status: 200, body: JSON.stringify({ sub: claims.sub, method: seen.method, body: seen.body, type: seen.headers['content-type'] ?? null, extra: seen.headers['x-extra'] ?? null }) };
      } catch (err) {
        return { status: 401, headers: { 'www-authenticate': `DPoP error="invalid_token", error_description="${(err as Error).message.replaceAll('"', "'")}"` }, body: '{}' };
      }
    });
  });
  afterAll(async () => { await rs?.close(); });

  it('sends Authorization: DPoP and a fresh proof (htm, htu, ath) per request', async () => {
    const token = await read();
    const got = await agent.fetch(token, `${rs.url}/expenses?status=open`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ sub: 'alice', method: 'GET' });
    const posted = await agent.fetch(token, new URL(`${rs.url}/expenses`), { method: 'post', headers: { 'content-type': 'application/json', 'x-extra': '1' }, body: '{"amount":5}' });
    expect(await posted.json()).toMatchObject({ method: 'POST', body: '{"amount":5}', type: 'application/json', extra: '1' });
    const fetchLike = agent.authorizedFetch(token);
    const viaRequest = await fetchLike(new Request(`${rs.url}/expenses/1`, { method: 'PUT', headers: new Headers({ 'x-extra': '2', authorization: 'Bearer someone-elses' }), body: 'note' }));
    expect(await viaRequest.json()).toMatchObject({ method: 'PUT', body: 'note', extra: '2' });
    const blob = await fetchLike(`${rs.url}/upload`, { method: 'POST', body: new Blob(['bytes'], { type: 'text/plain' }) });
    expect(await blob.json()).toMatchObject({ body: 'bytes', type: 'text/plain' });
    expect(checked.slice(-4).map((p) => p.jkt)).toEqual(Array(4).fill(await agent.dpopThumbprint()));
    expect(new Set(checked.map((p) => p.jti)).size).toBe(checked.length);
    const last = rs.seen.at(-1)!;
    expect(decodeJwt(last.headers.dpop as string)).toMatchObject({ htm: 'POST', htu: `${rs.url}/upload`, ath: accessTokenHash(token.accessToken) });
  });

  it('answers a 401 challenge with the response, as fetch does, and presents a Bearer token as Bearer', async () => {
    const bearer = await read(false);
    expect(bearer.tokenType).toBe('Bearer');
    const res = await agent.fetch(bearer, `${rs.url}/expenses`);
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
      const res = await agent.fetch(await read(), `${nonced.url}/expenses`, { method: 'POST', body: 'again' });
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
    const token = await strict.exchange({ subjectToken: await w.userToken(), intent: 'Read', resource: EXPENSES, scope: 'expenses:read', dpop: true });
    expect(token.tokenType).toBe('DPoP');
    const before = rs.seen.length;
    await expect(strict.fetch(token, `${rs.url}/expenses`)).rejects.toThrow(AgentInputError);
    await expect(strict.authorizedFetch(token)(`${rs.url}/expenses`)).rejects.toThrow(/not https.*allowInsecure/);
    expect(rs.seen.length).toBe(before);
  });
});

describe('as the fetch of the MCP SDK', () => {
  let mcp: { url: string; close(): Promise<void> };
  const proofs: string[] = [];
  beforeAll(async () => {
    const server = http.createServer((req, res) => {
      void (async () => {
        const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        try {
          const { claims, proof } = await checkRequest({ method: req.method!, url: req.url!, headers: req.headers, body: '' }, origin);
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
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
      close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    };
  });
  afterAll(async () => { await mcp?.close(); });

  it('carries a DPoP token and a valid proof on every request of an MCP session', async () => {
    const token = await read();
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
});
