import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCESS_TOKEN_TYPE, AgentInputError, createAgent, ExchangeDenied, ExchangeFailed, IntentgateError, UnexpectedResponse, type Agent,
} from '@intentgate/agent';
import { lastEntry } from '../helpers/ledger.ts';
import { EXPENSES, startWorld, type World } from '../helpers/world.ts';
import { agentFor, ledgerCount, localServer } from './helpers.ts';

let w: World;
beforeAll(async () => { w = await startWorld(); });
afterAll(async () => { await w?.t.stop(); });

const approveSmall = [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_42', amount: 120 } }];

/** The three ways to configure an agent, each built the way its library's users would. */
const styles: Array<[string, () => Promise<Agent>]> = [
  ['oauth4webapi AuthorizationServer + Client + ClientAuth', async () => {
    const issuer = new URL(w.t.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const [clientId, secret] = w.creds.agent!;
    return createAgent({ as, client: { client_id: clientId }, clientAuth: oauth.ClientSecretBasic(secret), http: { allowInsecure: true } });
  }],
  ['{ issuer, clientId, clientSecret }', () => agentFor(w)],
  ['openid-client Configuration', async () => {
    const [clientId, secret] = w.creds.agent!;
    const configuration = await oidc.discovery(new URL(w.t.issuer), clientId, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    return createAgent({ configuration });
  }],
];

describe.each(styles)('exchange, configured with %s', (_style, make) => {
  let agent: Agent;
  beforeAll(async () => { agent = await make(); });

  it('trades the user token and an intent for a down-scoped token with act and authorization_details', async () => {
    const before = Date.now();
    const token = await agent.exchange({
      subjectToken: await w.userToken(), intent: 'Approve the taxi expense from the Berlin trip',
      resource: EXPENSES, scope: ['expenses:approve'], authorizationDetails: approveSmall,
    });
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresIn: 120, scope: ['expenses:approve'], issuedTokenType: ACCESS_TOKEN_TYPE, authorizationDetails: approveSmall, resource: EXPENSES });
    expect(token).not.toHaveProperty('audience');
    expect(token.expiresAt).toBeGreaterThanOrEqual(before + 120_000);
    expect(token.expiresAt).toBeLessThanOrEqual(Date.now() + 120_000);
    expect(token).not.toHaveProperty('dpopKey');
    const { payload } = await jwtVerify(token.accessToken, createRemoteJWKSet(new URL(`${w.t.url}/jwks`)), { issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['ES256'] });
    expect(payload).toMatchObject({ sub: 'alice', aud: EXPENSES, client_id: 'agent', scope: 'expenses:approve', act: { sub: 'agent' }, authorization_details: approveSmall });
    expect(payload.task).toMatch(/^tsk_/);
  });

  it('surfaces a policy denial with its reasons', async () => {
    const denied = await agent.exchange({
      subjectToken: await w.userToken(), intent: 'Approve the team offsite', resource: EXPENSES, scope: 'expenses:approve',
      authorizationDetails: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_9', amount: 5000 } }],
    }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ExchangeDenied);
    expect(denied).toBeInstanceOf(IntentgateError);
    expect(denied).toMatchObject({ error: 'access_denied', status: 400, reasons: ['approval_limit_exceeded'], reviewId: undefined });
    expect((denied as ExchangeDenied).body).toMatchObject({ reasons: ['approval_limit_exceeded'] });
  });

  it('turns every other refusal into ExchangeFailed with the code, description and status', async () => {
    const beyond = await agent.exchange({ subjectToken: await w.userToken({ scope: 'expenses:read' }), intent: 'Submit an expense', resource: EXPENSES, scope: 'expenses:submit' }).catch((e: unknown) => e);
    expect(beyond).toBeInstanceOf(ExchangeFailed);
    expect(beyond).not.toBeInstanceOf(ExchangeDenied);
    expect(beyond).toMatchObject({ error: 'invalid_scope', status: 400, description: expect.stringContaining('expenses:submit') });
    const unknown = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Read the wiki', resource: 'https://wiki.example', scope: 'wiki:read' }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ error: 'invalid_target', status: 400 });
    const expired = await agent.exchange({ subjectToken: await w.userToken({ exp: Math.floor(Date.now() / 1000) - 3600 }), intent: 'Read', resource: EXPENSES }).catch((e: unknown) => e);
    expect(expired).toMatchObject({ error: 'invalid_request', status: 400 });
  });
});

describe('delegation through the agent API', () => {
  it('hands a token to a sub-agent by audience, which exchanges it for its own; act nests', async () => {
    const agent = await agentFor(w);
    const sub = await agentFor(w, 'sub-agent');
    const delegation = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Hand the expense reading to the sub-agent', audience: 'sub-agent', scope: 'expenses:read' });
    // The token remembers its target: another agent, so it is never presented to a resource.
    expect(delegation).toMatchObject({ audience: 'sub-agent' });
    expect(delegation).not.toHaveProperty('resource');
    const own = await sub.exchange({ subjectToken: delegation.accessToken, intent: 'Read the expense reports', resource: EXPENSES, scope: 'expenses:read' });
    const { payload } = await jwtVerify(own.accessToken, createRemoteJWKSet(new URL(`${w.t.url}/jwks`)), { issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['ES256'] });
    expect(payload).toMatchObject({ sub: 'alice', client_id: 'sub-agent', act: { sub: 'sub-agent', act: { sub: 'agent' } } });
  });
});

describe('client authentication failures', () => {
  it('is ExchangeFailed invalid_client with status 401', async () => {
    const agent = await createAgent({ issuer: w.t.issuer, clientId: 'agent', clientSecret: 'not-the-secret', http: { allowInsecure: true } });
    const err = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Read', resource: EXPENSES }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExchangeFailed);
    expect(err).toMatchObject({ error: 'invalid_client', status: 401 });
  });
});

describe('input is checked before any request', () => {
  // A token endpoint that records every request: none may arrive.
  let endpoint: Awaited<ReturnType<typeof localServer>>;
  let agent: Agent;
  beforeAll(async () => {
    endpoint = await localServer(async () => ({ status: 500, body: '{}' }));
    agent = await createAgent({
      as: { issuer: endpoint.url, token_endpoint: `${endpoint.url}/token` }, client: { client_id: 'agent' },
      clientAuth: oauth.ClientSecretBasic('secret'), http: { allowInsecure: true },
    });
  });
  afterAll(async () => { await endpoint?.close(); });

  const base = { subjectToken: 'eyJ.user.token', intent: 'Read the expense reports', resource: EXPENSES };
  it.each([
    ['an empty intent', { ...base, intent: '' }, 'intent'],
    ['a blank intent', { ...base, intent: '  \n ' }, 'intent'],
    ['a missing intent', { ...base, intent: undefined as unknown as string }, 'intent'],
    ['neither resource nor audience', { ...base, resource: undefined }, 'resource'],
    ['two different targets', { ...base, audience: 'sub-agent' }, 'audience'],
    ['a relative resource', { ...base, resource: '/expenses' }, 'resource'],
    ['a resource with a fragment', { ...base, resource: 'https://expenses.example/#x' }, 'resource'],
    ['an empty subject token', { ...base, subjectToken: '' }, 'subjectToken'],
    ['a malformed scope', { ...base, scope: ['expenses read'] }, 'scope'],
    ['an empty scope list', { ...base, scope: [] }, 'scope'],
    ['details without a type', { ...base, authorizationDetails: [{ action: 'read' } as never] }, 'authorizationDetails[0]'],
    ['a dpop option that is not a key pair', { ...base, dpop: 'yes' as never }, 'dpop'],
  ])('refuses %s', async (_what, request, field) => {
    const err = await agent.exchange(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentInputError);
    expect(err).toMatchObject({ field, message: expect.stringContaining(field) });
    expect(endpoint.seen).toHaveLength(0);
  });

  it('refuses an http:// issuer unless http.allowInsecure is set, and a configuration of two styles', async () => {
    await expect(createAgent({ issuer: w.t.issuer, clientId: 'agent', clientSecret: 's' })).rejects.toThrow(/not https.*allowInsecure/);
    await expect(createAgent({ issuer: w.t.issuer, clientId: 'agent', clientSecret: 's', configuration: {} } as never)).rejects.toBeInstanceOf(AgentInputError);
    await expect(createAgent({ as: { issuer: 'x', token_endpoint: 'http://127.0.0.1:1/token' }, client: { client_id: 'a' }, clientAuth: oauth.None() })).rejects.toMatchObject({ field: 'as.token_endpoint' });
    expect(endpoint.seen).toHaveLength(0);
  });

  it('sends the defaults it documents: the access_token subject type and the actor token type', async () => {
    await agent.exchange({ ...base, actorToken: 'eyJ.actor.token', scope: 'expenses:read expenses:read' }).catch(() => undefined);
    const form = new URLSearchParams(endpoint.seen.at(-1)!.body);
    expect(Object.fromEntries(form)).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: base.subjectToken, subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: 'eyJ.actor.token', actor_token_type: ACCESS_TOKEN_TYPE, intent: base.intent, resource: EXPENSES, scope: 'expenses:read',
    });
    expect(form.has('audience')).toBe(false);
    endpoint.seen.length = 0;
  });
});

