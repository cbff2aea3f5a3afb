import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenRequest } from '../helpers/server.ts';
import { entryWithIntent } from '../helpers/ledger.ts';
import {
  ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, HR, IDP, JWT_TYPE, REPORTS, startWorld, TOKEN_EXCHANGE, type World,
} from '../helpers/world.ts';

// Every error the token-exchange grant answers today (DESIGN.md, "External contract", the error table):
// status, RFC code, a description a developer can act on, and never a token.

let w: World;
// The per-address token limit (60 burst) would otherwise answer 429 to a file this size.
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 10_000, per_second: 10_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

type Body = Record<string, unknown> & { error?: unknown; error_description?: unknown; access_token?: unknown; reasons?: unknown };

/** Asserts an OAuth error answer: status, code, a non-empty description (matching `phrase`), no token. */
async function expectError(res: Response, status: number, code: string, phrase?: RegExp): Promise<Body> {
  const text = await res.text();
  let body: Body;
  try {
    body = JSON.parse(text) as Body;
  } catch {
    throw new Error(`expected a JSON error body, got ${res.status}: ${text.slice(0, 300)}`);
  }
  expect({ status: res.status, error: body.error }, text.slice(0, 500)).toEqual({ status, error: code });
  expect(typeof body.error_description).toBe('string');
  expect((body.error_description as string).trim().length).toBeGreaterThan(0);
  if (phrase) expect(body.error_description).toMatch(phrase);
  expect(body).not.toHaveProperty('access_token');
  expect(body).not.toHaveProperty('refresh_token');
  expect(text).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/); // no JWT anywhere, not even echoed back
  return body;
}

const without = (params: Record<string, string | string[]>, ...names: string[]) => {
  const copy = { ...params };
  for (const n of names) delete copy[n];
  return copy;
};

async function issuedCount(): Promise<number> {
  const rows = await w.t.server.db('issued_tokens').count<Array<{ n: string | number }>>({ n: '*' });
  return Number(rows[0]?.n);
}

