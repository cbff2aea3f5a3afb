import path from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceVerifier, ResourceAuthError } from '@intentgate/resource';
import { holder, proof, type Holder } from '../helpers/dpop.ts';
import { reviewerToken } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, HR, IDP, REPORTS, startWorld, type World } from '../helpers/world.ts';

const TT_TASK = 'urn:intentgate:token-type:task';

let w: World;
let reviewer: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/tasks.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  reviewer = await reviewerToken(w.t, 'https://idp.test', 'carol');
});
afterAll(async () => { await w?.t.stop(); });

const SUMMARY_DETAILS = [
  { type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' }, purpose: 'summarize' },
  { type: 'tool_call', action: 'read', object: { type: 'Expense' }, purpose: 'summarize' },
];
const APPROVAL_DETAILS = [
  { type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', currency: 'EUR', amount: 500 }, purpose: 'expense_approval' },
];

interface TaskAnswer { access_token: string; issued_token_type: string; token_type: string; expires_in: number; scope: string; task: string; authorization_details?: unknown }

function taskParams(userToken: string, extra: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return {
    subject_token: userToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    requested_token_type: TT_TASK,
    resource: EXPENSES,
    scope: 'expenses:read',
    intent: "Summarise this week's expenses for Alice",
    authorization_details: JSON.stringify(SUMMARY_DETAILS),
    ...extra,
  };
}

async function startTask(extra: Record<string, string | string[]> = {}, sub = 'alice', clientId = 'agent', headers?: Record<string, string>): Promise<TaskAnswer> {
  const res = await w.exchange(clientId, taskParams(await w.userToken({ sub }), extra), headers);
  const body = await res.json();
  if (res.status !== 200) throw new Error(`expected a task, got ${res.status} ${JSON.stringify(body)}`);
  return body as TaskAnswer;
}

function toolCall(taskToken: string, extra: Record<string, string | string[]> = {}, clientId = 'agent', headers?: Record<string, string>): Promise<Response> {
  return w.exchange(clientId, {
    subject_token: taskToken, subject_token_type: TT_TASK, resource: EXPENSES, scope: 'expenses:read', intent: 'List the expenses to summarise',
    authorization_details: JSON.stringify([{ type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' } }]),
    ...extra,
  }, headers);
}

async function granted(res: Response): Promise<{ access_token: string; token_type: string; scope: string; authorization_details?: unknown }> {
  const body = await res.json();
  if (res.status !== 200) throw new Error(`expected a token, got ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function refused(res: Response, error: string): Promise<Record<string, unknown>> {
  const body = await res.json() as Record<string, unknown>;
  expect(res.status, JSON.stringify(body)).toBe(400);
  expect(body.error, JSON.stringify(body)).toBe(error);
  return body;
}

async function introspect(token: string, rs = 'expenses-rs'): Promise<Record<string, unknown>> {
  const res = await fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds[rs]!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  return res.json() as Promise<Record<string, unknown>>;
}

async function view(task: string): Promise<Record<string, any>> {
  const res = await w.t.admin('GET', `/admin/api/tasks/${task}`);
  expect(res.status).toBe(200);
  return res.json() as Promise<Record<string, any>>;
}

describe('starting a task', () => {
  it('answers a task token: N_A, the task id, the policy\'s task lifetime, signed with its own typ and intentgate as audience', async () => {
    const t = await startTask();
    expect(t).toMatchObject({ issued_token_type: TT_TASK, token_type: 'N_A', scope: 'expenses:read', authorization_details: SUMMARY_DETAILS });
    expect(t.task).toMatch(/^tsk_/);
    expect(t.expires_in).toBeGreaterThan(1700);
    expect(t.expires_in).toBeLessThanOrEqual(1800); // task_ttl of the policy
    expect(decodeProtectedHeader(t.access_token).typ).toBe('task+jwt');
    expect(decodeJwt(t.access_token)).toMatchObject({ iss: w.t.issuer, aud: w.t.issuer, sub: 'alice', client_id: 'agent', task: t.task, resources: [EXPENSES] });
    const row = await w.t.server.db('issued_tokens').where({ jti: decodeJwt(t.access_token).jti }).first();
    expect(row).toMatchObject({ kind: 'task', task: t.task, client_id: 'agent', status: 'active' });
    const [entry] = (await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.granted&task=${t.task}`)).json() as { items: Array<{ payload: Record<string, unknown> }> }).items;
    expect(entry!.payload).toMatchObject({ token_kind: 'task', resources: [EXPENSES], audience: w.t.issuer, granted_scope: ['expenses:read'] });
  });

  it('fails closed: no task token, no task row, when the ledger cannot record it', async () => {
    const db = w.t.server.db;
    const [tokens, tasks] = [await db('issued_tokens').count({ n: '*' }).first(), await db('tasks').count({ n: '*' }).first()];
    await db.raw(`CREATE FUNCTION refuse_task_ledger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger is read-only'; END $$`);
    await db.raw('CREATE TRIGGER refuse_task_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION refuse_task_ledger()');
    try {
      const res = await w.exchange('agent', taskParams(await w.userToken()));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).not.toHaveProperty('access_token');
      expect(await db('issued_tokens').count({ n: '*' }).first()).toEqual(tokens);
      expect(await db('tasks').count({ n: '*' }).first()).toEqual(tasks);
    } finally {
      await db.raw('DROP TRIGGER refuse_task_ledger ON ledger_entries');
      await db.raw('DROP FUNCTION refuse_task_ledger()');
    }
  });

  it('never outlives the user\'s token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await w.exchange('agent', taskParams(await w.userToken({ exp: now + 90 })));
    const t = await res.json() as TaskAnswer;
    expect(res.status).toBe(200);
    expect(decodeJwt(t.access_token).exp).toBeLessThanOrEqual(now + 90);
  });

  it('spans several resources (only a task may), and each must be registered', async () => {
    const t = await startTask({ resource: [EXPENSES, REPORTS], scope: 'expenses:read reports:read' });
    expect(t.scope.split(' ').sort()).toEqual(['expenses:read', 'reports:read']);
    expect((await view(t.task)).ceiling).toMatchObject({ resources: [EXPENSES, REPORTS] });
    await refused(await w.exchange('agent', taskParams(await w.userToken(), { resource: [EXPENSES, 'https://unknown.example'] })), 'invalid_target');
    // A tool-call token, as before, has exactly one target.
    const two = await w.exchange('agent', {
      subject_token: await w.userToken(), subject_token_type: ACCESS_TOKEN_TYPE, resource: [EXPENSES, REPORTS], scope: 'expenses:read', intent: 'Two at once',
    });
    expect((await refused(two, 'invalid_target')).error_description).toMatch(/only a task may name several/);
    // A scope must belong to a resource of the task, and every resource needs one.
    await refused(await w.exchange('agent', taskParams(await w.userToken(), { scope: 'expenses:read hr:read' })), 'invalid_scope');
    await refused(await w.exchange('agent', taskParams(await w.userToken(), { resource: [EXPENSES, REPORTS], scope: 'expenses:read' })), 'invalid_scope');
  });

  it('decides each scope with each detail: a task of several tools, each with its own scope', async () => {
    const tools = [
      { type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' } },
      { type: 'tool_call', tool: 'submit_expense', action: 'submit', object: { type: 'Expense' } },
      { type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', amount: 900 } },
    ];
    const t = await startTask({ scope: 'expenses:read expenses:submit expenses:approve', authorization_details: JSON.stringify(tools), intent: 'Handle the expenses' });
    expect(t.scope).toBe('expenses:read expenses:submit expenses:approve');
    const submit = await granted(await toolCall(t.access_token, { scope: 'expenses:submit', authorization_details: JSON.stringify([{ ...tools[1], object: { type: 'Expense', amount: 12 } }]) }));
    expect(submit.scope).toBe('expenses:submit');
    // A scope that none of the task's details may use is refused at the start.
    const idle = await w.exchange('agent', taskParams(await w.userToken(), { scope: 'expenses:read expenses:submit', authorization_details: JSON.stringify([tools[0]]) }));
    expect(await refused(idle, 'access_denied')).toMatchObject({ reasons: ['no_matching_rule'] });
  });

  it('takes an audience only when it is the agent itself', async () => {
    const self = await w.exchange('agent', taskParams(await w.userToken(), { audience: 'agent' }));
    expect(self.status).toBe(200);
    await refused(await w.exchange('agent', taskParams(await w.userToken(), { audience: 'sub-agent' })), 'invalid_target');
    await refused(await w.exchange('agent', taskParams(await w.userToken(), { resource: [], audience: 'agent' })), 'invalid_target');
  });

  it('is decided by policy, which tells a task request from a tool call', async () => {
    const res = await w.exchange('agent', taskParams(await w.userToken(), {
      resource: REPORTS, scope: 'reports:read', authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', purpose: 'forbidden_purpose' }]),
    }));
    expect(await refused(res, 'access_denied')).toMatchObject({ reasons: ['reports_not_for_tasks'] });
    // The same details in a tool call are not a task request: that rule does not apply.
    const direct = await w.exchange('agent', {
      subject_token: await w.userToken(), subject_token_type: ACCESS_TOKEN_TYPE, resource: REPORTS, scope: 'reports:read', intent: 'Read a report',
      authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', purpose: 'forbidden_purpose' }]),
    });
    expect(direct.status).toBe(200);
    // A summarising task that names restricted data is refused at its start (nothing to suspend yet).
    const hr = await w.exchange('agent', taskParams(await w.userToken(), { resource: HR, scope: 'hr:read' }));
    expect(await refused(hr, 'access_denied')).toMatchObject({ reasons: ['restricted_data_for_summary'] });
  });

  it('is started from a user\'s token only, and its token is presented as the task type only', async () => {
    const t = await startTask();
    const fromTask = await w.exchange('agent', taskParams(t.access_token, { subject_token_type: TT_TASK }));
    await refused(fromTask, 'invalid_request');
    const access = await granted(await toolCall(t.access_token));
    await refused(await w.exchange('agent', taskParams(access.access_token)), 'invalid_request');
    // The task token as an access token, an access token or a user's token as a task token: refused.
    await refused(await toolCall(t.access_token, { subject_token_type: ACCESS_TOKEN_TYPE }), 'invalid_request');
    await refused(await toolCall(access.access_token), 'invalid_request');
    await refused(await toolCall(await w.userToken()), 'invalid_request');
    await refused(await w.exchange('agent', { ...taskParams(await w.userToken()), actor_token: t.access_token, actor_token_type: TT_TASK }), 'invalid_request');
  });
});

