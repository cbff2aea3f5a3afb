import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXPENSES, exchangeParams, HR, startWorld, type World } from '../helpers/world.ts';


// Each test makes many exchanges; PGlite on a loaded 2-core machine is slow (no timing is asserted).
vi.setConfig({ testTimeout: 180_000 });
let w: World;
let reviewerToken: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/drift.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
}, 180_000);
afterAll(async () => { await w?.t.stop(); });

const detail = (action: string, purpose: string, id?: string) => JSON.stringify([{ type: 'tool_call', action, object: { type: 'Expense', ...(id ? { id } : {}) }, purpose }]);
const read = async (purpose: string, sub = 'alice', extra: Record<string, string> = {}) =>
  w.exchange('agent', exchangeParams(await w.userToken({ sub }), { authorization_details: detail('list', purpose), ...extra }));
const submit = async (purpose: string, id: string, extra: Record<string, string> = {}) =>
  w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:submit', authorization_details: detail('submit', purpose, id), intent: `submit ${id}`, ...extra }));

interface Signal { rule: string; kind: string; outcome: string; evidence: { purpose: string; resource: string; new_resource: boolean; new_sensitivities: string[]; baseline: { grants: number } } }

describe('baseline drift, per agent and purpose', () => {
  it('does not fire before the agent has enough history for the purpose', async () => {
    expect((await read('quarterly_close')).status).toBe(200);
    expect((await read('quarterly_close', 'bob')).status).toBe(200);
    // Two grants: not yet a baseline, so a confidential write for the purpose is decided by the rules alone.
    const res = await submit('quarterly_close', 'exp_q1');
    expect(res.status).toBe(200);
  });

  it('fires on a sensitivity level never granted for the purpose, and on a new resource; explained in the ledger and the review', async () => {
    for (const sub of ['alice', 'bob', 'carol']) expect((await read('weekly_summary', sub)).status).toBe(200);
    // Another purpose's grants make no baseline for this one.
    expect((await submit('quarterly_close', 'exp_q2')).status).toBe(200);

    const drift = await submit('weekly_summary', 'exp_w1');
    expect(drift.status).toBe(400);
    const pending = await drift.json() as { error: string; review_id: string };
    expect(pending).toMatchObject({ error: 'authorization_pending' });

    const entries = await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.denied&limit=1')).json() as { items: Array<{ payload: { signals: Signal[]; reasons: string[] } }> };
    const [signal] = entries.items[0]!.payload.signals;
    expect(signal).toMatchObject({
      rule: 'new-for-purpose', kind: 'baseline_drift', outcome: 'review',
      evidence: { purpose: 'weekly_summary', resource: EXPENSES, new_resource: false, new_sensitivities: ['confidential'], baseline: { grants: 3 } },
    });
    const reviews = await (await w.t.admin('GET', '/admin/api/reviews?status=pending')).json() as { items: Array<{ id: string; context: { signals: Signal[]; evidence: unknown } }> };
    const review = reviews.items.find((r) => r.id === pending.review_id)!;
    expect(review.context.evidence).toMatchObject({ new_sensitivities: ['confidential'] });

    // A resource never granted for the purpose is drift too (restricted HR data for a summary).
    const hr = await read('weekly_summary', 'alice', { resource: HR, scope: 'hr:read' });
    expect(hr.status).toBe(400);
    const hrEntries = await (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.denied&limit=1')).json() as { items: Array<{ payload: { signals: Signal[] } }> };
    expect(hrEntries.items[0]!.payload.signals[0]!.evidence).toMatchObject({ resource: HR, new_resource: true, new_sensitivities: ['restricted'] });

    // A person approves: the request is granted on its review_id, and from then on it is part of the baseline.
    expect((await w.t.admin('POST', `/admin/api/reviews/${pending.review_id}/approve`, {}, reviewerToken)).status).toBe(200);
    expect((await submit('weekly_summary', 'exp_w1', { review_id: pending.review_id })).status).toBe(200);
    expect((await submit('weekly_summary', 'exp_w2')).status).toBe(200);
  });
});