describe('invalid_request: malformed, missing or duplicated parameters', () => {
  it('refuses a request without subject_token', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken()), 'subject_token'));
    await expectError(res, 400, 'invalid_request', /subject_token/);
  });

  it('refuses an empty subject_token as missing', async () => {
    const res = await w.exchange('agent', exchangeParams(''));
    await expectError(res, 400, 'invalid_request', /subject_token/);
  });

  it('refuses subject_token sent twice', async () => {
    const a = await w.userToken();
    const b = await w.userToken({ sub: 'mallory' });
    const res = await w.exchange('agent', exchangeParams(a, { subject_token: [a, b] }));
    await expectError(res, 400, 'invalid_request', /subject_token.*twice|twice.*subject_token/);
  });

  it('refuses single-valued extras sent twice (intent, scope, authorization_details)', async () => {
    const t = await w.userToken();
    await expectError(await w.exchange('agent', exchangeParams(t, { intent: ['one reason', 'another reason'] })), 400, 'invalid_request', /intent/);
    await expectError(await w.exchange('agent', exchangeParams(t, { scope: ['expenses:read', 'expenses:submit'] })), 400, 'invalid_request', /scope/);
    const d = details('approve', { type: 'Expense', id: 'exp_1', amount: 10 });
    await expectError(await w.exchange('agent', exchangeParams(t, { scope: 'expenses:approve', authorization_details: [d, d] })), 400, 'invalid_request', /authorization_details/);
  });

  it('refuses a request without subject_token_type', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken()), 'subject_token_type'));
    await expectError(res, 400, 'invalid_request', /subject_token_type/);
  });

  it('refuses a subject_token_type that is not a known token type URI', async () => {
    const t = await w.userToken();
    for (const type of ['urn:ietf:params:oauth:token-type:bogus', 'access_token', 'https://example.com/token-type']) {
      const res = await w.exchange('agent', exchangeParams(t, { subject_token_type: type }));
      await expectError(res, 400, 'invalid_request', /subject_token_type.*not a known token type/);
    }
  });

  it('refuses a known but unsupported subject_token_type (id_token) and says so', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }));
    await expectError(res, 400, 'invalid_request', /id_token is not supported/);
  });

  it('refuses actor_token without actor_token_type, and the type without the token', async () => {
    const t = await w.userToken();
    const actor = await w.userToken({ sub: 'agent' });
    await expectError(await w.exchange('agent', exchangeParams(t, { actor_token: actor })), 400, 'invalid_request', /actor_token and actor_token_type/);
    await expectError(await w.exchange('agent', exchangeParams(t, { actor_token_type: JWT_TYPE })), 400, 'invalid_request', /actor_token and actor_token_type/);
  });

  it('refuses an actor_token_type that is not a known token type URI', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: await w.userToken(), actor_token_type: 'urn:example:nope' }));
    await expectError(res, 400, 'invalid_request', /actor_token_type/);
  });

  it('refuses a requested_token_type it cannot issue', async () => {
    const t = await w.userToken();
    for (const type of ['urn:ietf:params:oauth:token-type:refresh_token', 'urn:ietf:params:oauth:token-type:id_token', 'urn:example:whatever']) {
      const res = await w.exchange('agent', exchangeParams(t, { requested_token_type: type }));
      await expectError(res, 400, 'invalid_request', /requested_token_type/);
    }
  });

  it('refuses a request without intent (required by default)', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken()), 'intent'));
    await expectError(res, 400, 'invalid_request', /intent is required/);
  });

  it('refuses an intent with control characters (BEL, NUL, ESC, DEL)', async () => {
    const t = await w.userToken();
    for (const intent of ['Approve it\u0007 now', 'List reports\u0000; then delete', 'Read \u001b[31mred\u001b[0m', 'tab\u007Fdel']) {
      const res = await w.exchange('agent', exchangeParams(t, { intent }));
      await expectError(res, 400, 'invalid_request', /intent must not contain control/);
    }
  });

  it('refuses an intent with bidirectional overrides or isolates', async () => {
    const t = await w.userToken();
    for (const intent of ['Summarize \u202Esnoitcasnart\u202C weekly', 'Read \u2066hidden\u2069 text']) {
      const res = await w.exchange('agent', exchangeParams(t, { intent }));
      await expectError(res, 400, 'invalid_request', /bidirectional/);
    }
  });

  it('refuses an intent longer than 1000 characters, counted as characters not bytes', async () => {
    const t = await w.userToken();
    await expectError(await w.exchange('agent', exchangeParams(t, { intent: 'a'.repeat(1001) })), 400, 'invalid_request', /at most 1000 characters/);
    // 1000 characters of 4 UTF-8 bytes each are still 1000 characters: accepted.
    const ok = await w.exchange('agent', exchangeParams(t, { intent: '📄'.repeat(1000) }));
    expect(ok.status).toBe(200);
  });

  it('refuses a blank intent', async () => {
    const t = await w.userToken();
    for (const intent of ['   ', ' \t ']) {
      // A tab is a control character: refused at the edge before the intent is read.
      await expectError(await w.exchange('agent', exchangeParams(t, { intent })), 400, 'invalid_request', /intent must not be blank|intent is required|intent must not contain control characters/);
    }
  });

  it('refuses an intent that is not well-formed Unicode (a lone surrogate)', async () => {
    // URLSearchParams would replace a lone surrogate; percent-encode the raw CESU bytes by hand instead.
    const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...without(exchangeParams(await w.userToken()), 'intent') as Record<string, string> });
    const res = await fetch(`${w.t.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds.agent!.join(':')).toString('base64')}` },
      body: `${form.toString()}&intent=surrogate-abc%ED%A0%80def`,
    });
    // Invalid UTF-8 may be decoded to U+FFFD by the body parser (then the intent is acceptable text) or
    // refused; either way what reaches the ledger is well-formed text.
    if (res.status !== 200) {
      await expectError(res, 400, 'invalid_request', /intent/);
      return;
    }
    const entry = (await entryWithIntent(w.t.server.db, 'exchange.granted', (i) => i.startsWith('surrogate-abc')))!;
    expect(entry).toBeTruthy();
    expect((entry.payload.intent as string).isWellFormed()).toBe(true);
    expect(entry.payload.intent).toMatch(/^surrogate-abc\uFFFD+def$/);
  });

  it('refuses a subject_token larger than 16 KiB before looking at it', async () => {
    const big = `${await w.userToken()}${'A'.repeat(16_384)}`;
    await expectError(await w.exchange('agent', exchangeParams(big)), 400, 'invalid_request', /subject_token must be at most 16384 bytes/);
  });

  it('refuses an actor_token larger than 16 KiB', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: 'A'.repeat(16_385), actor_token_type: JWT_TYPE }));
    await expectError(res, 400, 'invalid_request', /actor_token must be at most 16384 bytes/);
  });
});

