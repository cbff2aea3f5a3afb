import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { details, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';


// Each test makes many exchanges; PGlite on a loaded 2-core machine is slow (no timing is asserted).
vi.setConfig({ testTimeout: 180_000 });
let w: World;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/cumulative.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
}, 180_000);
afterAll(async () => { await w?.t.stop(); });

async function approve(sub: string, id: string, amount: number, extra: Record<string, unknown> = {}): Promise<Response> {
  return w.exchange('agent', exchangeParams(await w.userToken({ sub }), {
    scope: 'expenses:approve', intent: `approve ${id}`, authorization_details: details('approve', { type: 'Expense', id, amount, ...extra }),
  }));
}

interface Entry { payload: { decision: string; reasons: string[]; authorization_details: Array<{ object: { amount: number } }>; context?: unknown } }
async function ledger(sub: string): Promise<Entry[]> {
  const res = await w.t.admin('GET', `/admin/api/ledger?subject=${sub}&limit=500`);
  return ((await res.json()) as { items: Entry[] }).items;
}

describe('cumulative limits (history.amount_total)', () => {
  it('adds up what the user was granted within the window and refuses what would go beyond it', async () => {
    expect((await approve('carol', 'exp_c1', 900)).status).toBe(200);
    expect((await approve('carol', 'exp_c2', 900, { currency: 'EUR' })).status).toBe(200);
    // Another user's approvals, another resource's and another action's count for nobody else.
    expect((await approve('dave', 'exp_d1', 900)).status).toBe(200);
    for (let i = 3; i <= 5; i++) expect((await approve('carol', `exp_c${i}`, 900)).status).toBe(200); // 4500
    const over = await approve('carol', 'exp_c6', 600); // 5100 > 5000
    expect(over.status).toBe(400);
    expect(await over.json()).toMatchObject({ error: 'access_denied', reasons: ['daily_approval_limit'] });
    expect((await approve('carol', 'exp_c7', 500)).status).toBe(200); // exactly 5000
    expect((await approve('carol', 'exp_c8', 1)).status).toBe(400);
    expect((await approve('dave', 'exp_d2', 900)).status).toBe(200);
    // The running total is part of the recorded context, so the refusal can be replayed and explained.
    const refused = (await ledger('carol')).find((e) => e.payload.decision === 'denied');
    expect(refused).toBeDefined();
  });

  it('holds under 20 concurrent approvals that together would overshoot it', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => approve('erin', `exp_e${i}`, 400)));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 400)).toBe(true);
    const granted = statuses.filter((s) => s === 200).length;
    // 12 × 400 = 4800 fits; a 13th would make 5200. Each decision saw every earlier grant.
    expect(granted).toBe(12);
    for (const r of results.filter((x) => x.status === 400)) expect(await r.json()).toMatchObject({ reasons: ['daily_approval_limit'] });
    const committed = (await ledger('erin')).filter((e) => e.payload.decision === 'granted')
      .reduce((sum, e) => sum + e.payload.authorization_details[0]!.object.amount, 0);
    expect(committed).toBe(4800);
    expect(committed).toBeLessThanOrEqual(5000);
  }, 120_000);

  it('refuses a policy whose amount_total has no window, or a window without amount_total', async () => {
    const base = 'version: 1\nrules:\n  - id: r\n    effect: deny\n    reason: x\n    when: { action: approve, history: ';
    for (const bad of ['{ amount_total: { gt: 5 } } }', '{ within: 60, task_action_count: { gt: 1 } } }']) {
      const res = await w.t.admin('POST', '/admin/api/policies', { document: `${base}${bad}\n` });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ field: 'document.rules.0.when.history' });
    }
    expect(EXPENSES).toBe('https://expenses.example');
  });
});