describe('responses outside the contract', () => {
  it('refuses a token_type of N_A, a missing issued_token_type and a missing expires_in as UnexpectedResponse', async () => {
    const bodies = [
      { access_token: 'x', token_type: 'N_A', expires_in: 60, issued_token_type: ACCESS_TOKEN_TYPE },
      { access_token: 'x', token_type: 'Bearer', expires_in: 60 },
      { access_token: 'x', token_type: 'Bearer', issued_token_type: ACCESS_TOKEN_TYPE },
    ];
    const endpoint = await localServer(async () => ({ status: 200, headers: { 'cache-control': 'no-store' }, body: JSON.stringify(bodies.shift()) }));
    try {
      const agent = await createAgent({ as: { issuer: endpoint.url, token_endpoint: `${endpoint.url}/token` }, client: { client_id: 'agent' }, clientAuth: oauth.ClientSecretBasic('s'), http: { allowInsecure: true } });
      const ask = () => agent.exchange({ subjectToken: 't', intent: 'Read', resource: EXPENSES }).catch((e: unknown) => e);
      expect(await ask()).toBeInstanceOf(UnexpectedResponse);
      expect(await ask()).toMatchObject({ name: 'UnexpectedResponse', message: expect.stringContaining('issued_token_type') });
      expect(await ask()).toMatchObject({ name: 'UnexpectedResponse', message: expect.stringContaining('expires_in') });
    } finally {
      await endpoint.close();
    }
  });
});

describe('the ledger sees one entry per exchange', () => {
  it('records the exchange the agent made, with its intent', async () => {
    const agent = await agentFor(w);
    const before = await ledgerCount(w, 'exchange.granted');
    const token = await agent.exchange({ subjectToken: await w.userToken(), intent: 'Summarise the open reports', resource: EXPENSES, scope: 'expenses:read' });
    expect(await ledgerCount(w, 'exchange.granted')).toBe(before + 1);
    const entry = await lastEntry(w.t.server.db, 'exchange.granted');
    expect(entry.payload).toMatchObject({ jti: decodeJwt(token.accessToken).jti, intent: 'Summarise the open reports', granted_scope: ['expenses:read'] });
  });
});