describe('invalid_target: the resource or audience', () => {
  it('refuses a request with neither resource nor audience', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken()), 'resource'));
    await expectError(res, 400, 'invalid_target', /resource or audience is required/);
  });

  it('refuses a request with neither resource nor audience even when authorization_details are sent', async () => {
    const d = details('approve', { type: 'Expense', id: 'exp_2', amount: 10 });
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: d }), 'resource'));
    await expectError(res, 400, 'invalid_target', /resource or audience is required/);
  });

  it('refuses two different resources', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: [EXPENSES, HR] }));
    await expectError(res, 400, 'invalid_target', /exactly one/);
  });

  it('refuses a resource together with a different audience', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { audience: HR }));
    await expectError(res, 400, 'invalid_target', /exactly one/);
  });

  it('refuses two different audiences', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken(), { audience: [EXPENSES, 'sub-agent'] }), 'resource'));
    await expectError(res, 400, 'invalid_target', /exactly one/);
  });

  it('accepts the same target named as both resource and audience', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { audience: EXPENSES }));
    expect(res.status).toBe(200);
  });

  it('refuses an unknown resource, and an unknown audience', async () => {
    const t = await w.userToken();
    await expectError(await w.exchange('agent', exchangeParams(t, { resource: 'https://unknown.example' })), 400, 'invalid_target', /not a registered resource/);
    await expectError(await w.exchange('agent', without(exchangeParams(t, { audience: 'nobody' }), 'resource')), 400, 'invalid_target', /not a registered resource/);
  });

  it('refuses an audience that is a client but not an agent (a resource server, a client_credentials client)', async () => {
    const t = await w.userToken();
    for (const audience of ['expenses-rs', 'batch']) {
      const res = await w.exchange('agent', without(exchangeParams(t, { audience }), 'resource'));
      await expectError(res, 400, 'invalid_target', /not a registered resource or agent/);
    }
  });

  it('refuses a resource with a fragment', async () => {
    for (const resource of [`${EXPENSES}#frag`, `${EXPENSES}/#`]) {
      const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource }));
      await expectError(res, 400, 'invalid_target', /fragment/);
    }
  });

  it('refuses a resource that is not an absolute URI', async () => {
    for (const resource of ['expenses.example', '/relative/path', 'not a uri']) {
      const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource }));
      await expectError(res, 400, 'invalid_target', /absolute URI/);
    }
  });

  it('treats SQL metacharacters in audience as an unknown target, and the registry survives', async () => {
    const t = await w.userToken();
    for (const audience of ["agent' OR '1'='1", "x'; DROP TABLE clients; --", 'agent"--', `${EXPENSES}' OR 1=1 --`]) {
      const res = await w.exchange('agent', without(exchangeParams(t, { audience }), 'resource'));
      await expectError(res, 400, 'invalid_target', /not a registered resource or agent/);
    }
    expect(await w.t.server.db('clients').where({ client_id: 'agent' }).first()).toBeTruthy();
    expect((await w.exchange('agent', exchangeParams(t))).status).toBe(200);
  });

  it('refuses an overlong audience', async () => {
    const res = await w.exchange('agent', without(exchangeParams(await w.userToken(), { audience: `https://a.example/${'x'.repeat(3000)}` }), 'resource'));
    await expectError(res, 400, 'invalid_target');
  });
});

