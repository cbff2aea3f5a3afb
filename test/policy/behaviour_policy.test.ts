import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import type { DecisionInput } from '../../src/policy/decide.ts';
import { parsePolicyDocument } from '../../src/policy/document.ts';
import { runFixtures } from '../../src/policy/fixtures.ts';
import { decideRequest } from '../../src/policy/request.ts';
import { ValidationError } from '../../src/validate/schema.ts';
import { EXPENSES_RESOURCE } from '../helpers/decision.ts';

const refused = (doc: string): ValidationError => {
  try {
    parsePolicyDocument(doc);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('accepted');
};

const EXPENSES = EXPENSES_RESOURCE;

const input = (extra: Partial<DecisionInput> = {}): DecisionInput => ({
  requestedScopes: ['expenses:read'], resource: EXPENSES, client: { id: 'agent', grant_types: [] },
  user: { issuer: 'https://idp.example', sub: 'alice', claims: {} }, details: [], delegated: false, now: new Date('2025-06-04T10:00:00Z'), ...extra,
});

const policy = compilePolicy(parsePolicyDocument(`
version: 1
rules:
  - { id: read, effect: allow, resource: https://expenses.example, scopes: [expenses:read] }
  - { id: submit, effect: allow, resource: https://expenses.example, scopes: [expenses:submit] }
  - id: limit
    effect: deny
    reason: daily_limit
    when: { action: approve, object_type: Expense, history: { amount_total: { gt: 100 }, within: 86400 } }
behaviour:
  - { id: drift, baseline: { within: 86400, min_grants: 2 }, outcome: suspend, per: agent }
`), 'test');

describe('rules that can never match', () => {
  it('refuses a delegation rule that names a resource, naming the rule', () => {
    const err = refused('version: 1\nrules:\n  - { id: planner-delegates, effect: allow, resource: https://expenses.example, scopes: [expenses:read], delegate_to: [reader] }\n');
    expect(err.field).toBe('rules.0.resource');
    expect(err.message).toContain('planner-delegates');
    expect(err.message).toContain('agent:<client_id>');
  });

  it('ships a default policy whose delegation rule matches a real delegation, checked by its fixtures', () => {
    const example = compilePolicy(parsePolicyDocument(readFileSync('config/policies/default.yaml', 'utf8')), 'default');
    const report = runFixtures(example, readFileSync('test/fixtures/policy/default.fixtures.yaml', 'utf8'));
    expect(report.failed).toEqual([]);
  });
});

describe('fixtures decide through the input a real exchange builds', () => {
  const header = `
resources:
  - identifier: https://expenses.example
    scopes: [{ name: "expenses:read", sensitivity: internal, operation: read }, { name: "expenses:submit", sensitivity: confidential, operation: write }]
agents: [{ client_id: reader, scope: "expenses:read" }]
defaults:
  resource: https://expenses.example
  client: { id: planner }
  user: { issuer: https://idp.example, sub: alice }
  now: "2025-06-04T10:00:00Z"
cases:`;
  it('decides a delegation with the target agent:<client_id>, whatever resource the defaults name', () => {
    const delegating = compilePolicy(parsePolicyDocument('version: 1\nrules:\n  - { id: d, effect: allow, scopes: [expenses:read], delegate_to: [reader] }\n'), 't');
    const report = runFixtures(delegating, `${header}
  - { name: delegates, input: { requestedScopes: ["expenses:read"], delegateTo: reader }, expect: { outcome: allow, matched_rules: [d] } }
  - { name: not beyond the delegate's scopes, input: { delegateTo: reader }, expect: { outcome: allow, granted_scopes: ["expenses:read"] } }
  - { name: a plain request is no delegation, input: { requestedScopes: ["expenses:read"] }, expect: { outcome: deny, reasons: [no_matching_rule] } }
`);
    expect(report.failed).toEqual([]);
  });

  it('sees the task\'s standing and history facts as the exchange does', () => {
    const report = runFixtures(policy, `${header}
  - { name: a suspended task, input: { requestedScopes: ["expenses:read"], task: { status: suspended } }, expect: { outcome: deny, reasons: [task_suspended] } }
  - { name: a downgraded agent reads, input: { requestedScopes: ["expenses:read"], agent: { status: downgraded } }, expect: { outcome: allow } }
  - { name: a downgraded agent does not write, input: { requestedScopes: ["expenses:submit"], agent: { status: downgraded } }, expect: { outcome: deny, reasons: [agent_downgraded] } }
`);
    expect(report.failed).toEqual([]);
  });
});

describe('decideRequest', () => {
  it('adds this request\'s amounts to the running total of earlier grants', () => {
    const approve = (amount: number, earlier: number) => decideRequest(policy, input({
      requestedScopes: [], details: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', amount } }],
      history: { userObjectActions: {}, taskActionCounts: {}, amountTotals: { '86400|approve|Expense': earlier } },
    }));
    expect(approve(40, 60).reasons).not.toContain('daily_limit');
    expect(approve(41, 60).reasons).toEqual(['daily_limit']);
    expect(approve(200, 0).reasons).toEqual(['daily_limit']);
  });

  it('raises baseline drift only with enough history, with the evidence', () => {
    const detail = [{ type: 'tool_call', action: 'submit', object: { type: 'Expense' }, purpose: 'close' }];
    const submit = (grants: number) => decideRequest(policy, input({
      requestedScopes: ['expenses:submit'], details: detail,
      baseline: { '86400|close': { grants, resources: ['https://expenses.example'], sensitivities: ['internal'] } },
    }));
    expect(submit(1)).toMatchObject({ outcome: 'allow', signals: [] });
    const drift = submit(2);
    expect(drift).toMatchObject({ outcome: 'deny', reasons: ['baseline_drift'] });
    expect(drift.signals[0]).toMatchObject({ rule: 'drift', per: 'agent', evidence: { new_resource: false, new_sensitivities: ['confidential'], baseline: { grants: 2 } } });
    // A delegation is about no resource: never drift.
    expect(decideRequest(policy, input({ requestedScopes: [], details: detail, delegateTo: 'x', baseline: { '86400|close': { grants: 9, resources: [], sensitivities: [] } } })).signals).toEqual([]);
  });

  it('lets a request redeem the review that holds its task downgraded, and grants it once approved', () => {
    const reviewing = compilePolicy(parsePolicyDocument('version: 1\nrules:\n  - { id: w, effect: review, reason: look, scopes: [expenses:submit] }\n  - { id: s, effect: allow, scopes: [expenses:submit] }\n'), 't');
    const held = { status: 'downgraded' as const, review_id: 'rev_1' };
    expect(decideRequest(reviewing, input({ requestedScopes: ['expenses:submit'], task: held })).reasons).toEqual(['task_downgraded']);
    expect(decideRequest(reviewing, input({ requestedScopes: ['expenses:submit'], task: held, review: { id: 'rev_1', state: 'pending' } })).outcome).toBe('review');
    expect(decideRequest(reviewing, input({ requestedScopes: ['expenses:submit'], task: held, review: { id: 'rev_1', state: 'approved' } }))).toMatchObject({ outcome: 'allow', grantedScopes: ['expenses:submit'] });
  });

  it('refuses behaviour entries with none or several of the counters and baselines, and unknown outcomes', () => {
    const base = 'version: 1\nrules: []\nbehaviour:\n';
    expect(refused(`${base}  - { id: b, outcome: review, per: agent }\n`).field).toBe('behaviour.0');
    expect(refused(`${base}  - { id: b, outcome: review, volume: { count: 1, within: 5 }, baseline: { within: 600, min_grants: 1 } }\n`).field).toBe('behaviour.0');
    expect(refused(`${base}  - { id: b, outcome: escalate, volume: { count: 1, within: 5 } }\n`).field).toBe('behaviour.0.outcome');
    expect(refused(`${base}  - { id: b, outcome: review, per: user, volume: { count: 1, within: 5 } }\n`).field).toBe('behaviour.0.per');
    expect(refused(`${base}  - { id: b, outcome: review, baseline: { within: 1, min_grants: 1 } }\n`).field).toBe('behaviour.0.baseline.within');
  });
});
