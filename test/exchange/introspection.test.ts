import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenRequest } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';
import { lastEntry } from '../helpers/ledger.ts';

let w: World;
beforeAll(async () => { w = await startWorld(); });
afterAll(async () => { await w?.t.stop(); });

function post(path: string, form: Record<string, string>, creds?: [string, string]): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (creds) headers.authorization = `Basic ${Buffer.from(`${creds[0]}:${creds[1]}`).toString('base64')}`;
  return fetch(`${w.t.url}${path}`, { method: 'POST', headers, body: new URLSearchParams(form) });
}

async function issued(extra: Record<string, string> = {}): Promise<string> {
  const res = await w.exchange('agent', exchangeParams(await w.userToken(), extra));
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('introspection (RFC 7662) of exchanged tokens', () => {
  it('tells the token\'s own resource server everything it needs', async () => {
    const d = details('submit', { type: 'Expense', id: 'exp_9', amount: 20 });
    const token = await issued({ scope: 'expenses:submit', authorization_details: d });
    const res = await post('/token/introspection', { token }, w.creds['expenses-rs']);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({
      active: true, iss: w.t.issuer, sub: 'alice', aud: EXPENSES, client_id: 'agent', scope: 'expenses:submit', token_type: 'Bearer',
      act: { sub: 'agent' }, authorization_details: JSON.parse(d),
    });
    expect(body.task).toMatch(/^tsk_/);
    expect(typeof body.exp).toBe('number');
  });

  it('answers {active:false} and nothing else to another resource server or a client that is not one', async () => {
    const token = await issued();
    for (const caller of ['hr-rs', 'agent']) {
      const res = await post('/token/introspection', { token }, w.creds[caller]);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ active: false });
    }
  });

  it('answers 401 invalid_client to missing or bad client authentication', async () => {
    const token = await issued();
    const none = await post('/token/introspection', { token });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_client' });
    const bad = await post('/token/introspection', { token }, ['expenses-rs', 'nope']);
    expect(bad.status).toBe(401);
  });

  it('answers {active:false} for garbage, forged and client_credentials tokens of other audiences', async () => {
    for (const token of ['not-a-token', 'a.b.c', (await issued()).slice(0, -4) + 'AAAA']) {
      const res = await post('/token/introspection', { token }, w.creds['expenses-rs']);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ active: false });
    }
    const missing = await post('/token/introspection', {}, w.creds['expenses-rs']);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('covers client_credentials tokens too', async () => {
    const cc = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, w.creds.batch);
    const { access_token } = await cc.json() as { access_token: string };
    const res = await post('/token/introspection', { token: access_token }, w.creds['expenses-rs']);
    expect(await res.json()).toMatchObject({ active: true, client_id: 'batch', scope: 'expenses:read' });
  });
});

describe('revocation (RFC 7009)', () => {
  it('lets the holder revoke; introspection and further exchange then see it', async () => {
    const token = await issued();
    const byOther = await post('/token/revocation', { token }, w.creds['other-agent']);
    expect(byOther.status).toBe(200);
    expect(await (await post('/token/introspection', { token }, w.creds['expenses-rs'])).json()).toMatchObject({ active: true });

    const res = await post('/token/revocation', { token, token_type_hint: 'access_token' }, w.creds.agent);
    expect(res.status).toBe(200);
    expect(await (await post('/token/introspection', { token }, w.creds['expenses-rs'])).json()).toEqual({ active: false });
    const entry = await lastEntry(w.t.server.db, 'token.revoked');
    expect(entry.actor).toBe('agent');
  });

  it('refuses to exchange a revoked delegation token', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: [] as unknown as string, audience: 'sub-agent' }));
    const { access_token: delegation } = await res.json() as { access_token: string };
    expect((await post('/token/revocation', { token: delegation }, w.creds.agent)).status).toBe(200);
    const after = await w.exchange('sub-agent', { subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' });
    expect(after.status).toBe(400);
    expect(await after.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('revoked') });
  });
});

describe('a real OAuth client', () => {
  it('performs the exchange with openid-client', async () => {
    const config = await oidc.discovery(new URL(w.t.issuer), 'agent', {}, oidc.ClientSecretBasic(w.creds.agent![1]), { execute: [oidc.allowInsecureRequests] });
    const md = config.serverMetadata();
    expect(md.grant_types_supported).toContain(TOKEN_EXCHANGE);
    expect(md.introspection_endpoint).toBe(`${w.t.issuer}/token/introspection`);
    const tokens = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: await w.userToken(),
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: EXPENSES,
      scope: 'expenses:read',
      intent: 'Summarise expenses with openid-client',
    });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('expenses:read');
    expect(tokens.issued_token_type).toBe(ACCESS_TOKEN_TYPE);
    const introspected = await oidc.tokenIntrospection(
      await oidc.discovery(new URL(w.t.issuer), 'expenses-rs', {}, oidc.ClientSecretBasic(w.creds['expenses-rs']![1]), { execute: [oidc.allowInsecureRequests] }),
      tokens.access_token,
    );
    expect(introspected).toMatchObject({ active: true, client_id: 'agent', act: { sub: 'agent' } });
  });
});