describe('invalid_scope: never more than subject ∩ client ∩ resource', () => {
  it('refuses a scope beyond the subject token\'s scopes', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ scope: 'expenses:read' }), { scope: 'expenses:read expenses:approve' }));
    await expectError(res, 400, 'invalid_scope', /\(expenses:approve: the subject token does not carry it\)/);
  });

  it('refuses a scope when the subject token carries no scope at all', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ scope: undefined })));
    await expectError(res, 400, 'invalid_scope', /\(expenses:read: the subject token does not carry it\)/);
  });

  it('refuses a scope beyond the client\'s registered scopes', async () => {
    // other-agent is registered for expenses:read only; the user has expenses:submit.
    const d = details('submit', { type: 'Expense', id: 'exp_3', amount: 5 });
    const res = await w.exchange('other-agent', exchangeParams(await w.userToken(), { scope: 'expenses:submit', authorization_details: d }));
    await expectError(res, 400, 'invalid_scope', /\(expenses:submit: client other-agent may not be granted it\)/);
  });

  it('refuses a scope the resource does not have', async () => {
    const t = await w.userToken();
    await expectError(await w.exchange('agent', exchangeParams(t, { scope: 'hr:read' })), 400, 'invalid_scope', /\(hr:read: https:\/\/expenses\.example has no such scope\)/);
    await expectError(await w.exchange('agent', exchangeParams(t, { scope: 'expenses:delete' })), 400, 'invalid_scope', /expenses:delete: .*https:\/\/expenses\.example has no such scope/);
  });

  it('refuses a malformed scope string', async () => {
    const t = await w.userToken();
    for (const scope of ['expenses:read  expenses:submit', ' expenses:read', 'expenses:read ', 'expenses:"read"', 'expenses\\read', 'expénses:read']) {
      const res = await w.exchange('agent', exchangeParams(t, { scope }));
      // Some are caught by oidc-provider's own scope check first ("contains invalid characters").
      await expectError(res, 400, 'invalid_scope', /scope (is malformed|contains invalid characters)/);
    }
    // A control character is refused at the edge, for every parameter alike.
    await expectError(await w.exchange('agent', exchangeParams(t, { scope: 'expenses:read\texpenses:submit' })), 400, 'invalid_request', /scope must not contain control characters/);
  });
});

describe('invalid_authorization_details: RFC 9396 details against the declared types', () => {
  const approve = (extra: Record<string, string | string[]>) => exchangeParams('', { scope: 'expenses:approve', ...extra });
  const send = async (authorization_details: string) => w.exchange('agent', { ...approve({ authorization_details }), subject_token: await w.userToken() });

  it('refuses details that are not JSON', async () => {
    await expectError(await send('not json'), 400, 'invalid_authorization_details', /not valid JSON/);
    await expectError(await send('[{"type":"tool_call",'), 400, 'invalid_authorization_details', /not valid JSON/);
  });

  it('refuses details that are not an array', async () => {
    await expectError(await send('{"type":"tool_call","action":"approve"}'), 400, 'invalid_authorization_details', /non-empty JSON array/);
    await expectError(await send('"tool_call"'), 400, 'invalid_authorization_details', /non-empty JSON array/);
    await expectError(await send('null'), 400, 'invalid_authorization_details', /non-empty JSON array/);
  });

  it('refuses an empty array', async () => {
    await expectError(await send('[]'), 400, 'invalid_authorization_details', /non-empty JSON array/);
  });

  it('refuses entries that are not objects or have no type', async () => {
    await expectError(await send('["tool_call"]'), 400, 'invalid_authorization_details', /\[0\] must be an object/);
    await expectError(await send('[{"action":"approve"}]'), 400, 'invalid_authorization_details', /\[0\]\.type is required/);
  });

  it('refuses an undeclared type', async () => {
    await expectError(await send('[{"type":"payment_initiation","instructedAmount":{"amount":"1"}}]'), 400, 'invalid_authorization_details', /not a declared type/);
    // Inherited property names are not declared types either.
    await expectError(await send('[{"type":"__proto__"}]'), 400, 'invalid_authorization_details', /not a declared type/);
    await expectError(await send('[{"type":"constructor"}]'), 400, 'invalid_authorization_details', /not a declared type/);
  });

  it('refuses a schema violation: an unknown property', async () => {
    const d = JSON.stringify([{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: 'exp_4', amount: 10 }, admin: true }]);
    await expectError(await send(d), 400, 'invalid_authorization_details', /authorization_details\[0\]/);
  });

  it('refuses a schema violation: the wrong type of amount', async () => {
    await expectError(await send(details('approve', { type: 'Expense', id: 'exp_5', amount: '10' })), 400, 'invalid_authorization_details', /amount/);
  });

  it('refuses a schema violation: a missing required action', async () => {
    await expectError(await send('[{"type":"tool_call","object":{"type":"Expense","id":"exp_6"}}]'), 400, 'invalid_authorization_details', /action/);
  });

  it('refuses oversized details (more than 16 KiB)', async () => {
    const d = details('approve', { type: 'Expense', id: 'exp_7', owner: 'x'.repeat(200) });
    const many = JSON.stringify(Array.from({ length: 100 }, () => JSON.parse(d)[0]));
    expect(Buffer.byteLength(many)).toBeGreaterThan(16_384);
    await expectError(await send(many), 400, 'invalid_authorization_details', /at most 16384 bytes/);
  });

  it('refuses more than 20 entries', async () => {
    const many = JSON.stringify(Array.from({ length: 21 }, (_, i) => ({ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: `e${i}`, amount: 1 } })));
    await expectError(await send(many), 400, 'invalid_authorization_details', /at most 20/);
  });
});

