import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holder, proof, type Holder } from '../helpers/dpop.ts';
import { basicAuth } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, HR, startWorld, type World } from '../helpers/world.ts';

let w: World;
let reviewerToken: string;
let aliceAdminToken: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  const created = await w.t.admin('POST', '/admin/api/clients', { client_id: 'summarizer', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'expenses:read hr:read' });
  w.creds.summarizer = ['summarizer', ((await created.json()) as { client_secret: string }).client_secret];
  reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
  aliceAdminToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'alice', user: { issuer: 'https://idp.test', sub: 'alice' } })).json()) as { token: string }).token;
});
afterAll(async () => { await w?.t.stop(); });

function introspect(jwt: string): Promise<boolean> {
  return fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds['expenses-rs']!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token: jwt }),
  }).then(async (r) => ((await r.json()) as { active: boolean }).active);
}

describe('human review (seed scenario 3)', () => {
  const big = details('approve', { type: 'Expense', id: 'exp_big', amount: 5000 });
  const ask = async (extra: Record<string, string> = {}) => w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: big, intent: 'Approve the big one', ...extra }));

  it('goes pending → approved → token, once; polling too fast is slow_down; the reviewer is not the requester', async () => {
    const first = await ask();
    expect(first.status).toBe(400);
    const pending = await first.json() as { error: string; review_id: string; interval: number };
    expect(pending).toMatchObject({ error: 'authorization_pending', interval: 5 });
    expect(pending.review_id).toMatch(/^rev_/);

    const tooFast = await ask({ review_id: pending.review_id });
    expect(await tooFast.json()).toMatchObject({ error: 'slow_down', review_id: pending.review_id });
    await new Promise((r) => setTimeout(r, 5100));
    expect(await (await ask({ review_id: pending.review_id })).json()).toMatchObject({ error: 'authorization_pending' });

    // The list shows the full context; alice cannot review her own request; rita can.
    const list = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Array<{ id: string; context: Record<string, unknown> }> };
    const item = list.items.find((i) => i.id === pending.review_id)!;
    expect(item.context).toMatchObject({ intent: 'Approve the big one', reasons: ['approval_required'] });
    const self = await w.t.admin('POST', `/admin/api/reviews/${pending.review_id}/approve`, {}, aliceAdminToken);
    expect(self.status).toBe(403);
    const approved = await w.t.admin('POST', `/admin/api/reviews/${pending.review_id}/approve`, { comment: 'ok, checked the receipt' }, reviewerToken);
    expect(approved.status).toBe(200);

    // A different request cannot ride on the approval.
    const other = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:approve', review_id: pending.review_id, intent: 'x',
      authorization_details: details('approve', { type: 'Expense', id: 'exp_other', amount: 5000 }) }));
    expect(await other.json()).toMatchObject({ error: 'invalid_request' });

    const granted = await ask({ review_id: pending.review_id });
    expect(granted.status).toBe(200);
    const { access_token } = await granted.json() as { access_token: string };
    expect(decodeJwt(access_token)).toMatchObject({ scope: 'expenses:approve', sub: 'alice' });
    const again = await ask({ review_id: pending.review_id });
    expect(await again.json()).toMatchObject({ error: 'invalid_request', error_description: 'this approval has already been used' });

    const entries = await (await w.t.admin('GET', '/admin/api/ledger?kind=review.approved')).json() as { items: Array<{ actor: string; payload: Record<string, unknown> }> };
    expect(entries.items[0]).toMatchObject({ payload: { review_id: pending.review_id, comment: 'ok, checked the receipt' } });
  }, 20_000);

  it('redeems an approval of a DPoP-bound request only with the same key', async () => {
    const h = await holder();
    const withKey = async (key: Holder | undefined, extra: Record<string, string> = {}) => {
      const params = exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: big, intent: 'Approve the big one', ...extra }) as Record<string, string>;
      return fetch(`${w.t.url}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(...w.creds.agent!), 'content-type': 'application/x-www-form-urlencoded', ...(key ? { dpop: await proof(key, `${w.t.url}/token`) } : {}) },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', ...params }),
      });
    };
    const pending = await (await withKey(h)).json() as { error: string; review_id: string };
    expect(pending.error).toBe('authorization_pending');
    expect((await w.t.admin('POST', `/admin/api/reviews/${pending.review_id}/approve`, {}, reviewerToken)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 5100));
    // Neither a Bearer request nor another key can take the approval a person gave to this key's request.
    for (const other of [undefined, await holder()]) {
      expect(await (await withKey(other, { review_id: pending.review_id })).json()).toMatchObject({ error: 'invalid_request' });
    }
    const granted = await withKey(h, { review_id: pending.review_id });
    expect(granted.status).toBe(200);
    expect(decodeJwt(((await granted.json()) as { access_token: string }).access_token).cnf).toEqual({ jkt: h.jkt });
  }, 20_000);

  it('answers access_denied after a denial and expired_token after the review lapsed', async () => {
    const denied = await (await ask()).json() as { review_id: string };
    expect((await w.t.admin('POST', `/admin/api/reviews/${denied.review_id}/deny`, { comment: 'no' }, reviewerToken)).status).toBe(200);
    expect(await (await ask({ review_id: denied.review_id })).json()).toMatchObject({ error: 'access_denied', reasons: ['review_denied'] });
    expect((await w.t.admin('POST', `/admin/api/reviews/${denied.review_id}/approve`, {}, reviewerToken)).status).toBe(409);

    const lapsed = await (await ask()).json() as { review_id: string };
    await w.t.server.db('reviews').where({ id: lapsed.review_id }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await (await ask({ review_id: lapsed.review_id })).json()).toMatchObject({ error: 'expired_token' });
    expect((await w.t.admin('POST', '/admin/api/reviews/rev_nope/approve', {}, reviewerToken)).status).toBe(404);
  });
});

describe('behaviour check: a summarising task that reaches for restricted data is suspended (seed scenario 2)', () => {
  it('revokes the task\'s tokens, refuses its new exchanges, and a reviewer\'s approval lifts the suspension', async () => {
    // The first exchange declares the task's purpose; no later hop can change it (details never widen).
    const params = exchangeParams(await w.userToken({ sub: 'ivy' }), {
      audience: 'summarizer', scope: 'expenses:read hr:read', intent: 'Summarise the quarter',
      authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', purpose: 'summarize' }]),
    });
    delete params.resource;
    const delegation = await w.exchange('agent', params);
    expect(delegation.status).toBe(200);
    const { access_token: parent } = await delegation.json() as { access_token: string };
    const task = decodeJwt(parent).task as string;
    const hop = (scope: string, resource: string, extra: Record<string, string> = {}) => w.exchange('summarizer', {
      subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, resource, scope, intent: 'Summarise', ...extra,
    });
    const reading = await hop('expenses:read', EXPENSES);
    expect(reading.status).toBe(200);
    const { access_token: earlier } = await reading.json() as { access_token: string };
    expect(await introspect(earlier)).toBe(true);

    // Drifting: the summariser reaches for restricted HR data, without saying why.
    const drift = await hop('hr:read', HR);
    expect(drift.status).toBe(400);
    const refused = await drift.json() as { error: string; reasons: string[]; review_id: string };
    expect(refused).toMatchObject({ error: 'access_denied', reasons: ['restricted_data_for_summary', 'task_suspended'] });
    expect(await introspect(earlier)).toBe(false);
    const view = await (await w.t.admin('GET', `/admin/api/tasks/${task}`)).json() as { status: string; tokens: Array<{ status: string }> };
    expect(view.status).toBe('suspended');
    expect(view.tokens.every((t) => t.status === 'revoked')).toBe(true);
    const pending = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Array<{ id: string; kind: string; task: string }> };
    expect(pending.items.find((r) => r.id === refused.review_id)).toMatchObject({ kind: 'task_suspension', task });

    expect((await w.t.admin('POST', `/admin/api/reviews/${refused.review_id}/approve`, { comment: 'false alarm' }, reviewerToken)).status).toBe(200);
    expect(((await (await w.t.admin('GET', `/admin/api/tasks/${task}`)).json()) as { status: string }).status).toBe('active');
    // Tokens already revoked stay revoked.
    expect(await introspect(earlier)).toBe(false);
  });
});
