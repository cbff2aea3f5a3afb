import { decodeJwt } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, type Agent } from '@intentgate/agent';
import { callMcpTool, expenseToolSpecs, type ExpenseTools } from '../../examples/mcp-expenses/agent.ts';
import { HR, startDemoWorld, type DemoWorld } from '../../examples/mcp-expenses/setup.ts';
import { holder, resourceProof } from '../helpers/dpop.ts';

// The MCP SDK's client against the protected example MCP server, with tokens from real exchanges.
let w: DemoWorld;
let agent: Agent;
let aliceToken: string;
beforeAll(async () => {
  w = await startDemoWorld();
  agent = await createAgent({ issuer: w.issuer, clientId: 'assistant', clientSecret: w.creds.assistant!.clientSecret, http: { allowInsecure: true } });
  aliceToken = await w.userToken('alice', { groups: ['managers'] });
  w.mcp.store.add({ id: 'exp_a', owner: 'bob', amount: 40, currency: 'EUR', description: 'Lunch' });
  w.mcp.store.add({ id: 'exp_b', owner: 'bob', amount: 40, currency: 'EUR', description: 'Dinner' });
});
afterAll(async () => { await w?.close(); });

const tools = (dpop = false) => agent.tools<ExpenseTools>({ subjectToken: aliceToken, resource: w.mcp.resource, tools: expenseToolSpecs(), dpop, task: false });