describe('access_denied: policy decisions with machine-readable reasons', () => {
  it('answers the deny rule\'s reason (approve amount ≥ 1000 → approval_limit_exceeded), records it, issues nothing', async () => {
    const before = await issuedCount();
    const intent = `Approve the big expense ${Date.now()}`;
    const d = details('approve', { type: 'Expense', id: 'exp_big', amount: 1000 }, 'expense_approval');
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: d, intent }));
    const body = await expectError(res, 400, 'access_denied', /approval_limit_exceeded/);
    expect(body.reasons).toEqual(['approval_limit_exceeded']);
    expect(await issuedCount()).toBe(before);

    // The denied decision is in the ledger, committed before the answer.
    const entry = (await entryWithIntent(w.t.server.db, 'exchange.denied', (i) => i === intent))!;
    expect(entry).toBeTruthy();
    expect(entry.actor).toBe('agent');
    expect(entry.payload).toMatchObject({
      decision: 'denied', error: 'access_denied', reasons: ['approval_limit_exceeded'], client_id: 'agent', audience: EXPENSES,
      requested_scope: ['expenses:approve'], granted_scope: [], user: { issuer: IDP, sub: 'alice' }, intent, policy_version: '1',
      authorization_details: JSON.parse(d),
    });
    expect(entry.payload.matched_rules).toContain('expenses-approve-large');
  });

  it('denies by default when no rule allows (expenses:submit without details → no_matching_rule)', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:submit' }));
    const body = await expectError(res, 400, 'access_denied', /no_matching_rule/);
    expect(body.reasons).toEqual(['no_matching_rule']);
  });

  it('denies a summarize purpose on restricted HR data (restricted_data_for_summary)', async () => {
    const d = details('read', { type: 'Employee', id: 'emp_7' }, 'summarize');
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: HR, scope: 'hr:read', authorization_details: d }));
    const body = await expectError(res, 400, 'access_denied', /restricted_data_for_summary/);
    expect(body.reasons).toEqual(['restricted_data_for_summary']);
    // The same read without that purpose is allowed: the reason is the purpose, not the resource.
    const ok = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: HR, scope: 'hr:read' }));
    expect(ok.status).toBe(200);
  });

  it('denies reports:read outside 10.0.0.0/8 (tests come from 127.0.0.1)', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: REPORTS, scope: 'reports:read' }));
    const body = await expectError(res, 400, 'access_denied', /no_matching_rule/);
    expect(body.reasons).toEqual(['no_matching_rule']);
  });

  it('does not let a client claim an office address with X-Forwarded-For (TRUST_PROXY is off)', async () => {
    const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken(), { resource: REPORTS, scope: 'reports:read' }) as Record<string, string> });
    const res = await fetch(`${w.t.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(w.creds.agent!.join(':')).toString('base64')}`,
        'x-forwarded-for': '10.1.2.3',
        'x-real-ip': '10.1.2.3',
        forwarded: 'for=10.1.2.3',
      },
      body: form,
    });
    const body = await expectError(res, 400, 'access_denied');
    expect(body.reasons).toEqual(['no_matching_rule']);
  });

  it('records every denial reason in the ledger (exchange.denied)', async () => {
    const intent = `Summarize the HR files ${Date.now()}`;
    const d = details('read', { type: 'Employee', id: 'emp_8' }, 'summarize');
    await expectError(await w.exchange('agent', exchangeParams(await w.userToken(), { resource: HR, scope: 'hr:read', authorization_details: d, intent })), 400, 'access_denied');
    const entry = (await entryWithIntent(w.t.server.db, 'exchange.denied', (i) => i === intent))!;
    expect(entry?.payload).toMatchObject({ error: 'access_denied', reasons: ['restricted_data_for_summary'], audience: HR });
    expect(entry.payload.matched_rules).toContain('no-restricted-for-summaries');
  });

  it('records a refused target and a refused scope as denials too', async () => {
    const intent1 = `Unknown target ${Date.now()}`;
    await expectError(await w.exchange('agent', exchangeParams(await w.userToken(), { resource: 'https://nowhere.example', intent: intent1 })), 400, 'invalid_target');
    const e1 = (await entryWithIntent(w.t.server.db, 'exchange.denied', (i) => i === intent1))!;
    expect(e1?.payload).toMatchObject({ error: 'invalid_target', audience: 'https://nowhere.example', decision: 'denied' });

    const intent2 = `Too much scope ${Date.now()}`;
    await expectError(await w.exchange('agent', exchangeParams(await w.userToken({ scope: 'expenses:read' }), { scope: 'expenses:approve', intent: intent2 })), 400, 'invalid_scope');
    const e2 = (await entryWithIntent(w.t.server.db, 'exchange.denied', (i) => i === intent2))!;
    expect(e2?.payload).toMatchObject({ error: 'invalid_scope', requested_scope: ['expenses:approve'], granted_scope: [] });
  });
});

