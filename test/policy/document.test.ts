import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicyDocument, validatePolicyDocument } from '../../src/policy/document.ts';
import { ValidationError } from '../../src/validate/schema.ts';

const rule = (extra: string) => `version: 1\nrules:\n  - id: r1\n    effect: allow\n    scopes: [a:read]\n  - id: r2\n${extra}\n`;
function refusal(text: string): ValidationError {
  try {
    parsePolicyDocument(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('policy was accepted');
}

describe('parsePolicyDocument', () => {
  it('accepts the example policy', () => {
    const doc = parsePolicyDocument(readFileSync('config/policies/default.yaml', 'utf8'));
    expect(doc.version).toBe(1);
    expect(doc.rules.length).toBeGreaterThanOrEqual(10);
  });

  it('accepts every documented condition', () => {
    const doc = parsePolicyDocument(rule(`    effect: allow
    description: all conditions
    scopes: "*"
    ttl: 60
    delegate_to: [agent-2]
    when:
      action: approve
      object_type: [Expense]
      object: { amount: { lt: 1000 }, currency: EUR, tags: [a, b] }
      purpose: [expense_approval]
      sensitivity: [public, internal]
      operation: read
      client: { id: agent-1, grant_types: { contains: client_credentials } }
      user: { department: finance, groups: { contains: managers } }
      issuer: https://idp.example
      environment: [production]
      delegated: true
      time: { days: [mon, fri], hours: "08:00-24:00", tz: Europe/Berlin }
      source_ip: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]`));
    expect(doc.rules[1]?.when?.time?.tz).toBe('Europe/Berlin');
  });

  const bad: Array<[string, string, string, string?]> = [
    ['an unknown top-level key', 'version: 1\nrules: []\nextra: 1\n', 'extra', 'is not a recognised field'],
    ['an unknown rule key', rule('    effect: allow\n    scopes: [a]\n    priority: 1'), 'rules.1.priority', 'is not a recognised field'],
    ['an unknown when key', rule('    effect: allow\n    scopes: [a]\n    when: { weather: sunny }'), 'rules.1.when.weather'],
    ['an unknown operator', rule('    effect: allow\n    scopes: [a]\n    when: { object: { amount: { between: [1, 2] } } }'), 'rules.1.when.object.amount.between', 'rules.1.when.object.amount.between is not a recognised operator'],
    ['two operators at once', rule('    effect: allow\n    scopes: [a]\n    when: { user: { level: { gt: 1, lt: 5 } } }'), 'rules.1.when.user.level', 'must have exactly one operator'],
    ['a non-comparable operand', rule('    effect: allow\n    scopes: [a]\n    when: { object: { amount: { lt: true } } }'), 'rules.1.when.object.amount.lt'],
    ['an unknown client attribute', rule('    effect: allow\n    scopes: [a]\n    when: { client: { colour: red } }'), 'rules.1.when.client.colour'],
    ['a duplicate id', 'version: 1\nrules:\n  - { id: same, effect: allow, scopes: [a] }\n  - { id: same, effect: allow, scopes: [b] }\n', 'rules.1.id', 'duplicates same'],
    ['a deny rule without a reason', rule('    effect: deny'), 'rules.1.reason', 'is required for deny rules'],
    ['a review rule without a reason', rule('    effect: review'), 'rules.1.reason'],
    ['an allow rule with a reason', rule('    effect: allow\n    scopes: [a]\n    reason: nope'), 'rules.1.reason'],
    ['an allow rule without scopes', rule('    effect: allow'), 'rules.1.scopes', 'is required for allow rules'],
    ['a ttl on a deny rule', rule('    effect: deny\n    reason: x\n    ttl: 60'), 'rules.1.ttl'],
    ['a bad reason code', rule('    effect: deny\n    reason: Not-A-Code'), 'rules.1.reason'],
    ['a bad id', 'version: 1\nrules:\n  - { id: Bad Id, effect: allow, scopes: [a] }\n', 'rules.0.id'],
    ['a wrong version', 'version: 2\nrules: []\n', 'version'],
    ['a ttl out of range', rule('    effect: allow\n    scopes: [a]\n    ttl: 5'), 'rules.1.ttl'],
    ['a bad effect', rule('    effect: maybe'), 'rules.1.effect'],
    ['a bad CIDR', rule('    effect: allow\n    scopes: [a]\n    when: { source_ip: [10.0.0.0/8, 10.0.0.0/33] }'), 'rules.1.when.source_ip.1', 'invalid prefix'],
    ['a mapped range', rule('    effect: allow\n    scopes: [a]\n    when: { source_ip: "::ffff:10.0.0.0/104" }'), 'rules.1.when.source_ip.0', 'IPv4-mapped'],
    ['a bad address', rule('    effect: allow\n    scopes: [a]\n    when: { source_ip: 10.0.0.300 }'), 'rules.1.when.source_ip.0'],
    ['a bad time zone', rule('    effect: allow\n    scopes: [a]\n    when: { time: { hours: "08:00-18:00", tz: Mars/Olympus_Mons } }'), 'rules.1.when.time.tz', 'IANA'],
    ['a bad hours format', rule('    effect: allow\n    scopes: [a]\n    when: { time: { hours: "8-18" } }'), 'rules.1.when.time.hours', 'HH:MM-HH:MM'],
    ['hours past midnight', rule('    effect: allow\n    scopes: [a]\n    when: { time: { hours: "08:00-25:00" } }'), 'rules.1.when.time.hours'],
    ['a bad day', rule('    effect: allow\n    scopes: [a]\n    when: { time: { days: [funday] } }'), 'rules.1.when.time.days.0'],
    ['a time without days or hours', rule('    effect: allow\n    scopes: [a]\n    when: { time: { tz: UTC } }'), 'rules.1.when.time'],
    ['a wrong type where a list is allowed', rule('    effect: allow\n    scopes: [a]\n    when: { action: 5 }'), 'rules.1.when.action', 'must be a value or a non-empty list'],
    ['a wrong item in a list', rule('    effect: allow\n    scopes: [a]\n    when: { action: [ok, 5] }'), 'rules.1.when.action.1'],
    ['an empty list', rule('    effect: allow\n    scopes: []'), 'rules.1.scopes'],
    ['a wildcard next to scopes', rule('    effect: allow\n    scopes: ["*", a]'), 'rules.1.scopes'],
    ['a relative resource', rule('    effect: allow\n    scopes: [a]\n    resource: expenses'), 'rules.1.resource'],
    ['a prototype attribute name', rule('    effect: allow\n    scopes: [a]\n    when: { user: { __proto__: x } }'), 'rules.1.when.user.__proto__'],
  ];
  it.each(bad)('refuses %s', (_what, text, field, message) => {
    const err = refusal(text);
    expect(err.field).toBe(field);
    expect(err.message.startsWith(field)).toBe(true);
    if (message) expect(err.message).toContain(message);
  });

  it('refuses a YAML alias bomb', () => {
    let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 9; i++) bomb += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
    expect(refusal(bomb).message).toMatch(/alias/i);
  });

  it('allows a few aliases for repeated lists', () => {
    const doc = parsePolicyDocument(`version: 1
rules:
  - { id: a, effect: allow, scopes: &reads [x:read, y:read] }
  - { id: b, effect: allow, scopes: *reads }
`);
    expect(doc.rules[1]?.scopes).toEqual(['x:read', 'y:read']);
  });

  it('refuses oversized input before parsing it', () => {
    const big = `version: 1\nrules: []\n# ${'x'.repeat(256 * 1024)}\n`;
    expect(refusal(big).message).toMatch(/larger than/);
  });

  it('refuses malformed YAML, duplicate keys, several documents and unknown tags', () => {
    expect(refusal('version: 1\nrules: [\n').message).toMatch(/not valid YAML/);
    expect(refusal('version: 1\nversion: 1\nrules: []\n').message).toMatch(/not valid YAML/);
    expect(refusal('version: 1\nrules: []\n---\nversion: 1\nrules: []\n').message).toMatch(/exactly one YAML document/);
    expect(refusal('').message).toMatch(/exactly one YAML document/);
    expect(refusal('version: 1\nrules: !!binary aGVsbG8=\n').message).toMatch(/not valid YAML: Unresolved tag/);
  });

  it('validates documents given as data too', () => {
    expect(() => validatePolicyDocument({ version: 1, rules: [{ id: 'x', effect: 'deny' }] })).toThrow(/reason is required/);
    expect(validatePolicyDocument({ version: 1, rules: [] }).rules).toEqual([]);
  });
});
