import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { decide, type DecisionInput } from '../../src/policy/decide.ts';
import { parsePolicyDocument } from '../../src/policy/document.ts';

/** A policy with one allow rule carrying `when`; a request is allowed exactly when `when` holds. */
const allowWhen = (when: string) =>
  compilePolicy(parsePolicyDocument(`version: 1\nrules:\n  - id: r\n    effect: allow\n    scopes: "*"\n    when: ${when}\n`), 'v');
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  requestedScopes: ['docs:read'],
  resource: { identifier: 'https://docs.example', scopes: [{ name: 'docs:read', sensitivity: 'internal', operation: 'read' }] },
  client: { id: 'agent-1', name: 'Agent One', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'] },
  user: { issuer: 'https://idp.example', sub: 'alice', claims: {} },
  details: [],
  delegated: false,
  now: new Date('2025-06-04T10:00:00Z'),
  ...over,
});
const allowed = (p: ReturnType<typeof allowWhen>, over: Partial<DecisionInput> = {}) => decide(p, input(over)).outcome === 'allow';
const withObject = (object: Record<string, unknown>) => ({ details: [{ type: 'tool_call', action: 'read', object }] });
const withClaims = (claims: Record<string, unknown>) => ({ user: { issuer: 'https://idp.example', sub: 'alice', claims } });

describe('time windows', () => {
  const p = allowWhen('{ time: { days: [mon, tue, wed, thu, fri], hours: "08:00-18:00", tz: Europe/Berlin } }');

  it('is inside during Berlin business hours and outside after them', () => {
    expect(allowed(p, { now: new Date('2025-06-04T06:00:00Z') })).toBe(true); // Wed 08:00 CEST
    expect(allowed(p, { now: new Date('2025-06-04T05:59:00Z') })).toBe(false); // Wed 07:59 CEST
    expect(allowed(p, { now: new Date('2025-06-04T15:59:00Z') })).toBe(true); // 17:59
    expect(allowed(p, { now: new Date('2025-06-04T16:00:00Z') })).toBe(false); // 18:00, end is exclusive
  });

  it('reads the weekday in the rule time zone', () => {
    expect(allowed(p, { now: new Date('2025-06-07T07:00:00Z') })).toBe(false); // Saturday
    const tokyo = allowWhen('{ time: { days: [sat], tz: Asia/Tokyo } }');
    expect(allowed(tokyo, { now: new Date('2025-06-06T16:00:00Z') })).toBe(true); // Fri UTC, Sat 01:00 in Tokyo
    expect(allowed(tokyo, { now: new Date('2025-06-06T14:00:00Z') })).toBe(false); // Fri 23:00 in Tokyo
  });

  it('handles windows over midnight, UTC by default, and refuses an invalid now', () => {
    const night = allowWhen('{ time: { hours: "22:00-06:00" } }');
    expect(allowed(night, { now: new Date('2025-06-04T23:30:00Z') })).toBe(true);
    expect(allowed(night, { now: new Date('2025-06-04T05:59:00Z') })).toBe(true);
    expect(allowed(night, { now: new Date('2025-06-04T12:00:00Z') })).toBe(false);
    expect(allowed(night, { now: new Date('nonsense') })).toBe(false);
  });
});

describe('source IP ranges', () => {
  const p = allowWhen('{ source_ip: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7] }');

  it('matches IPv4 ranges and single addresses', () => {
    expect(allowed(p, { sourceIp: '10.200.1.1' })).toBe(true);
    expect(allowed(p, { sourceIp: '192.0.2.7' })).toBe(true);
    expect(allowed(p, { sourceIp: '192.0.2.8' })).toBe(false);
    expect(allowed(p, { sourceIp: '11.0.0.1' })).toBe(false);
  });

  it('matches IPv6 ranges', () => {
    expect(allowed(p, { sourceIp: '2001:db8:1::5' })).toBe(true);
    expect(allowed(p, { sourceIp: '2001:db9::5' })).toBe(false);
  });

  it('treats IPv4-mapped IPv6 addresses as IPv4', () => {
    expect(allowed(p, { sourceIp: '::ffff:10.1.2.3' })).toBe(true);
    expect(allowed(p, { sourceIp: '::ffff:0a01:0203' })).toBe(true);
    expect(allowed(p, { sourceIp: '0:0:0:0:0:ffff:10.1.2.3' })).toBe(true);
    expect(allowed(p, { sourceIp: '::ffff:11.1.2.3' })).toBe(false);
    const anyV6 = allowWhen('{ source_ip: "::/0" }');
    expect(allowed(anyV6, { sourceIp: '::ffff:10.1.2.3' })).toBe(false);
    expect(allowed(anyV6, { sourceIp: '2001:db8::1' })).toBe(true);
  });

  it('does not match a missing or malformed address', () => {
    expect(allowed(p, {})).toBe(false);
    expect(allowed(p, { sourceIp: '10.0.0.999' })).toBe(false);
    expect(allowed(p, { sourceIp: 'fe80::1%eth0' })).toBe(false);
  });
});