describe('client authentication and grant permission', () => {
  it('answers unauthorized_client to a client not registered for token exchange (batch)', async () => {
    const res = await w.exchange('batch', exchangeParams(await w.userToken()));
    await expectError(res, 400, 'unauthorized_client', /token-exchange/);
  });

  it('answers unauthorized_client to a resource-server client using token exchange', async () => {
    const res = await w.exchange('expenses-rs', exchangeParams(await w.userToken()));
    await expectError(res, 400, 'unauthorized_client');
  });

  it('answers 401 invalid_client to a wrong secret', async () => {
    const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) }, ['agent', 'not-the-secret']);
    // RFC 6749 §5.2: a client that tried HTTP Basic gets 401 with a WWW-Authenticate challenge.
    expect(res.headers.get('www-authenticate') ?? '').toMatch(/^Basic /);
    await expectError(res, 401, 'invalid_client');
  });

  it('answers 401 invalid_client to an unknown client', async () => {
    const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) }, ['no-such-agent', 'whatever']);
    await expectError(res, 401, 'invalid_client');
  });

  // RFC 6749 §5.2: "no client authentication included" is invalid_client; DESIGN.md: client authentication failed → 401.
  it('answers 401 invalid_client to a request with no client authentication at all', async () => {
    const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) });
    await expectError(res, 401, 'invalid_client');
  });

  it('answers 401 invalid_client, not a 500, to a client_id full of SQL metacharacters', async () => {
    const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken()) }, ["agent' OR '1'='1", 'x']);
    await expectError(res, 401, 'invalid_client');
  });

  it('authenticates the client before reading the exchange parameters', async () => {
    // A wrong secret with a malformed request is a client authentication failure, not a parameter error.
    const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE }, ['agent', 'wrong']);
    await expectError(res, 401, 'invalid_client');
  });
});