/** A raw MCP initialize request, to see the HTTP answer itself. */
function initialize(headers: Record<string, string>): Promise<Response> {
  return fetch(w.mcp.resource, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
}

describe('the expenses MCP server behind intentgate', () => {
  it('serves RFC 9728 metadata naming intentgate, and challenges a call without a token', async () => {
    const meta = await (await fetch(`${w.mcp.url}/.well-known/oauth-protected-resource/mcp`)).json() as Record<string, unknown>;
    expect(meta).toMatchObject({ resource: w.mcp.resource, authorization_servers: [w.issuer] });
    const res = await initialize({});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${w.mcp.url}/.well-known/oauth-protected-resource/mcp"`);
  });

  it('runs a tool call made with the token exchanged for exactly that call (Bearer, through the SDK\'s requireBearerAuth)', async () => {
    const token = await tools().tokenFor('list_expenses', {}, { intent: 'List expenses' });
    expect(token.tokenType).toBe('Bearer');
    const r = await callMcpTool(agent, token, w.mcp.resource, 'list_expenses', {});
    expect(r.ok).toBe(true);
    expect((JSON.parse(r.text) as Array<{ id: string }>).map((e) => e.id)).toEqual(expect.arrayContaining(['exp_a', 'exp_b']));
  });

  it('runs a tool call with a DPoP-bound token (a fresh proof per request, checked by intentgate/resource)', async () => {
    const token = await tools(true).tokenFor('approve_expense', { id: 'exp_a', amount: 40 }, { intent: 'Approve the lunch' });
    expect(token.tokenType).toBe('DPoP');
    const r = await callMcpTool(agent, token, w.mcp.resource, 'approve_expense', { id: 'exp_a', amount: 40 });
    expect(r.ok, r.text).toBe(true);
    expect(w.mcp.store.get('exp_a')?.status).toBe('approved');
  });

  it('refuses a token for another resource (audience)', async () => {
    const hr = await agent.exchange({ subjectToken: aliceToken, resource: HR, scope: 'hr:read', intent: 'Read an HR record' });
    // The agent SDK will not send a token to a server it was not issued for…
    await expect(callMcpTool(agent, hr, w.mcp.resource, 'list_expenses', {})).rejects.toThrow(/not the origin of the token's resource|resource/);
    // …and a client that does (the MCP SDK's, told to send it) is refused by the server.
    const client = new Client({ name: 't', version: '1' });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(w.mcp.resource), { requestInit: { headers: { authorization: `Bearer ${hr.accessToken}` } } })))
      .rejects.toThrow(/401|invalid_token|Unauthorized/i);
    const res = await initialize({ authorization: `Bearer ${hr.accessToken}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('refuses an expired token', async () => {
    // The exchanged token lives no longer than the subject token: two seconds here.
    const short = await w.userToken('alice', { groups: ['managers'] }, 2);
    const t = await agent.exchange({ subjectToken: short, resource: w.mcp.resource, scope: 'expenses:read', intent: 'List', authorizationDetails: [{ type: 'tool_call', action: 'list', object: { type: 'Expense' } }] });
    const exp = decodeJwt(t.accessToken).exp!;
    // Past its expiry and the verifier's clock tolerance (5 s).
    await new Promise((r) => setTimeout(r, Math.max(0, (exp + 6) * 1000 - Date.now())));
    const res = await initialize({ authorization: `Bearer ${t.accessToken}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/invalid_token/);
  }, 20_000);

  it('refuses a token used for another object than the one it was granted for', async () => {
    const forA = await tools().tokenFor('approve_expense', { id: 'exp_b', amount: 40 }, { intent: 'Approve the dinner' });
    const r = await callMcpTool(agent, forA, w.mcp.resource, 'approve_expense', { id: 'exp_a', amount: 40 });
    expect(r.ok).toBe(false);
    expect(r.text).toMatch(/insufficient_scope/);
    expect(w.mcp.store.get('exp_b')?.status).toBe('submitted');
    // And the refusal is in the ledger, reported by the MCP server.
    const { items } = await (await w.admin('GET', '/admin/api/ledger?kind=resource.event&limit=5')).json() as { items: Array<{ payload: { outcome: string; jti: string } }> };
    expect(items.some((e) => e.payload.outcome === 'denied' && e.payload.jti === decodeJwt(forA.accessToken).jti)).toBe(true);
  });

  it('refuses a replayed DPoP proof', async () => {
    const key = await holder();
    const token = await agent.tools<ExpenseTools>({ subjectToken: aliceToken, resource: w.mcp.resource, tools: expenseToolSpecs(), dpop: { privateKey: key.privateKey, publicKey: key.publicKey }, task: false })
      .tokenFor('list_expenses', {}, { intent: 'List expenses' });
    expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt: key.jkt });
    const proof = await resourceProof(key, 'POST', w.mcp.resource, token.accessToken);
    const headers = { authorization: `DPoP ${token.accessToken}`, dpop: proof };
    expect((await initialize(headers)).status).toBe(200);
    const replay = await initialize(headers);
    expect(replay.status).toBe(401);
    expect(replay.headers.get('www-authenticate')).toMatch(/invalid_dpop_proof/);
  });

  it('refuses a DPoP-bound token presented as a Bearer token', async () => {
    const token = await tools(true).tokenFor('list_expenses', {}, { intent: 'List expenses' });
    const res = await initialize({ authorization: `Bearer ${token.accessToken}` });
    expect(res.status).toBe(401);
  });

  it('answers malformed, oversized and off-schema input with errors, never a stack trace or a tool run', async () => {
    const token = await tools().tokenFor('list_expenses', {}, { intent: 'List expenses' });
    const post = (body: string) => fetch(w.mcp.resource, { method: 'POST', headers: { authorization: `Bearer ${token.accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body });
    const malformed = await post('{"jsonrpc":');
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).not.toMatch(/\n\s+at /);
    const oversized = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(100_000) } }));
    expect(oversized.status).toBe(413);
    expect((await fetch(w.mcp.resource, { method: 'GET', headers: { authorization: `Bearer ${token.accessToken}` } })).status).toBe(405);
    const before = w.mcp.store.list().length;
    const submit = await tools().tokenFor('submit_expense', { amount: 10, currency: 'EUR', description: 'Coffee' }, { intent: 'Submit' });
    const r = await callMcpTool(agent, submit, w.mcp.resource, 'submit_expense', { amount: -5, currency: 'euro', description: '' });
    expect(r.ok).toBe(false);
    expect(w.mcp.store.list().length).toBe(before);
  });
});
