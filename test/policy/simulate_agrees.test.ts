import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ACCESS_TOKEN_TYPE, EXPENSES, HR, IDP, startWorld, type World } from '../helpers/world.ts';

const POLICY = path.resolve('test/fixtures/policy/agree.yaml');

// Each test makes many exchanges; PGlite on a loaded 2-core machine is slow (no timing is asserted).
vi.setConfig({ testTimeout: 180_000 });
let w: World;
beforeAll(async () => {
  w = await startWorld({ policy: { file: POLICY }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
}, 180_000);
afterAll(async () => { await w?.t.stop(); });

const ALL = 'expenses:read expenses:submit expenses:approve hr:read reports:read';
const detail = (action: string, object: Record<string, unknown>, purpose?: string) => [{ type: 'tool_call', action, object: { type: 'Expense', ...object }, ...(purpose ? { purpose } : {}) }];

interface Step {
  client?: string;
  sub?: string;
  /** The user token's scope (first exchanges), or the parent token (hops). */
  tokenScope?: string;
  parent?: { token: string; scope: string; task: string };
  resource?: string;
  audience?: string;
  scope?: string;
  details?: unknown[];
}
interface Simulated { decision: { outcome: string; error?: string; granted_scopes: string[]; reasons: string[] } }

/** Simulates the request first, then makes it: the simulation must predict the exchange's answer. */
async function step(s: Step): Promise<{ status: number; body: Record<string, unknown> }> {
  const client = s.client ?? 'agent';
  const sub = s.sub ?? 'alice';
  const sim = await w.t.admin('POST', '/admin/api/policies/simulate', {
    client_id: client, user: { issuer: IDP, sub },
    ...(s.audience ? { delegate_to: s.audience } : { resource: s.resource ?? EXPENSES }),
    ...(s.scope ? { scope: s.scope } : {}),
    subject_scope: s.parent?.scope ?? s.tokenScope ?? ALL,
    ...(s.details ? { authorization_details: s.details } : {}),
    ...(s.parent ? { task: s.parent.task, delegated: true } : {}),
  });
  expect(sim.status).toBe(200);
  const predicted = (await sim.json() as Simulated).decision;
  const params: Record<string, string> = {
    subject_token: s.parent?.token ?? await w.userToken({ sub, scope: s.tokenScope ?? ALL }),
    subject_token_type: ACCESS_TOKEN_TYPE,
    intent: 'agreement test',
    ...(s.audience ? { audience: s.audience } : { resource: s.resource ?? EXPENSES }),
    ...(s.scope ? { scope: s.scope } : {}),
    ...(s.details ? { authorization_details: JSON.stringify(s.details) } : {}),
  };
  const res = await w.exchange(client, params);
  const body = await res.json() as Record<string, unknown>;
  const answered = res.status === 200 ? 'allow' : body.error === 'authorization_pending' ? 'review' : body.error === 'access_denied' ? 'deny' : `refused:${String(body.error)}`;
  const expected = predicted.outcome === 'refused' ? `refused:${predicted.error}` : predicted.outcome;
  expect(answered, JSON.stringify({ s, predicted, body })).toBe(expected);
  if (res.status === 200) expect((body.scope as string).split(' ').filter(Boolean).sort()).toEqual([...predicted.granted_scopes].sort());
  return { status: res.status, body };
}

interface Recorded { seq: number; payload: { decision: string; outcome?: string; error?: string; context_sha256?: string; reasons: string[] } }
async function recorded(kind: string): Promise<Recorded[]> {
  const items: Recorded[] = [];
  let cursor: string | null = null;
  do {
    const page = await (await w.t.admin('GET', `/admin/api/ledger?kind=${kind}&limit=500${cursor ? `&cursor=${cursor}` : ''}`)).json() as { items: never[]; next_cursor: string | null };
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

describe('simulate and replay decide exactly as the exchange does', () => {
  it('predicts every exchange, then re-decides every recorded decision the same way', async () => {
    // Grants, separation of duties, a review, and the ceiling.
    await step({ scope: 'expenses:read' });
    await step({});  // no scope: the policy default within the ceiling
    await step({ scope: 'expenses:submit', details: detail('submit', { id: 'exp_1', amount: 300 }) });
    await step({ scope: 'expenses:approve', details: detail('approve', { id: 'exp_1', amount: 300 }) }); // own submission
    await step({ sub: 'bob', scope: 'expenses:approve', details: detail('approve', { id: 'exp_1', amount: 300 }) });
    await step({ scope: 'expenses:approve', details: detail('approve', { id: 'exp_big', amount: 4000 }) }); // review
    await step({ tokenScope: 'expenses:read', scope: 'expenses:submit', details: detail('submit', { id: 'exp_2' }) }); // beyond the ceiling
    await step({ client: 'other-agent', scope: 'expenses:submit', details: detail('submit', { id: 'exp_3' }) }); // beyond the client's scope
    // A cumulative limit.
    for (const id of ['exp_c1', 'exp_c2', 'exp_c3', 'exp_c4', 'exp_c5', 'exp_c6']) await step({ sub: 'carol', scope: 'expenses:approve', details: detail('approve', { id, amount: 900 }) });
    // A behaviour rule (suspends its task) and the refused HR summary.
    await step({ resource: HR, scope: 'hr:read', details: [{ type: 'tool_call', action: 'read', object: { type: 'Document' }, purpose: 'summarize' }] });
    // A task: delegation, hops, a downgrade from the volume counter, then a refused write.
    const delegationDetails = detail('submit', { id: 'exp_t1', amount: 5 });
    const delegation = await step({ sub: 'gina', audience: 'sub-agent', scope: 'expenses:read expenses:submit', details: delegationDetails });
    const token = delegation.body.access_token as string;
    const parent = { token, scope: delegation.body.scope as string, task: decodeJwt(token).task as string };
    await step({ client: 'sub-agent', sub: 'gina', parent, scope: 'expenses:read', details: delegationDetails });
    await step({ client: 'sub-agent', sub: 'gina', parent, scope: 'expenses:read', details: delegationDetails }); // third grant: downgraded
    await step({ client: 'sub-agent', sub: 'gina', parent, scope: 'expenses:submit', details: delegationDetails }); // task_downgraded
    await step({ client: 'sub-agent', sub: 'gina', parent, details: delegationDetails }); // the default, read scopes only
    // Baseline drift: three grants for a purpose, then a sensitivity never granted for it.
    for (const sub of ['hal', 'ivy', 'jon']) await step({ sub, scope: 'expenses:read', details: detail('list', {}, 'close_books') });
    await step({ sub: 'hal', scope: 'expenses:submit', details: detail('submit', { id: 'exp_d1' }, 'close_books') });
    // Refusals before any decision: no context, so nothing to re-decide.
    const unknown = await w.exchange('agent', { subject_token: await w.userToken(), subject_token_type: ACCESS_TOKEN_TYPE, resource: 'https://nowhere.example', intent: 'x' });
    expect(unknown.status).toBe(400);

    const entries = [...await recorded('exchange.granted'), ...await recorded('exchange.denied')];
    expect(entries.length).toBeGreaterThanOrEqual(25);
    let decided = 0;
    for (const e of entries) {
      const res = await w.t.admin('POST', '/admin/api/policies/simulate', { entry: e.seq });
      if (!e.payload.context_sha256) {
        // Refused before a decision: the target, the ceiling or the details; the simulation says so.
        expect(res.status).toBe(409);
        expect(['invalid_target', 'invalid_scope']).toContain(e.payload.error);
        continue;
      }
      decided++;
      expect(res.status).toBe(200);
      const sim = await res.json() as Simulated & { recorded: { agrees: boolean; outcome: string } };
      expect(sim.recorded.agrees, JSON.stringify({ e, sim })).toBe(true);
      expect(sim.decision.outcome).toBe(e.payload.outcome);
      if (e.payload.decision === 'denied' && sim.decision.outcome === 'deny') expect(e.payload.reasons).toEqual(expect.arrayContaining(sim.decision.reasons));
    }
    expect(decided).toBeGreaterThanOrEqual(20);
    const outcomes = new Set(entries.map((e) => e.payload.outcome));
    for (const o of ['allow', 'deny', 'review']) expect(outcomes).toContain(o);
    const reasons = new Set(entries.flatMap((e) => e.payload.reasons));
    for (const r of ['separation_of_duties', 'daily_approval_limit', 'restricted_data_for_summary', 'task_downgraded', 'baseline_drift', 'approval_required']) expect(reasons).toContain(r);

    // Replay with the same document: nothing changes, and only the refusals before a decision are skipped.
    const replay = await (await w.t.admin('POST', '/admin/api/policies/replay', { document: readFileSync(POLICY, 'utf8') })).json() as { examined: number; skipped: number; changed: unknown[] };
    expect(replay.changed).toEqual([]);
    expect(replay.examined).toBe(entries.length);
    expect(replay.skipped).toBe(entries.length - decided);
  }, 300_000);
});

describe('simulate: malformed, oversized and hostile input', () => {
  it('refuses what it cannot decide, with the field', async () => {
    const sim = (body: unknown) => w.t.admin('POST', '/admin/api/policies/simulate', body);
    const field = async (body: unknown, status = 400) => {
      const res = await sim(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      return ((await res.json()) as { field?: string }).field;
    };
    for (const entry of ['1', -1, 0, 1.5, 2 ** 60, null, [1], { seq: 1 }]) expect(await field({ entry })).toBe('entry');
    expect(await field({ entry: 1, client_id: 'agent' })).toBe('client_id');
    expect(await field({ entry: 999_999_999 }, 404)).toBe('entry');
    expect(await field({ user: { issuer: IDP, sub: 'a' }, resource: EXPENSES })).toBe('client_id');
    expect(await field({ client_id: 'agent', resource: EXPENSES })).toBe('user');
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a' } })).toBe('resource');
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, resource: EXPENSES, delegate_to: 'sub-agent' })).toBe('delegate_to');
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, resource: EXPENSES, subject_scope: 'x'.repeat(5000) })).toBe('subject_scope');
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, resource: EXPENSES, subject_scope: 'a  b' })).toBe('subject_scope');
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, resource: EXPENSES, task: 'x'.repeat(200) })).toBe('task');
    expect((await sim(`{"client_id":"agent","user":{"issuer":"${IDP}","sub":"a"},"resource":"${EXPENSES}","__proto__":{"entry":1}}`)).status).toBe(400);
    expect(await field({ client_id: 'agent', user: { issuer: IDP, sub: 'a', extra: 1 }, resource: EXPENSES })).toBe('user.extra');
    // A refusal before the decision is reported as such, never as a rule's denial.
    const beyond = await (await sim({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, resource: EXPENSES, scope: 'expenses:approve', subject_scope: 'expenses:read' })).json() as Simulated;
    expect(beyond.decision).toMatchObject({ outcome: 'refused', error: 'invalid_scope' });
    // A delegation is simulated with the agent as target, as the exchange decides it.
    const delegation = await (await sim({ client_id: 'agent', user: { issuer: IDP, sub: 'a' }, delegate_to: 'sub-agent', scope: 'expenses:read' })).json() as Simulated & { decision: { matched_rules: string[] } };
    expect(delegation.decision).toMatchObject({ outcome: 'allow', matched_rules: ['delegate-to-sub-agent'] });
  });
});
