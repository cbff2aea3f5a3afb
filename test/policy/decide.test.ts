import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { decide, type DecisionInput } from '../../src/policy/decide.ts';
import { parsePolicyDocument } from '../../src/policy/document.ts';

const EXPENSES = 'https://expenses.example';
const policy = (yaml: string) => compilePolicy(parsePolicyDocument(yaml), 'test-1');
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  requestedScopes: ['expenses:read'],
  resource: {
    identifier: EXPENSES,
    scopes: [
      { name: 'expenses:read', sensitivity: 'internal', operation: 'read' },
      { name: 'expenses:submit', sensitivity: 'confidential', operation: 'write' },
      { name: 'expenses:approve', sensitivity: 'confidential', operation: 'write' },
    ],
  },
  client: { id: 'agent-1', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'] },
  user: { issuer: 'https://idp.example', sub: 'alice', claims: {} },
  details: [],
  delegated: false,
  now: new Date('2025-06-04T10:00:00Z'),
  ...over,
});
const approve = (amount: unknown) => [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_1', amount } }];

const base = `
version: 1
default_ttl: 300
rules:
  - id: read
    effect: allow
    resource: ${EXPENSES}
    scopes: [expenses:read, expenses:submit]
  - id: approve-small
    effect: allow
    resource: ${EXPENSES}
    scopes: [expenses:approve]
    ttl: 120
    when: { action: approve, object: { amount: { lt: 1000 } } }
  - id: approve-large
    effect: review
    resource: ${EXPENSES}
    scopes: [expenses:approve]
    reason: approval_required
    when: { action: approve, object: { amount: { gte: 1000 } } }
`;

describe('decide', () => {
  it('allows what an allow rule grants, with the policy version and default ttl', () => {
    const d = decide(policy(base), input());
    expect(d).toEqual({ outcome: 'allow', grantedScopes: ['expenses:read'], ttl: 300, matchedRules: ['read'], reasons: [], policyVersion: 'test-1' });
  });

  it('denies by default, naming no_matching_rule', () => {
    const d = decide(policy(base), input({ requestedScopes: ['expenses:read', 'expenses:approve'] }));
    expect(d.outcome).toBe('deny');
    expect(d.reasons).toEqual(['no_matching_rule']);
    expect(d.grantedScopes).toEqual([]);
    expect(d.ttl).toBeUndefined();
  });

  it('denies with the reason of a matching deny rule, and deny beats allow whatever the order', () => {
    const p = policy(`${base}
  - id: no-submit-on-behalf-of-contractors
    effect: deny
    scopes: [expenses:submit]
    reason: contractor_account
    when: { user: { employment: contractor } }
`);
    const contractor = { issuer: 'https://idp.example', sub: 'c', claims: { employment: 'contractor' } };
    const d = decide(p, input({ requestedScopes: ['expenses:read', 'expenses:submit'], user: contractor }));
    expect(d.outcome).toBe('deny');
    expect(d.reasons).toEqual(['contractor_account']);
    expect(d.matchedRules).toEqual(['read', 'no-submit-on-behalf-of-contractors']);
    expect(decide(p, input({ requestedScopes: ['expenses:read'], user: contractor })).outcome).toBe('allow');
  });

  it('sends a matching review rule to review, and allows below the threshold', () => {
    const p = policy(base);
    const big = decide(p, input({ requestedScopes: ['expenses:approve'], details: approve(5000) }));
    expect(big).toMatchObject({ outcome: 'review', reasons: ['approval_required'], grantedScopes: [], matchedRules: ['approve-large'] });
    const small = decide(p, input({ requestedScopes: ['expenses:approve'], details: approve(999) }));
    expect(small).toMatchObject({ outcome: 'allow', grantedScopes: ['expenses:approve'], ttl: 120 });
  });

  it('deny wins over review', () => {
    const p = policy(`${base}
  - id: frozen
    effect: deny
    reason: account_frozen
    when: { user: { frozen: true } }
`);
    const d = decide(p, input({ requestedScopes: ['expenses:approve'], details: approve(5000), user: { issuer: 'i', sub: 's', claims: { frozen: true } } }));
    expect(d).toMatchObject({ outcome: 'deny', reasons: ['account_frozen'] });
  });

  it('never lets rules about details match a request without details', () => {
    const p = policy(`
version: 1
rules:
  - id: approve-unless-huge
    effect: allow
    scopes: [expenses:approve]
    when: { object: { amount: { ne: 1000000 } } }
`);
    expect(decide(p, input({ requestedScopes: ['expenses:approve'] })).outcome).toBe('deny');
    expect(decide(p, input({ requestedScopes: ['expenses:approve'], details: approve(5) })).outcome).toBe('allow');
  });

  it('requires every detail to be allowed', () => {
    const p = policy(base);
    const details = [...approve(10), ...approve(20_000)];
    expect(decide(p, input({ requestedScopes: ['expenses:approve'], details })).outcome).toBe('review');
    const twoSmall = [...approve(10), ...approve(20)];
    expect(decide(p, input({ requestedScopes: ['expenses:approve'], details: twoSmall })).outcome).toBe('allow');
  });

  it('matches the sensitivity and operation of the scope being decided', () => {
    const p = policy(`
version: 1
rules:
  - id: internal-reads
    effect: allow
    scopes: "*"
    when: { sensitivity: [public, internal], operation: read }
`);
    expect(decide(p, input({ requestedScopes: ['expenses:read'] })).outcome).toBe('allow');
    const d = decide(p, input({ requestedScopes: ['expenses:read', 'expenses:submit'] }));
    expect(d).toMatchObject({ outcome: 'deny', reasons: ['no_matching_rule'] });
  });

  it('takes the smallest ttl among the matching allow rules and default_ttl', () => {
    const p = policy(`
version: 1
default_ttl: 900
rules:
  - { id: a, effect: allow, scopes: [expenses:read], ttl: 600 }
  - { id: b, effect: allow, scopes: [expenses:submit], ttl: 60 }
  - { id: c, effect: allow, scopes: [expenses:read], when: { user: { vip: true } } }
`);
    expect(decide(p, input({ requestedScopes: ['expenses:read'] })).ttl).toBe(600);
    expect(decide(p, input({ requestedScopes: ['expenses:read', 'expenses:submit'] })).ttl).toBe(60);
    const noTtl = policy('version: 1\nrules: [{ id: a, effect: allow, scopes: "*" }]');
    expect(decide(noTtl, input()).ttl).toBeUndefined();
  });

  it('with no scope requested, grants the resource scopes the allow rules give, minus denied ones', () => {
    const p = policy(`${base}
  - id: no-submit-in-staging
    effect: deny
    scopes: [expenses:submit]
    reason: staging
    when: { environment: staging }
`);
    expect(decide(p, input({ requestedScopes: [] }))).toMatchObject({ outcome: 'allow', grantedScopes: ['expenses:read', 'expenses:submit'], ttl: 300 });
    expect(decide(p, input({ requestedScopes: [], environment: 'staging' })).grantedScopes).toEqual(['expenses:read']);
    const none = policy('version: 1\nrules: [{ id: x, effect: allow, scopes: [other:scope] }]');
    expect(decide(none, input({ requestedScopes: [] }))).toMatchObject({ outcome: 'deny', reasons: ['no_matching_rule'], grantedScopes: [] });
    const denyAll = policy(`${base}\n  - { id: off, effect: deny, reason: maintenance }\n`);
    expect(decide(denyAll, input({ requestedScopes: [] }))).toMatchObject({ outcome: 'deny', reasons: ['maintenance'] });
  });

  it('fails closed on a requested scope the resource does not have', () => {
    const p = policy('version: 1\nrules: [{ id: all, effect: allow, scopes: "*" }]');
    expect(decide(p, input({ requestedScopes: ['nope'] }))).toMatchObject({ outcome: 'deny', reasons: ['unknown_scope'] });
  });

  it('limits rules to their resources', () => {
    const p = policy(base);
    const other = { identifier: 'https://other.example', scopes: [{ name: 'expenses:read', sensitivity: 'internal' as const, operation: 'read' as const }] };
    expect(decide(p, input({ resource: other })).outcome).toBe('deny');
  });
});

describe('delegation', () => {
  const p = policy(`
version: 1
rules:
  - id: read
    effect: allow
    scopes: [expenses:read]
  - id: planner-to-reader
    effect: allow
    scopes: [expenses:read]
    ttl: 60
    delegate_to: [expense-reader]
    when: { client: { id: planner } }
  - id: sub-agents-read-only
    effect: deny
    scopes: [expenses:submit]
    reason: delegated_write
    when: { delegated: true }
`);

  it('allows delegating to a listed client, with that rule only', () => {
    const d = decide(p, input({ client: { id: 'planner', grant_types: [] }, delegateTo: 'expense-reader' }));
    expect(d).toMatchObject({ outcome: 'allow', grantedScopes: ['expenses:read'], ttl: 60, matchedRules: ['planner-to-reader'] });
  });

  it('refuses delegating to a client no rule lists, or by a client the rule does not name', () => {
    expect(decide(p, input({ client: { id: 'planner', grant_types: [] }, delegateTo: 'someone-else' })))
      .toMatchObject({ outcome: 'deny', reasons: ['delegation_not_allowed'] });
    expect(decide(p, input({ client: { id: 'intruder', grant_types: [] }, delegateTo: 'expense-reader' })))
      .toMatchObject({ outcome: 'deny', reasons: ['delegation_not_allowed'] });
  });

  it('does not use delegation rules for ordinary requests, and matches delegated hops', () => {
    expect(decide(p, input()).matchedRules).toEqual(['read']);
    expect(decide(p, input({ requestedScopes: ['expenses:submit'], delegated: true }))).toMatchObject({ outcome: 'deny', reasons: ['delegated_write'] });
  });
});