describe('object attribute operators', () => {
  const cases: Array<[string, Record<string, unknown>, boolean]> = [
    ['{ amount: 100 }', { amount: 100 }, true],
    ['{ amount: 100 }', { amount: '100' }, false],
    ['{ currency: { ne: USD } }', { currency: 'EUR' }, true],
    ['{ currency: { ne: USD } }', { currency: 'USD' }, false],
    ['{ amount: { lt: 1000 } }', { amount: 999.5 }, true],
    ['{ amount: { lt: 1000 } }', { amount: 1000 }, false],
    ['{ amount: { lt: 1000 } }', {}, false],
    ['{ amount: { lt: 1000 } }', { amount: '5' }, false],
    ['{ amount: { lte: 1000 } }', { amount: 1000 }, true],
    ['{ amount: { gt: 10 } }', { amount: 11 }, true],
    ['{ amount: { gt: 10 } }', { amount: 10 }, false],
    ['{ amount: { gte: 10 } }', { amount: 10 }, true],
    ['{ date: { gte: "2025-01-01" } }', { date: '2025-03-01' }, true],
    ['{ currency: [EUR, CHF] }', { currency: 'CHF' }, true],
    ['{ currency: { in: [EUR, CHF] } }', { currency: 'USD' }, false],
    ['{ currency: { nin: [USD] } }', { currency: 'EUR' }, true],
    ['{ currency: { nin: [USD] } }', { currency: 'USD' }, false],
    ['{ tags: { contains: travel } }', { tags: ['meals', 'travel'] }, true],
    ['{ tags: { contains: travel } }', { tags: 'travel' }, false],
    ['{ toString: { ne: x } }', {}, true], // only own attributes count, never the prototype's
  ];
  it.each(cases)('when.object %s against %j → %s', (cond, object, expected) => {
    expect(allowed(allowWhen(`{ object: ${cond} }`), withObject(object))).toBe(expected);
  });

  it('matches object_type and action of the detail', () => {
    const p = allowWhen('{ action: [read, list], object_type: Expense }');
    expect(allowed(p, { details: [{ type: 't', action: 'read', object: { type: 'Expense' } }] })).toBe(true);
    expect(allowed(p, { details: [{ type: 't', action: 'delete', object: { type: 'Expense' } }] })).toBe(false);
    expect(allowed(p, { details: [{ type: 't', action: 'read', object: { type: 'Invoice' } }] })).toBe(false);
  });
});

describe('who and where', () => {
  it('matches user claims, including list claims with contains', () => {
    const p = allowWhen('{ user: { department: finance, groups: { contains: managers }, "https://example.com/level": { gte: 3 } } }');
    const good = { department: 'finance', groups: ['staff', 'managers'], 'https://example.com/level': 4 };
    expect(allowed(p, withClaims(good))).toBe(true);
    expect(allowed(p, withClaims({ ...good, groups: ['staff'] }))).toBe(false);
    expect(allowed(p, withClaims({ ...good, department: 'hr' }))).toBe(false);
    expect(allowed(p, withClaims({ ...good, 'https://example.com/level': 2 }))).toBe(false);
  });

  it('matches the user sub, the issuer, the client, purpose and environment', () => {
    const p = allowWhen(`
      user: { sub: alice }
      issuer: https://idp.example
      client: { id: [agent-1, agent-2], name: Agent One }
      purpose: [expense_approval]
      environment: production`);
    const ok = { purpose: 'expense_approval', environment: 'production' };
    expect(allowed(p, ok)).toBe(true);
    expect(allowed(p, { ...ok, user: { issuer: 'https://other.example', sub: 'alice', claims: {} } })).toBe(false);
    expect(allowed(p, { ...ok, user: { issuer: 'https://idp.example', sub: 'bob', claims: { sub: 'alice' } } })).toBe(false);
    expect(allowed(p, { ...ok, client: { id: 'agent-3', name: 'Agent One', grant_types: [] } })).toBe(false);
    expect(allowed(p, { ...ok, environment: 'staging' })).toBe(false);
    expect(allowed(p, { environment: 'production' })).toBe(false);
  });

  it('prefers the detail purpose over the task purpose', () => {
    const p = allowWhen('{ purpose: expense_approval }');
    expect(allowed(p, { purpose: 'summarize', details: [{ type: 't', purpose: 'expense_approval' }] })).toBe(true);
    expect(allowed(p, { purpose: 'expense_approval', details: [{ type: 't', purpose: 'summarize' }] })).toBe(false);
    expect(allowed(p, { purpose: 'expense_approval', details: [{ type: 't' }] })).toBe(true);
  });

  it('matches delegated hops', () => {
    const p = allowWhen('{ delegated: false }');
    expect(allowed(p)).toBe(true);
    expect(allowed(p, { delegated: true })).toBe(false);
  });
});

describe('request kind and tasks', () => {
  it('tells a task start, a tool call and a delegation apart, and whether the request is in a task', () => {
    const task = allowWhen('{ request: task }');
    expect(allowed(task, { request: 'task' })).toBe(true);
    expect(allowed(task)).toBe(false); // a tool call by default
    const toolCall = allowWhen('{ request: [tool_call], in_task: true }');
    expect(allowed(toolCall, { inTask: true })).toBe(true);
    expect(allowed(toolCall, { inTask: false })).toBe(false);
    expect(allowed(toolCall, { request: 'task', inTask: true })).toBe(false);
    expect(() => allowWhen('{ request: start }')).toThrow();
    expect(() => allowWhen('{ in_task: "yes" }')).toThrow();
  });

  it('reads a task lifetime, one hour by default, within bounds', () => {
    expect(allowWhen('{ in_task: false }').taskTtl).toBe(3600);
    expect(compilePolicy(parsePolicyDocument('version: 1\ntask_ttl: 600\nrules: []\n'), 'v').taskTtl).toBe(600);
    expect(() => parsePolicyDocument('version: 1\ntask_ttl: 10\nrules: []\n')).toThrow(/task_ttl/);
    expect(() => parsePolicyDocument('version: 1\ntask_ttl: 86401\nrules: []\n')).toThrow(/task_ttl/);
  });
});
