import { describe, expect, it } from 'vitest';
import { heldRefusal } from '../../src/exchange/held.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import type { DecisionInput } from '../../src/policy/decide.ts';
import type { Standing } from '../../src/tasks/holds.ts';
import { parsePolicyDocument } from '../../src/policy/document.ts';
import { decideRequest } from '../../src/policy/request.ts';
import { EXPENSES_RESOURCE } from '../helpers/decision.ts';

// At commit, the agent's and the task's standings are read again (src/ledger/writer.ts); heldRefusal answers what the decision
// would have refused on it. Exactly that: a grant the fresh standing still allows stands.

const EXPENSES = EXPENSES_RESOURCE;
const ceiling = ['expenses:read', 'expenses:submit'];
const policy = compilePolicy(parsePolicyDocument(`
version: 1
rules:
  - { id: read, effect: allow, resource: https://expenses.example, scopes: [expenses:read] }
  - { id: submit, effect: allow, resource: https://expenses.example, scopes: [expenses:submit] }
`), 'test');
const input = (extra: Partial<DecisionInput> = {}): DecisionInput => ({
  requestedScopes: ['expenses:read'], resource: EXPENSES, client: { id: 'agent', grant_types: [] },
  user: { issuer: 'https://idp.example', sub: 'alice', claims: {} }, details: [], delegated: false, now: new Date('2025-06-04T10:00:00Z'),
  agent: { status: 'active', review_id: null }, ...extra,
});
/** What the exchange granted on `i` (its decision as it was made), then the refusal on `fresh`. */
const atCommitWith = (i: DecisionInput, fresh: Parameters<typeof heldRefusal>[4]) => {
  const granted = decideRequest(policy, i).grantedScopes.filter((s) => ceiling.includes(s));
  expect(granted.length).toBeGreaterThan(0);
  const r = heldRefusal(policy, i, granted, ceiling, fresh);
  return r && { error: r.code, reasons: r.extra.reasons, review_id: r.extra.review_id };
};
/** The agent's standing at commit. */
const atCommit = (i: DecisionInput, agent: Standing) => atCommitWith(i, { agent });

describe('the refusal at commit for an agent held since its decision', () => {
  it('lets the grant stand when the standing is unchanged, or was lifted', () => {
    expect(atCommit(input(), { status: 'active', review_id: null })).toBeUndefined();
    const down = input({ agent: { status: 'downgraded', review_id: null } });
    expect(atCommit(down, { status: 'downgraded', review_id: null })).toBeUndefined();
    expect(atCommit(down, { status: 'active', review_id: null })).toBeUndefined();
  });

  it('refuses any grant once the agent is suspended, with the review that holds it', () => {
    expect(atCommit(input(), { status: 'suspended', review_id: 'rev_1' })).toEqual({ error: 'access_denied', reasons: ['agent_suspended'], review_id: 'rev_1' });
    expect(atCommit(input({ agent: { status: 'downgraded', review_id: null } }), { status: 'suspended', review_id: 'rev_1' }))
      .toEqual({ error: 'access_denied', reasons: ['agent_suspended'], review_id: 'rev_1' });
  });

  it('once downgraded: refuses a write, lets a read stand, and refuses a policy default that carried a write', () => {
    const fresh = { status: 'downgraded', review_id: null } as const;
    expect(atCommit(input({ requestedScopes: ['expenses:read', 'expenses:submit'] }), fresh)).toMatchObject({ error: 'access_denied', reasons: ['agent_downgraded'] });
    expect(atCommit(input({ requestedScopes: ['expenses:read'] }), fresh)).toBeUndefined();
    // No scope asked for: the decision granted both; on the fresh standing it would have granted the read only.
    expect(atCommit(input({ requestedScopes: [] }), fresh)).toMatchObject({ error: 'access_denied', reasons: ['agent_downgraded'] });
  });

  it('lets a request that redeems the review holding the downgrade stand', () => {
    const redeeming = input({ requestedScopes: ['expenses:submit'], review: { id: 'rev_2', state: 'approved' } });
    expect(atCommit(redeeming, { status: 'downgraded', review_id: 'rev_2' })).toBeUndefined();
    expect(atCommit(redeeming, { status: 'downgraded', review_id: 'rev_3' })).toMatchObject({ reasons: ['agent_downgraded'] });
  });
});

describe('the refusal at commit for a task held since its decision', () => {
  const inTask = (over: Partial<DecisionInput> = {}) => input({ task: { status: 'active', review_id: null }, ...over });
  const task = (status: string, review_id: string | null = null) => ({ task: { status, review_id } as Standing, agent: { status: 'active', review_id: null } as Standing });

  it('lets the grant stand when the task is as decided, or was resumed', () => {
    expect(atCommitWith(inTask(), task('active'))).toBeUndefined();
    const down = inTask({ task: { status: 'downgraded', review_id: null } });
    expect(atCommitWith(down, task('downgraded'))).toBeUndefined();
    expect(atCommitWith(down, task('active'))).toBeUndefined();
  });

  it('refuses as a suspended or revoked task\'s token is refused (src/exchange/task_subject.ts)', () => {
    expect(atCommitWith(inTask(), task('suspended', 'rev_9'))).toEqual({ error: 'access_denied', reasons: ['task_suspended'], review_id: 'rev_9' });
    expect(atCommitWith(inTask(), task('suspended'))).toEqual({ error: 'access_denied', reasons: ['task_suspended'], review_id: undefined });
    expect(atCommitWith(inTask(), task('revoked'))).toEqual({ error: 'invalid_request', reasons: undefined, review_id: undefined });
    // Both held since: the task's refusal, as the decision gives it first.
    expect(atCommitWith(inTask(), { task: { status: 'suspended', review_id: 'rev_9' }, agent: { status: 'suspended', review_id: 'rev_8' } }))
      .toMatchObject({ reasons: ['task_suspended'], review_id: 'rev_9' });
  });

  it('once the task is downgraded: refuses a write, lets a read stand', () => {
    expect(atCommitWith(inTask({ requestedScopes: ['expenses:read', 'expenses:submit'] }), task('downgraded'))).toMatchObject({ error: 'access_denied', reasons: ['task_downgraded'] });
    expect(atCommitWith(inTask({ requestedScopes: ['expenses:read'] }), task('downgraded'))).toBeUndefined();
    expect(atCommitWith(inTask({ requestedScopes: [] }), task('downgraded'))).toMatchObject({ error: 'access_denied', reasons: ['task_downgraded'] });
  });
});
