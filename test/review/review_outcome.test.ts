import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';


// Each test makes many exchanges; PGlite on a loaded 2-core machine is slow (no timing is asserted).
vi.setConfig({ testTimeout: 180_000 });
let w: World;
let reviewerToken: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review_outcome.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
}, 180_000);
afterAll(async () => { await w?.t.stop(); });

/** A task: agent delegates to sub-agent; hops draw tokens in that task. */
async function task(sub: string) {
  const submitDetail = details('submit', { type: 'Expense', id: `exp_${sub}`, amount: 10 });
  const params = exchangeParams(await w.userToken({ sub }), { audience: 'sub-agent', scope: 'expenses:read expenses:submit', intent: 'Delegate', authorization_details: submitDetail });
  delete params.resource;
  const res = await w.exchange('agent', params);
  expect(res.status).toBe(200);
  const { access_token } = await res.json() as { access_token: string };
  const hop = (scope: string) => w.exchange('sub-agent', {
    subject_token: access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope, intent: 'Work', authorization_details: submitDetail,
  });
  return { id: decodeJwt(access_token).task as string, hop };
}

interface Review { id: string; kind: string; task: string; context: { reasons: string[]; evidence: Record<string, unknown> } }
const view = async (id: string) => (await (await w.t.admin('GET', `/admin/api/tasks/${id}`)).json()) as { status: string; suspension?: { review_id: string }; tokens: Array<{ status: string }> };
async function reviewOf(taskId: string): Promise<Review> {
  const list = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Review[] };
  return list.items.find((r) => r.task === taskId)!;
}

describe('the review outcome: downgraded at once, a person decides', () => {
  it('downgrades the task to read scopes as soon as the counter trips, and approval restores it', async () => {
    const t = await task('kim');
    expect((await t.hop('expenses:read')).status).toBe(200);
    expect((await t.hop('expenses:read')).status).toBe(200); // the third grant in the task, with the delegation
    expect((await view(t.id)).status).toBe('downgraded');
    const review = await reviewOf(t.id);
    expect(review).toMatchObject({ kind: 'task_review', context: { reasons: ['busy-task'] } });
    expect(review.context.evidence).toMatchObject({ grants: 3, within_seconds: 600, per: 'task' });

    const write = await t.hop('expenses:submit');
    expect(write.status).toBe(400);
    expect(await write.json()).toMatchObject({ error: 'access_denied', reasons: ['task_downgraded'] });
    expect((await t.hop('expenses:read')).status).toBe(200);

    expect((await w.t.admin('POST', `/admin/api/reviews/${review.id}/approve`, { comment: 'fine' }, reviewerToken)).status).toBe(200);
    expect((await view(t.id)).status).toBe('active');
    expect((await t.hop('expenses:submit')).status).toBe(200);
    const restored = await (await w.t.admin('GET', `/admin/api/ledger?kind=task.restored&task=${t.id}`)).json() as { items: unknown[] };
    expect(restored.items).toHaveLength(1);
  });

  it('suspends the task when the review is denied: its tokens are revoked', async () => {
    const t = await task('lou');
    expect((await t.hop('expenses:read')).status).toBe(200);
    expect((await t.hop('expenses:read')).status).toBe(200);
    const review = await reviewOf(t.id);
    expect((await w.t.admin('POST', `/admin/api/reviews/${review.id}/deny`, {}, reviewerToken)).status).toBe(200);
    const v = await view(t.id);
    expect(v.status).toBe('suspended');
    expect(v.tokens.every((x) => x.status === 'revoked')).toBe(true);
    const after = await t.hop('expenses:read');
    expect(after.status).toBe(400);
  });
});
