import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';
import { lastEntry } from '../helpers/ledger.ts';

let w: World;
beforeAll(async () => { w = await startWorld(); });
afterAll(async () => { await w?.t.stop(); });

const base = readFileSync('test/fixtures/policy/exchange.yaml', 'utf8');

describe('policies admin API', () => {
  it('lists versions and shows the one in force', async () => {
    const list = await (await w.t.admin('GET', '/admin/api/policies')).json() as { items: Array<{ version: number }> };
    expect(list.items.map((v) => v.version)).toEqual([1]);
    const current = await (await w.t.admin('GET', '/admin/api/policies/current')).json() as { version: number; document: string };
    expect(current.version).toBe(1);
    expect(current.document).toBe(base);
    expect((await w.t.admin('GET', '/admin/api/policies/99')).status).toBe(404);
    expect((await w.t.admin('GET', '/admin/api/policies/abc')).status).toBe(404);
  });

  it('refuses an invalid document, naming the field, and keeps the version in force', async () => {
    const bad = await w.t.admin('POST', '/admin/api/policies', { document: 'version: 1\nrules:\n  - id: x\n    effect: allow\n    scopes: [a]\n    when: { object: { amount: { between: 1 } } }\n' });
    expect(bad.status).toBe(400);
    const err = await bad.json() as { field: string; error_description: string };
    expect(err.field).toMatch(/^document\.rules\.0\.when\.object/);
    const notYaml = await w.t.admin('POST', '/admin/api/policies', { document: 'rules: [' });
    expect(notYaml.status).toBe(400);
    const extra = await w.t.admin('POST', '/admin/api/policies', { document: base, activate: true });
    expect(extra.status).toBe(400);
    expect(await extra.json()).toMatchObject({ field: 'activate' });
    const list = await (await w.t.admin('GET', '/admin/api/policies')).json() as { items: unknown[] };
    expect(list.items).toHaveLength(1);
  });

  it('simulates against the policy in force or a draft, and explains', async () => {
    const input = { client_id: 'agent', user: { issuer: 'https://idp.test', sub: 'alice' }, resource: EXPENSES, scope: 'expenses:read' };
    const now = await (await w.t.admin('POST', '/admin/api/policies/simulate', input)).json() as { decision: Record<string, unknown>; explanation: string };
    expect(now.decision).toMatchObject({ outcome: 'allow', granted_scopes: ['expenses:read'], matched_rules: ['expenses-read'], policy_version: '1' });
    expect(now.explanation).toContain('allowed under policy 1');

    const draft = base.replace('  - id: expenses-read\n    effect: allow', '  - id: expenses-read\n    effect: deny\n    reason: reads_paused');
    const sim = await (await w.t.admin('POST', '/admin/api/policies/simulate', { ...input, document: draft })).json() as { decision: Record<string, unknown>; explanation: string };
    expect(sim.decision).toMatchObject({ outcome: 'deny', reasons: ['reads_paused'], policy_version: 'draft' });
    expect(sim.explanation).toContain('denied');

    const unknown = await w.t.admin('POST', '/admin/api/policies/simulate', { ...input, client_id: 'ghost' });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ field: 'client_id' });
  });

  it('publishes a new version that takes effect for the next exchange at once', async () => {
    expect((await w.exchange('agent', exchangeParams(await w.userToken()))).status).toBe(200);
    const draft = base.replace('  - id: expenses-read\n    effect: allow', '  - id: expenses-read\n    effect: deny\n    reason: reads_paused');
    const res = await w.t.admin('POST', '/admin/api/policies', { document: draft, source: 'test' });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ version: 2, source: 'test' });
    const denied = await w.exchange('agent', exchangeParams(await w.userToken()));
    expect(denied.status).toBe(400);
    expect(await denied.json()).toMatchObject({ error: 'access_denied', reasons: ['reads_paused'] });
    const entry = await lastEntry(w.t.server.db, 'policy.published');
    expect(entry.payload).toMatchObject({ version: 2 });
    // A restart keeps the version in force.
    await w.t.restart();
    const still = await w.exchange('agent', exchangeParams(await w.userToken()));
    expect(await still.json()).toMatchObject({ error: 'access_denied', reasons: ['reads_paused'] });
  });
});
