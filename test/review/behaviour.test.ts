import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_TYPE, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/behaviour.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
});
afterAll(async () => { await w?.t.stop(); });

/** A task: agent delegates to sub-agent; returns the delegation token and a hop function. */
async function task(sub: string) {
  const params = exchangeParams(await w.userToken({ sub }), { audience: 'sub-agent', scope: 'expenses:read expenses:submit', intent: 'Delegate' });
  delete params.resource;
  const res = await w.exchange('agent', params);
  expect(res.status).toBe(200);
  const { access_token } = await res.json() as { access_token: string };
  const hop = (scope: string) => w.exchange('sub-agent', { subject_token: access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope, intent: 'Work' });
  return { id: decodeJwt(access_token).task as string, hop };
}

describe('behaviour counters', () => {
  it('downgrades a busy task to read scopes (volume)', async () => {
    const t = await task('kim');
    expect((await t.hop('expenses:read')).status).toBe(200);
    expect((await t.hop('expenses:read')).status).toBe(200); // the third grant in the task, with the delegation
    const view = await (await w.t.admin('GET', `/admin/api/tasks/${t.id}`)).json() as { status: string };
    expect(view.status).toBe('downgraded');
    const write = await t.hop('expenses:submit');
    expect(write.status).toBe(400);
    expect(await write.json()).toMatchObject({ error: 'access_denied', reasons: ['task_downgraded'] });
    expect((await t.hop('expenses:read')).status).toBe(200);
    const entry = await (await w.t.admin('GET', `/admin/api/ledger?kind=task.downgraded&task=${t.id}`)).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(entry.items[0]!.payload).toMatchObject({ rule: 'busy-task', evidence: { grants: 3, within_seconds: 600 } });
  });

  it('suspends a task that keeps being refused (repeated denials), pending review', async () => {
    const t = await task('lee');
    const first = await t.hop('expenses:submit'); // no detail: no rule allows it
    expect(await first.json()).toMatchObject({ reasons: ['no_matching_rule'] });
    await t.hop('expenses:submit');
    const view = await (await w.t.admin('GET', `/admin/api/tasks/${t.id}`)).json() as { status: string; suspension: { review_id: string }; tokens: Array<{ status: string }> };
    expect(view.status).toBe('suspended');
    expect(view.tokens.every((x) => x.status === 'revoked')).toBe(true);
    // The task's tokens are revoked, so it cannot go on at all until a person has looked.
    const after = await t.hop('expenses:read');
    expect(await after.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('revoked') });
    const reviews = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Array<{ id: string; kind: string; task: string; context: { reasons: string[] } }> };
    expect(reviews.items.find((r) => r.id === view.suspension.review_id)).toMatchObject({ kind: 'task_suspension', task: t.id, context: { reasons: ['repeated-denials'] } });
  });

  it('refuses a behaviour section that names neither or both counters', async () => {
    const base = 'version: 1\nrules:\n  - { id: a, effect: allow, scopes: [x] }\nbehaviour:\n';
    const none = await w.t.admin('POST', '/admin/api/policies', { document: `${base}  - { id: b, outcome: suspend }\n` });
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ field: 'document.behaviour.0' });
    const both = await w.t.admin('POST', '/admin/api/policies', { document: `${base}  - { id: b, outcome: downgrade, volume: { count: 1, within: 5 }, repeated_denials: { count: 1, within: 5 } }\n` });
    expect(both.status).toBe(400);
  });
});