describe('tool calls in a task', () => {
  it('three tool calls share the task id and its purpose; each is a child of the task token', async () => {
    const t = await startTask();
    const taskJti = decodeJwt(t.access_token).jti;
    const tokens = [];
    for (let i = 0; i < 3; i++) tokens.push(await granted(await toolCall(t.access_token, { intent: `Tool call ${i + 1}` })));
    for (const token of tokens) {
      const claims = decodeJwt(token.access_token);
      expect(claims).toMatchObject({ task: t.task, aud: EXPENSES, client_id: 'agent', act: { sub: 'agent' }, scope: 'expenses:read' });
      // The purpose is carried from the task's detail that covers the call.
      expect(claims.authorization_details).toEqual([{ type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' }, purpose: 'summarize' }]);
      expect(claims.exp).toBeLessThanOrEqual(decodeJwt(t.access_token).exp!);
      expect(await introspect(token.access_token)).toMatchObject({ active: true, task: t.task });
      expect((await w.t.server.db('issued_tokens').where({ jti: claims.jti }).first()).parent_jti).toBe(taskJti);
    }
    const v = await view(t.task);
    expect(v.tokens.map((x: { kind: string }) => x.kind)).toEqual(['task', 'access', 'access', 'access']);
    expect(v.counters).toMatchObject({ granted: 4, live_tokens: 4 });
  });

  it('a drift on the third call suspends the task: earlier tokens go inactive, the task token is refused, and the review lifts it', async () => {
    const t = await startTask({}, 'bob');
    const first = await granted(await toolCall(t.access_token));
    const second = await granted(await toolCall(t.access_token, { intent: 'Read one expense', authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', object: { type: 'Expense', id: 'exp_7' } }]) }));
    // The summarising task reaches for restricted HR data: outside its resources, and a suspend_task rule.
    const drift = await toolCall(t.access_token, {
      resource: HR, scope: 'hr:read', intent: 'Look up salaries for context', authorization_details: JSON.stringify([{ type: 'tool_call', action: 'read', object: { type: 'SalaryRecord' } }]),
    });
    const body = await refused(drift, 'access_denied');
    expect(body.reasons).toEqual(['restricted_data_for_summary', 'task_suspended']);
    expect(body.review_id).toMatch(/^rev_/);
    expect(await introspect(first.access_token)).toEqual({ active: false });
    expect(await introspect(second.access_token)).toEqual({ active: false });
    const again = await refused(await toolCall(t.access_token), 'access_denied');
    expect(again).toMatchObject({ reasons: ['task_suspended'], review_id: body.review_id });
    const v = await view(t.task);
    expect(v).toMatchObject({ status: 'suspended', suspension: { review_id: body.review_id } });
    expect(v.tokens.map((x: { status: string }) => x.status)).toEqual(['suspended', 'revoked', 'revoked']);
    expect(v.evidence.map((e: { kind: string }) => e.kind)).toEqual(expect.arrayContaining(['exchange.granted', 'exchange.denied', 'token.revoked', 'review.opened']));

    const approve = await w.t.admin('POST', `/admin/api/reviews/${body.review_id}/approve`, { comment: 'checked' }, reviewer);
    expect(approve.status).toBe(200);
    const third = await granted(await toolCall(t.access_token));
    expect(decodeJwt(third.access_token).task).toBe(t.task);
    expect(await introspect(first.access_token)).toEqual({ active: false });
    expect((await view(t.task)).status).toBe('active');
  });

  it('refuses what the task does not cover, field by field, records it, and counts it', async () => {
    const t = await startTask({ scope: 'expenses:read expenses:approve', authorization_details: JSON.stringify(APPROVAL_DETAILS), intent: 'Approve the team\'s small expenses' }, 'dana');
    const approve = (object: Record<string, unknown>, extra: Record<string, unknown> = {}) => toolCall(t.access_token, {
      scope: 'expenses:approve', intent: 'Approve one',
      authorization_details: JSON.stringify([{ type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', currency: 'EUR', ...object }, ...extra }]),
    });
    // Within: an amount under the task's cap, a narrower object (an id), the purpose inherited.
    const ok = await granted(await approve({ id: 'exp_1', amount: 120 }));
    expect(decodeJwt(ok.access_token).authorization_details).toEqual([{ type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', currency: 'EUR', id: 'exp_1', amount: 120 }, purpose: 'expense_approval' }]);
    expect((await granted(await approve({ id: 'exp_2', amount: 500 }))).scope).toBe('expenses:approve');

    const w2 = await startTask({ scope: 'expenses:read expenses:approve', authorization_details: JSON.stringify(APPROVAL_DETAILS), intent: 'Approve again' }, 'erin');
    const again = (object: Record<string, unknown>, extra: Record<string, unknown> = {}) => toolCall(w2.access_token, {
      scope: 'expenses:approve', intent: 'Approve one',
      authorization_details: JSON.stringify([{ type: 'tool_call', tool: 'approve_expense', action: 'approve', object: { type: 'Expense', currency: 'EUR', ...object }, ...extra }]),
    });
    const cases: Array<[string, Promise<Response>]> = [
      ['amount above the cap', approve({ id: 'exp_3', amount: 501 })],
      ['amount missing', approve({ id: 'exp_3' })],
      ['another object field value', approve({ id: 'exp_3', amount: 10, currency: 'USD' })],
      ['another action', again({ amount: 10 }, { action: 'submit' })],
      ['another tool', again({ amount: 10 }, { tool: 'pay_expense' })],
      ['another purpose', again({ amount: 10 }, { purpose: 'summarize' })],
    ];
    for (const [what, res] of cases) {
      expect((await refused(await res, 'invalid_authorization_details')).error_description, what).toMatch(/outside the task/);
    }
    const typeOnly = await toolCall(w2.access_token, { scope: 'expenses:approve', authorization_details: JSON.stringify([{ type: 'tool_call', action: 'approve', object: { type: 'Report', currency: 'EUR', amount: 1 } }]) });
    await refused(typeOnly, 'invalid_authorization_details');
    const ledger = await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.denied&task=${t.task}`)).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(ledger.items.length).toBe(3);
    expect(ledger.items[0]!.payload).toMatchObject({ error: 'invalid_authorization_details', task: t.task, parent_jti: decodeJwt(t.access_token).jti });
    // A scope beyond the task's, a resource outside it, an unknown one.
    const w3 = await startTask({}, 'finn');
    await refused(await toolCall(w3.access_token, { scope: 'expenses:submit' }), 'invalid_scope');
    await refused(await toolCall(w3.access_token, { resource: REPORTS, scope: 'reports:read' }), 'invalid_target');
    await refused(await toolCall(w3.access_token, { resource: 'https://unknown.example' }), 'invalid_target');
    expect((await view(w3.task)).status).toBe('active');
    // The fourth refusal trips repeated_denials: the task is suspended for review.
    await refused(await toolCall(w3.access_token, { scope: 'expenses:approve' }), 'invalid_scope');
    expect(await view(w3.task)).toMatchObject({ status: 'suspended', counters: { denied: 4 } });
    expect(await refused(await toolCall(w3.access_token), 'access_denied')).toMatchObject({ reasons: ['task_suspended'] });
  });

  it('resource servers refuse the task token, and introspection knows nothing of it', async () => {
    const t = await startTask();
    expect(await introspect(t.access_token)).toEqual({ active: false });
    const verifier = createResourceVerifier({ issuer: w.t.issuer, resource: EXPENSES, introspection: false, resourceMetadataUrl: `${EXPENSES}/.well-known/oauth-protected-resource` });
    await expect(verifier.authenticate({ method: 'GET', url: `${EXPENSES}/expenses`, authorization: `Bearer ${t.access_token}` })).rejects.toBeInstanceOf(ResourceAuthError);
    // Nor may another agent present it.
    await refused(await toolCall(t.access_token, {}, 'other-agent'), 'invalid_request');
  });

  it('can be delegated: the sub-agent\'s tokens stay in the task, and go with it', async () => {
    const t = await startTask({ scope: 'expenses:read' }, 'gail');
    const params = { subject_token: t.access_token, subject_token_type: TT_TASK, audience: 'sub-agent', scope: 'expenses:read', intent: 'Hand the listing to the sub-agent' };
    const delegation = await granted(await w.exchange('agent', params));
    expect(decodeJwt(delegation.access_token)).toMatchObject({ aud: 'sub-agent', task: t.task });
    const own = await granted(await w.exchange('sub-agent', {
      subject_token: delegation.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'List',
      authorization_details: JSON.stringify([{ type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' }, purpose: 'summarize' }]),
    }));
    expect(decodeJwt(own.access_token)).toMatchObject({ task: t.task, act: { sub: 'sub-agent', act: { sub: 'agent' } } });
    expect((await view(t.task)).tokens.map((x: { kind: string }) => x.kind)).toEqual(['task', 'delegation', 'access']);
    const revoke = await w.t.admin('POST', `/admin/api/tasks/${t.task}/revoke`, { reason: 'done with it' });
    expect(revoke.status).toBe(200);
    expect(await revoke.json()).toMatchObject({ status: 'revoked', counters: { live_tokens: 0 } });
    expect(await introspect(own.access_token)).toEqual({ active: false });
    await refused(await toolCall(t.access_token), 'invalid_request');
  });
});

describe('renewing a task token', () => {
  it('gives a new task token for the same task, never beyond the user\'s token; both stay valid', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await startTask({}, 'mona');
    const res = await w.exchange('agent', { subject_token: t.access_token, subject_token_type: TT_TASK, requested_token_type: TT_TASK, intent: 'Renew the task token' });
    const renewed = await res.json() as TaskAnswer;
    expect(res.status, JSON.stringify(renewed)).toBe(200);
    expect(renewed).toMatchObject({ issued_token_type: TT_TASK, token_type: 'N_A', task: t.task, scope: 'expenses:read', authorization_details: SUMMARY_DETAILS });
    expect(renewed.access_token).not.toBe(t.access_token);
    // The user's token lives an hour: no renewal reaches past it.
    expect(decodeJwt(renewed.access_token).exp).toBeLessThanOrEqual(now + 3600 + 5);
    expect(decodeJwt((await granted(await toolCall(renewed.access_token))).access_token).task).toBe(t.task);
    expect((await granted(await toolCall(t.access_token))).scope).toBe('expenses:read');
    await refused(await w.exchange('agent', { subject_token: t.access_token, subject_token_type: TT_TASK, requested_token_type: TT_TASK, intent: 'Renew', scope: 'expenses:submit' }), 'invalid_request');
    // Suspending the task holds every task token of it.
    expect((await w.t.admin('POST', `/admin/api/tasks/${t.task}/suspend`, {})).status).toBe(200);
    expect(await refused(await toolCall(renewed.access_token), 'access_denied')).toMatchObject({ reasons: ['task_suspended'] });
    await refused(await w.exchange('agent', { subject_token: renewed.access_token, subject_token_type: TT_TASK, requested_token_type: TT_TASK, intent: 'Renew' }), 'access_denied');
  });
});

describe('DPoP', () => {
  const url = () => `${w.t.url}/token`;
  it('binds the task token when the start was bound, and every tool call must prove that key', async () => {
    const key: Holder = await holder();
    const t = await startTask({}, 'hana', 'agent', { dpop: await proof(key, url()) });
    expect(decodeJwt(t.access_token).cnf).toEqual({ jkt: key.jkt });
    expect((await refused(await toolCall(t.access_token), 'invalid_dpop_proof')).error_description).toMatch(/DPoP-bound/);
    await refused(await toolCall(t.access_token, {}, 'agent', { dpop: await proof(await holder(), url()) }), 'invalid_dpop_proof');
    const bound = await granted(await toolCall(t.access_token, {}, 'agent', { dpop: await proof(key, url()) }));
    expect(bound.token_type).toBe('DPoP');
    expect(decodeJwt(bound.access_token).cnf).toEqual({ jkt: key.jkt });
  });
});

describe('policy can require tasks', () => {
  it('refuses an agent required to work in tasks a tool-call token straight from the user\'s token', async () => {
    const direct = await w.exchange('other-agent', {
      subject_token: await w.userToken(), subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'List expenses',
    });
    expect(await refused(direct, 'access_denied')).toMatchObject({ reasons: ['task_required'] });
    const t = await startTask({ authorization_details: JSON.stringify(SUMMARY_DETAILS) }, 'ivan', 'other-agent');
    expect((await granted(await toolCall(t.access_token, {}, 'other-agent'))).scope).toBe('expenses:read');
  });
});

describe('admin API for tasks', () => {
  it('lists tasks by agent, user and status, newest first, a page at a time', async () => {
    const a = await startTask({}, 'list-user');
    const b = await startTask({}, 'list-user');
    const c = await startTask({}, 'list-user');
    expect((await w.t.admin('POST', `/admin/api/tasks/${b.task}/suspend`)).status).toBe(200);
    const page1 = await (await w.t.admin('GET', `/admin/api/tasks?user_iss=${encodeURIComponent(IDP)}&user_sub=list-user&limit=2`)).json() as { items: Array<Record<string, unknown>>; next_cursor: string };
    expect(page1.items.map((x) => x.task)).toEqual([c.task, b.task]);
    expect(page1.items[0]).toMatchObject({ agent: 'agent', user: { iss: IDP, sub: 'list-user' }, intent: "Summarise this week's expenses for Alice", purpose: 'summarize', status: 'active' });
    expect(page1.items[0]!.created_at).toEqual(expect.any(String));
    const page2 = await (await w.t.admin('GET', `/admin/api/tasks?user_sub=list-user&limit=2&cursor=${page1.next_cursor}`)).json() as { items: Array<Record<string, unknown>>; next_cursor: string | null };
    expect(page2).toEqual({ items: [expect.objectContaining({ task: a.task })], next_cursor: null });
    const suspended = await (await w.t.admin('GET', '/admin/api/tasks?user_sub=list-user&status=suspended')).json() as { items: Array<Record<string, unknown>> };
    expect(suspended.items.map((x) => x.task)).toEqual([b.task]);
    const byAgent = await (await w.t.admin('GET', '/admin/api/tasks?agent=other-agent')).json() as { items: Array<Record<string, unknown>> };
    expect(byAgent.items.every((x) => x.agent === 'other-agent')).toBe(true);
  });

  it('refuses unknown, repeated and malformed query parameters', async () => {
    for (const q of ['?bogus=1', '?agent=a&agent=b', '?status=paused', '?limit=0', '?limit=201', '?cursor=nope', '?cursor=' + Buffer.from('12x').toString('base64url'), '?agent=', `?agent=${'x'.repeat(2001)}`, '?agent=%00']) {
      const res = await w.t.admin('GET', `/admin/api/tasks${q}`);
      expect(res.status, q).toBe(400);
      // A repeated parameter is refused at the edge, before any route (field null); the rest name their field.
      expect(await res.json(), q).toMatchObject({ error: 'invalid_request', ...(q.includes('&') || q.includes('%00') ? {} : { field: expect.any(String) }) });
    }
  });

  it('suspends, resumes and revokes, recording who did it; suspension holds the task token, resuming releases it', async () => {
    const t = await startTask({}, 'jack');
    const call = await granted(await toolCall(t.access_token));
    const s = await w.t.admin('POST', `/admin/api/tasks/${t.task}/suspend`, { reason: 'looks odd' });
    expect(s.status).toBe(200);
    expect(await s.json()).toMatchObject({ task: t.task, status: 'suspended', suspension: { reason: 'looks odd', review_id: null } });
    expect(await introspect(call.access_token)).toEqual({ active: false });
    expect(await refused(await toolCall(t.access_token), 'access_denied')).toMatchObject({ reasons: ['task_suspended'] });
    // Repeating it changes nothing.
    expect((await w.t.admin('POST', `/admin/api/tasks/${t.task}/suspend`)).status).toBe(200);
    // An empty body is accepted.
    const r = await fetch(`${w.t.url}/admin/api/tasks/${t.task}/resume`, { method: 'POST', headers: { authorization: `Bearer ${w.t.adminToken}` } });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'active' });
    expect((await granted(await toolCall(t.access_token))).scope).toBe('expenses:read');
    const rv = await w.t.admin('POST', `/admin/api/tasks/${t.task}/revoke`, {});
    expect(await rv.json()).toMatchObject({ status: 'revoked' });
    await refused(await toolCall(t.access_token), 'invalid_request');
    const conflict = await w.t.admin('POST', `/admin/api/tasks/${t.task}/resume`, {});
    expect(conflict.status).toBe(409);
    const entries = await (await w.t.admin('GET', `/admin/api/ledger?task=${t.task}`)).json() as { items: Array<{ kind: string; actor: string; payload: Record<string, unknown> }> };
    const changes = entries.items.filter((e) => e.kind.startsWith('task.')).reverse();
    expect(changes.map((e) => e.kind)).toEqual(['task.suspended', 'task.resumed', 'task.revoked']);
    expect(changes.every((e) => e.actor === changes[0]!.actor && e.actor !== 'system')).toBe(true);
    expect(changes[0]!.payload).toMatchObject({ reason: 'looks odd' });
  });

  it('shows a task from before task tokens (a delegation\'s) as before', async () => {
    const params = { subject_token: await w.userToken({ sub: 'kate' }), subject_token_type: ACCESS_TOKEN_TYPE, audience: 'sub-agent', scope: 'expenses:read', intent: 'Delegate' };
    const d = await granted(await w.exchange('agent', params));
    const own = await granted(await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' }));
    const task = decodeJwt(own.access_token).task as string;
    const v = await view(task);
    expect(v).toMatchObject({ task, agent: 'agent', user: { iss: IDP, sub: 'kate' }, status: 'active', counters: { granted: 2, live_tokens: 2 } });
    expect(v.tokens.map((x: { kind: string }) => x.kind)).toEqual(['delegation', 'access']);
    const s = await w.t.admin('POST', `/admin/api/tasks/${task}/suspend`, {});
    expect(await s.json()).toMatchObject({ status: 'suspended' });
    expect(await introspect(own.access_token)).toEqual({ active: false });
  });

  it('refuses hostile and malformed input on the task endpoints', async () => {
    const t = await startTask({}, 'liam');
    expect((await w.t.admin('GET', '/admin/api/tasks/tsk_nope')).status).toBe(404);
    expect((await w.t.admin('POST', '/admin/api/tasks/tsk_nope/suspend', {})).status).toBe(404);
    expect((await w.t.admin('POST', `/admin/api/tasks/${'x'.repeat(5000)}/revoke`, {})).status).toBe(404);
    expect((await w.t.admin('GET', '/admin/api/tasks/%E0%A4%A')).status).toBe(400);
    expect((await w.t.admin('POST', '/admin/api/tasks/tsk%00/suspend', {})).status).toBe(400);
    expect((await w.t.admin('POST', `/admin/api/tasks/${encodeURIComponent("x' OR '1'='1")}/revoke`, {})).status).toBe(404);
    const sqlFilter = await w.t.admin('GET', `/admin/api/tasks?agent=${encodeURIComponent("agent' OR '1'='1")}`);
    expect(await sqlFilter.json()).toEqual({ items: [], next_cursor: null });
    const utf8 = await fetch(`${w.t.url}/admin/api/tasks/${t.task}/suspend`, { method: 'POST', headers: { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(utf8.status).toBe(400);
    expect(JSON.stringify(await utf8.json())).not.toMatch(/at .*\.ts:\d+|stack/i);
    for (const [body, status] of [
      [{ reason: 'x', extra: 1 }, 400],
      [{ reason: '' }, 400],
      [{ reason: 'a\u200Bb' }, 400],
      [{ reason: 'r'.repeat(501) }, 400],
      [{ reason: 42 }, 400],
      ['[1]', 400],
      ['{"reason":', 400],
      [JSON.stringify({ reason: 'x'.repeat(70_000) }), 413],
    ] as const) {
      const res = await w.t.admin('POST', `/admin/api/tasks/${t.task}/suspend`, body);
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(status);
    }
    expect((await w.t.admin('POST', `/admin/api/tasks/${t.task}/resume`, { reason: 'no reason here' })).status).toBe(400);
    const text = await fetch(`${w.t.url}/admin/api/tasks/${t.task}/suspend`, { method: 'POST', headers: { authorization: `Bearer ${w.t.adminToken}`, 'content-type': 'text/plain' }, body: 'hi' });
    expect(text.status).toBe(415);
    expect((await view(t.task)).status).toBe('active');
    // Only an admin changes a task; an auditor reads.
    const auditor = await (await w.t.admin('POST', '/admin/api/admins', { name: 'auditor', role: 'auditor' })).json() as { token: string };
    expect((await w.t.admin('POST', `/admin/api/tasks/${t.task}/revoke`, {}, auditor.token)).status).toBe(403);
    expect((await w.t.admin('GET', `/admin/api/tasks/${t.task}`, undefined, auditor.token)).status).toBe(200);
    expect((await w.t.admin('GET', '/admin/api/tasks', undefined, auditor.token)).status).toBe(200);
    expect((await w.t.admin('DELETE', `/admin/api/tasks/${t.task}`)).status).toBe(405);
  });

  it('refuses malformed task requests at the token endpoint', async () => {
    const user = await w.userToken();
    await refused(await w.exchange('agent', taskParams(user, { requested_token_type: 'urn:intentgate:token-type:tasks' })), 'invalid_request');
    await refused(await w.exchange('agent', taskParams(user, { requested_token_type: [TT_TASK, TT_TASK] })), 'invalid_request');
    await refused(await w.exchange('agent', taskParams(user, { resource: Array.from({ length: 21 }, (_, i) => `https://r${i}.example`) })), 'invalid_target');
    await refused(await w.exchange('agent', taskParams(user, { authorization_details: '[{"type":"tool_call","action":"list","object":{"type":"Expense","amount":"a lot"}}]' })), 'invalid_authorization_details');
    await refused(await w.exchange('agent', taskParams(user, { intent: '' })), 'invalid_request');
    const t = await startTask();
    const tampered = t.access_token.slice(0, -4) + (t.access_token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await refused(await toolCall(tampered), 'invalid_request');
    await refused(await toolCall('not.a.jwt'), 'invalid_request');
  });
});
