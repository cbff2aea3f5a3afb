import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parsePolicyDocument } from '../../src/policy/document.ts';
import { runFixtures } from '../../src/policy/fixtures.ts';
import { ValidationError } from '../../src/validate/schema.ts';

const policy = compilePolicy(parsePolicyDocument(`
version: 1
default_ttl: 300
rules:
  - { id: read, effect: allow, scopes: [docs:read], ttl: 60 }
  - { id: no-interns, effect: deny, reason: intern, when: { user: { role: intern } } }
`), 'fixture-test');

const header = `
resources:
  - identifier: https://docs.example
    scopes: [{ name: "docs:read", sensitivity: internal, operation: read }, { name: "docs:write", sensitivity: internal, operation: write }]
defaults:
  resource: https://docs.example
  client: { id: agent-1 }
  user: { issuer: https://idp.example, sub: alice }
  now: "2025-06-04T10:00:00Z"
cases:`;

describe('runFixtures', () => {
  it('passes cases whose expectations hold', () => {
    const report = runFixtures(policy, `${header}
  - name: reading is allowed
    input: { requestedScopes: ["docs:read"] }
    expect: { outcome: allow, granted_scopes: ["docs:read"], reasons: [], ttl: 60, matched_rules: [read] }
  - name: writing is not
    input: { requestedScopes: ["docs:write"] }
    expect: { outcome: deny, reasons: [no_matching_rule], ttl: null }
  - name: interns get nothing
    input:
      requestedScopes: ["docs:read"]
      user: { issuer: https://idp.example, sub: ivan, claims: { role: intern } }
    expect: { outcome: deny, reasons: [intern] }
  - name: an inline resource works too
    input:
      resource: { identifier: https://docs.example, scopes: [{ name: "docs:read", sensitivity: public, operation: read }] }
    expect: { outcome: allow, granted_scopes: ["docs:read"] }
`);
    expect(report).toEqual({ passed: 4, failed: [] });
  });

  it('reports each failing case with what was expected and what happened', () => {
    const report = runFixtures(policy, `${header}
  - name: wrong outcome
    input: { requestedScopes: ["docs:write"] }
    expect: { outcome: allow }
  - name: wrong reasons
    input: { requestedScopes: ["docs:write"] }
    expect: { outcome: deny, reasons: [something_else] }
  - name: wrong scopes
    input: { requestedScopes: ["docs:read"] }
    expect: { outcome: allow, granted_scopes: ["docs:read", "docs:write"] }
  - name: wrong ttl
    input: { requestedScopes: ["docs:read"] }
    expect: { outcome: allow, ttl: 300 }
  - name: right
    input: { requestedScopes: ["docs:read"] }
    expect: { outcome: allow }
`);
    expect(report.passed).toBe(1);
    expect(report.failed.map((f) => f.name)).toEqual(['wrong outcome', 'wrong reasons', 'wrong scopes', 'wrong ttl']);
    expect(report.failed[0]).toMatchObject({ expected: { outcome: 'allow' }, actual: { outcome: 'deny', reasons: ['no_matching_rule'], policyVersion: 'fixture-test' } });
  });

  it('refuses malformed fixture files, naming the field', () => {
    const refuse = (text: string, field: string | undefined) => {
      try {
        runFixtures(policy, text);
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).field).toBe(field);
        return;
      }
      throw new Error('fixtures were accepted');
    };
    refuse(`${header}\n  - { name: x, input: {}, expect: { outcome: maybe } }\n`, 'cases.0.expect.outcome');
    refuse(`${header}\n  - { name: x, input: { colour: red }, expect: { outcome: allow } }\n`, 'cases.0.input.colour');
    refuse(`${header}\n  - { name: x, input: { now: "yesterday" }, expect: { outcome: allow } }\n`, 'cases.0.input.now');
    refuse(`${header}\n  - { name: x, input: { resource: https://nowhere.example }, expect: { outcome: allow } }\n`, 'cases.0.input.resource');
    refuse('cases:\n  - { name: x, input: {}, expect: { outcome: allow } }\n', 'cases.0.input.resource');
    refuse('cases: []\n', 'cases');
  });

  it('runs the example policy against its fixtures', () => {
    const example = compilePolicy(parsePolicyDocument(readFileSync('config/policies/default.yaml', 'utf8')), 'default');
    const report = runFixtures(example, readFileSync('test/fixtures/policy/default.fixtures.yaml', 'utf8'));
    expect(report.failed).toEqual([]);
    expect(report.passed).toBeGreaterThanOrEqual(15);
  });
});
