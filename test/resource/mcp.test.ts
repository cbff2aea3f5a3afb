import express from 'express';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InsufficientScopeError, InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { accessFrom, checkCall, createResourceVerifier, metadataUrl, ResourceAuthError, type ResourceVerifier } from '@intentgate/resource';
import { mcpTokenVerifier } from '@intentgate/resource/mcp';
import { details, EXPENSES, HR, startWorld, type World } from '../helpers/world.ts';
import { boundToken, dpopKey, exchanged, serve, type Served } from './helpers.ts';

let w: World;
let v: ResourceVerifier;
let app: Served;

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'expenses', version: '1.0.0' });
  server.registerTool('approve_expense', { description: 'Approve an expense', inputSchema: { id: z.string() } }, async ({ id }, extra) => {
    const access = accessFrom(extra.authInfo);
    const requirement = { scope: 'expenses:approve', action: 'approve', objectType: 'Expense', objectId: id };
    try {
      checkCall(access, requirement);
    } catch (err) {
      if (!(err instanceof ResourceAuthError)) throw err;
      await access.report({ outcome: 'denied', action: 'approve', object: { type: 'Expense', id } });
      return { content: [{ type: 'text', text: `refused: ${err.description}` }], isError: true };
    }
    const seq = await access.report({ outcome: 'success', action: 'approve', object: { type: 'Expense', id } });
    return { content: [{ type: 'text', text: `approved ${id} for ${access.sub} (ledger ${seq})` }] };
  });
  return server;
}

beforeAll(async () => {
  w = await startWorld();
  v = createResourceVerifier({
    issuer: w.t.issuer, resource: EXPENSES, resourceMetadataUrl: metadataUrl(EXPENSES),
    credentials: { clientId: w.creds['expenses-rs']![0], clientSecret: w.creds['expenses-rs']![1] },
  });
  const ex = express();
  ex.use(express.json());
  const bearer = requireBearerAuth({ verifier: mcpTokenVerifier(v), expectedResource: new URL(EXPENSES), resourceMetadataUrl: metadataUrl(EXPENSES) });
  ex.post('/mcp', bearer, async (req, res) => {
    // Stateless: one server and transport per request.
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { void transport.close(); void server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app = await serve(ex);
});
afterAll(async () => {
  await app?.close();
  await w?.t.stop();
});

describe('mcpTokenVerifier', () => {
  it('answers the SDK\'s AuthInfo for a good token, resource = the audience as a URL', async () => {
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: details('approve', { type: 'Expense', id: 'exp_1', amount: 50 }) });
    const info = await mcpTokenVerifier(v).verifyAccessToken(token);
    expect(info.resource).toBeInstanceOf(URL);
    expect(info.resource!.href).toBe('https://expenses.example/');
    expect(info).toMatchObject({ token, clientId: 'agent', scopes: ['expenses:approve'], expiresAt: decodeJwt(token).exp });
    expect(info.extra).toMatchObject({
      sub: 'alice', act: { sub: 'agent' }, jti: decodeJwt(token).jti, token_type: 'Bearer',
      authorization_details: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_1', amount: 50 } }],
    });
    expect(info.extra!.task).toMatch(/^tsk_/);
    expect(accessFrom(info).sub).toBe('alice');
  });

  it('throws InvalidTokenError for a bad token, another audience\'s token and a DPoP-bound one', async () => {
    const bound = await boundToken(w, await dpopKey());
    for (const token of ['garbage', await exchanged(w, { resource: HR, scope: 'hr:read' }), bound]) {
      const err = await mcpTokenVerifier(v).verifyAccessToken(token).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidTokenError);
      expect((err as Error).message).not.toMatch(/["\r\n]/);
    }
    const err = await mcpTokenVerifier(v).verifyAccessToken(bound).catch((e: unknown) => e) as Error;
    expect(err.message).toContain('DPoP-bound');
  });

  it('reports a valid token that fails its requirement to the ledger as denied, as the middlewares do', async () => {
    const token = await exchanged(w, { scope: 'expenses:read' });
    const err = await mcpTokenVerifier(v, { requirement: { scope: 'expenses:submit' } }).verifyAccessToken(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientScopeError);
    await v.flushReports();
    const ledger = await w.t.admin('GET', `/admin/api/ledger?kind=resource.event&jti=${decodeJwt(token).jti}`);
    const items = ((await ledger.json()) as { items: Array<{ payload: Record<string, unknown> }> }).items;
    expect(items.map((e) => e.payload)).toMatchObject([{ outcome: 'denied', action: 'access', summary: { error: 'insufficient_scope' } }]);
    // A token that is not valid at all is not reported.
    await expect(mcpTokenVerifier(v, { requirement: { scope: 'expenses:submit' } }).verifyAccessToken('garbage')).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('refuses, when built, a requirement its verifier can never meet', () => {
    const offline = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false });
    expect(() => mcpTokenVerifier(offline, { requirement: { sensitive: true } })).toThrow(/introspection/);
    expect(() => mcpTokenVerifier(v, { requirement: { sensitive: true } })).not.toThrow();
  });

  it('throws ServerError when introspection cannot answer, never returning AuthInfo (the SDK answers 500: it has no 503)', async () => {
    const unavailable = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, credentials: { clientId: 'expenses-rs', clientSecret: 'wrong' }, introspection: { cacheSeconds: 0 } });
    const err = await mcpTokenVerifier(unavailable).verifyAccessToken(await exchanged(w)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
  });
});

describe('behind the SDK\'s requireBearerAuth and StreamableHTTPServerTransport', () => {
  async function connect(token: string): Promise<Client> {
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${app.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return client;
  }

  it('hands the tool handler the verified token as extra.authInfo; checkCall and report work there', async () => {
    const token = await exchanged(w, { scope: 'expenses:approve', authorization_details: details('approve', { type: 'Expense', id: 'exp_1', amount: 50 }) });
    const client = await connect(token);
    try {
      const ok = await client.callTool({ name: 'approve_expense', arguments: { id: 'exp_1' } });
      expect(ok.isError).toBeFalsy();
      expect((ok.content as Array<{ text: string }>)[0]!.text).toMatch(/^approved exp_1 for alice \(ledger \d+\)$/);
      const refused = await client.callTool({ name: 'approve_expense', arguments: { id: 'exp_2' } });
      expect(refused.isError).toBe(true);
      expect((refused.content as Array<{ text: string }>)[0]!.text).toContain('approve on Expense exp_2');
    } finally {
      await client.close();
    }
    const ledger = await w.t.admin('GET', `/admin/api/ledger?kind=resource.event&jti=${decodeJwt(token).jti}`);
    const outcomes = ((await ledger.json()) as { items: Array<{ payload: { outcome: string; object: { id: string } } }> }).items.map((e) => [e.payload.outcome, e.payload.object.id]);
    expect(outcomes.sort()).toEqual([['denied', 'exp_2'], ['success', 'exp_1']]);
  });

  it('is refused with 401 and the SDK\'s challenge for bad and DPoP-bound tokens', async () => {
    for (const token of ['garbage', await boundToken(w, await dpopKey())]) {
      const res = await fetch(`${app.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl(EXPENSES)}"`);
    }
  });
});
