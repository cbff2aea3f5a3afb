import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_POLICY } from '../../src/config/defaults.ts';
import { tokenRequest } from '../helpers/server.ts';
import { details, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';

// Error messages name what was wrong, and endpoints whose body is optional take none.
let w: World;
let reviewer: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review.yaml') } });
  reviewer = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
});
afterAll(async () => { await w?.t.stop(); });

async function refused(res: Response, status: number, error: string): Promise<string> {
  const body = await res.json() as { error: string; error_description: string };
  expect({ status: res.status, error: body.error }).toEqual({ status, error });
  return body.error_description;
}

describe('error messages name what was wrong', () => {
  it('an unknown resource is named (exchange and client_credentials)', async () => {
    const ex = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: 'https://nowhere.example/api' }));
    expect(await refused(ex, 400, 'invalid_target')).toContain('https://nowhere.example/api is not a registered resource');
    const cc = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: 'https://nowhere.example/api', scope: 'expenses:read' }, w.creds.batch);
    expect(await refused(cc, 400, 'invalid_target')).toContain('https://nowhere.example/api');
  });

  it('invalid_scope says which limit each scope hit: the subject token, the client, or the resource', async () => {
    const client = await w.exchange('other-agent', exchangeParams(await w.userToken(), { scope: 'expenses:submit' }));
    expect(await refused(client, 400, 'invalid_scope')).toBe('scope beyond what may be granted (expenses:submit: client other-agent may not be granted it)');
    const subject = await w.exchange('agent', exchangeParams(await w.userToken({ scope: 'expenses:read' }), { scope: 'expenses:submit' }));
    expect(await refused(subject, 400, 'invalid_scope')).toBe('scope beyond what may be granted (expenses:submit: the subject token does not carry it)');
    const resource = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:read hr:read' }));
    expect(await refused(resource, 400, 'invalid_scope')).toBe(`scope beyond what may be granted (hr:read: ${EXPENSES} has no such scope)`);
    const all = await w.exchange('other-agent', exchangeParams(await w.userToken({ scope: 'expenses:read' }), { scope: 'payroll:write' }));
    expect(await refused(all, 400, 'invalid_scope')).toBe(`scope beyond what may be granted (payroll:write: the subject token does not carry it, client other-agent may not be granted it, ${EXPENSES} has no such scope)`);

    const cc = await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read expenses:submit payroll:write' }, w.creds.batch);
    expect(await refused(cc, 400, 'invalid_scope')).toBe(`scope beyond what may be granted (expenses:submit: client batch may not be granted it; payroll:write: ${EXPENSES} has no such scope)`);
  });

  it('an untrusted issuer is named, cut short when long', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ iss: 'https://evil.example' })));
    expect(await refused(res, 400, 'invalid_request')).toBe('subject_token issuer is not trusted: https://evil.example');
    const long = `https://evil.example/${'a'.repeat(500)}`;
    const cut = await refused(await w.exchange('agent', exchangeParams(await w.userToken({ iss: long }))), 400, 'invalid_request');
    expect(cut).toContain(`${long.slice(0, 200)}...`);
    expect(cut.length).toBeLessThan(300);
  });
});

describe('endpoints whose body is optional accept none', () => {
  const raw = (method: string, pathname: string, body: string | undefined, headers: Record<string, string> = {}, token = w.t.adminToken) =>
    fetch(`${w.t.url}${pathname}`, { method, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body === undefined ? {} : { body }) });

  it('POST /admin/api/keys/rotate with no body (no Content-Type) rotates with the default overlap', async () => {
    const res = await raw('POST', '/admin/api/keys/rotate', undefined);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ kid: expect.any(String) });
    const emptyJson = await raw('POST', '/admin/api/keys/rotate', '', { 'content-type': 'application/json' });
    expect(emptyJson.status).toBe(201);
  });

  it('a body that is there is still read strictly: wrong type 415, not JSON 400, unknown member 400', async () => {
    expect((await raw('POST', '/admin/api/keys/rotate', 'overlap_seconds=5', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await raw('POST', '/admin/api/keys/rotate', '{', { 'content-type': 'application/json' })).status).toBe(400);
    const unknown = await raw('POST', '/admin/api/keys/rotate', '{"overlap":5}', { 'content-type': 'application/json' });
    expect(unknown.status).toBe(400);
    expect((await raw('POST', '/admin/api/keys/rotate', 'x'.repeat(70_000), { 'content-type': 'application/json' })).status).toBe(413);
  });

  it('POST /admin/api/reviews/{id}/approve with no body approves', async () => {
    const big = details('approve', { type: 'Expense', id: 'exp_empty_body', amount: 5000 });
    const pending = await (await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: big, intent: 'Approve the big one' }))).json() as { error: string; review_id: string };
    expect(pending.error).toBe('authorization_pending');
    const res = await raw('POST', `/admin/api/reviews/${pending.review_id}/approve`, undefined, {}, reviewer);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: pending.review_id, status: 'approved' });
    expect((await raw('POST', '/admin/api/reviews/rev_nope/deny', undefined, {}, reviewer)).status).toBe(404);
  });
});

describe('the deployment environment reaches policy', () => {
  it('with environment staging the shipped no-writes-outside-production rule refuses write scopes, and reads pass', async () => {
    const staging = await startWorld({ policy: { file: SHIPPED_POLICY }, environment: 'staging' });
    try {
      const write = await staging.exchange('agent', exchangeParams(await staging.userToken(), { scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense' }) }));
      expect(write.status).toBe(400);
      expect(await write.json()).toMatchObject({ error: 'access_denied', reasons: expect.arrayContaining(['non_production_environment']) });
      const read = await staging.exchange('agent', exchangeParams(await staging.userToken(), { scope: 'expenses:read' }));
      expect(read.status).toBe(200);
      // A simulation here sees the same environment, unless it names another.
      const ask = { client_id: 'agent', user: { issuer: 'https://idp.test', sub: 'alice', claims: {} }, resource: EXPENSES, scope: 'expenses:submit', authorization_details: [{ type: 'tool_call', action: 'submit', object: { type: 'Expense' } }] };
      const sim = await (await staging.t.admin('POST', '/admin/api/policies/simulate', ask)).json() as { decision: { outcome: string; reasons: string[] } };
      expect(sim.decision).toMatchObject({ outcome: 'deny', reasons: expect.arrayContaining(['non_production_environment']) });
      const prod = await (await staging.t.admin('POST', '/admin/api/policies/simulate', { ...ask, environment: 'production' })).json() as { decision: { outcome: string } };
      expect(prod.decision.outcome).toBe('allow');
    } finally {
      await staging.t.stop();
    }
  });

  it('without an environment the same write is granted', async () => {
    const plain = await startWorld({ policy: { file: SHIPPED_POLICY } });
    try {
      const write = await plain.exchange('agent', exchangeParams(await plain.userToken(), { scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense' }) }));
      expect(write.status).toBe(200);
    } finally {
      await plain.t.stop();
    }
  });
});
