import { decodeJwt } from 'jose';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, HR, reportEvent, startWorld, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => {
  // sod.yaml: separation of duties and an allow-after-history rule at expenses; HR's hr-read allows any detail.
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/sod.yaml') } });
});
afterAll(async () => { await w?.t.stop(); });

interface Granted { access_token: string }

/** An exchange for alice (or `sub`) at `resource`, with one tool_call detail. */
async function exchange(resource: string, scope: string, action: string, object: Record<string, unknown>, sub = 'alice'): Promise<Response> {
  return w.exchange('agent', exchangeParams(await w.userToken({ sub }), {
    resource, scope, intent: `${action} ${String(object.id ?? object.type)}`, authorization_details: details(action, object),
  }));
}

async function jtiOf(res: Response): Promise<string> {
  const body = await res.json() as Granted & { error?: string };
  if (res.status !== 200) throw new Error(`expected a token, got ${res.status} ${JSON.stringify(body)}`);
  return decodeJwt(body.access_token).jti!;
}

const expense = (id: string) => ({ type: 'Expense', id, amount: 120 });
const approve = (id: string, sub = 'alice') => exchange(EXPENSES, 'expenses:approve', 'approve', expense(id), sub);
const amend = (id: string, sub = 'alice') => exchange(EXPENSES, 'expenses:submit', 'amend', expense(id), sub);

describe('history is per resource', () => {
  it('a grant at a permissive resource never feeds separation of duties at another', async () => {
    // HR's policy grants any detail with hr:read, including one that names an expense.
    await jtiOf(await exchange(HR, 'hr:read', 'submit', expense('exp_77')));
    const res = await approve('exp_77');
    expect(res.status).toBe(200);
  });

  it('a resource server\'s report never decides at another resource, and one outside its token\'s details is refused', async () => {
    // The attack: HR's server reports "submit Expense exp_77" on a token that is about an HR document.
    const hrJti = await jtiOf(await exchange(HR, 'hr:read', 'read', { type: 'Document', id: 'doc_1' }));
    const forged = await reportEvent(w, 'hr-rs', { jti: hrJti, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_78' } });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: 'access_denied', error_description: expect.stringContaining('do not carry submit on Expense') });
    // Even a report its token does carry is history at HR only.
    const carried = await jtiOf(await exchange(HR, 'hr:read', 'submit', expense('exp_78')));
    expect((await reportEvent(w, 'hr-rs', { jti: carried, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_78' } })).status).toBe(201);
    const created = await jtiOf(await exchange(HR, 'hr:read', 'submit', { type: 'Expense' }));
    expect((await reportEvent(w, 'hr-rs', { jti: created, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_79', created: true } })).status).toBe(201);
    expect((await approve('exp_78')).status).toBe(200);
    expect((await approve('exp_79')).status).toBe(200);
  });

  it('an allow-after-history rule is satisfied only by history at its own resource', async () => {
    // What happened at HR (a grant, a report) does not make alice the submitter at expenses.
    const hrJti = await jtiOf(await exchange(HR, 'hr:read', 'submit', expense('exp_80')));
    expect((await reportEvent(w, 'hr-rs', { jti: hrJti, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_80' } })).status).toBe(201);
    const fromHr = await amend('exp_80');
    expect(fromHr.status).toBe(400);
    expect(await fromHr.json()).toMatchObject({ error: 'access_denied', reasons: ['no_matching_rule'] });
    // At expenses itself, a grant or a created object reported by its own server counts.
    await jtiOf(await exchange(EXPENSES, 'expenses:submit', 'submit', expense('exp_81')));
    expect((await amend('exp_81')).status).toBe(200);
    const draft = await jtiOf(await exchange(EXPENSES, 'expenses:submit', 'submit', { type: 'Expense', amount: 5 }));
    expect((await reportEvent(w, 'expenses-rs', { jti: draft, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_82', created: true } })).status).toBe(201);
    expect((await amend('exp_82')).status).toBe(200);
    // Separation of duties still holds within the resource.
    expect(await (await approve('exp_82')).json()).toMatchObject({ error: 'access_denied', reasons: ['separation_of_duties'] });
  });

  it('counts a task\'s actions per resource: a delegation token\'s details are not grants at the resource', async () => {
    const submits = [{ type: 'tool_call', action: 'submit', object: expense('exp_d1') }, { type: 'tool_call', action: 'submit', object: expense('exp_d2') }];
    const params = exchangeParams(await w.userToken({ sub: 'dora' }), {
      audience: 'sub-agent', scope: 'expenses:submit', intent: 'delegate two submissions', authorization_details: JSON.stringify(submits),
    });
    delete params.resource;
    const delegation = await w.exchange('agent', params);
    expect(delegation.status).toBe(200);
    const { access_token: parent } = await delegation.json() as Granted;
    const submit = (i: number) => w.exchange('sub-agent', {
      subject_token: parent, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:submit',
      intent: 'submit one', authorization_details: JSON.stringify([submits[i]]),
    });
    expect((await submit(0)).status).toBe(200);
    expect((await submit(1)).status).toBe(200);
    const third = await submit(0);
    expect(third.status).toBe(400);
    expect(await third.json()).toMatchObject({ error: 'access_denied', reasons: ['task_submit_limit'] });
  });
});

describe('POST /ledger/events reports only what the token allowed', () => {
  it('refuses an action or object outside the token\'s details, accepts one inside, and refuses a created object under a detail naming an id', async () => {
    const jti = await jtiOf(await exchange(EXPENSES, 'expenses:approve', 'approve', expense('exp_1')));
    const post = (body: Record<string, unknown>) => reportEvent(w, 'expenses-rs', { jti, ...body });
    const hostile = 'exp_2\r\n\u202E';
    for (const body of [
      { outcome: 'success', action: 'approve', object: { type: 'Expense', id: hostile } },
      { outcome: 'success', action: 'delete_all', object: { type: 'Expense', id: 'exp_1' } },
      { outcome: 'failure', action: 'approve', object: { type: 'Document', id: 'exp_1' } },
      { outcome: 'error', action: 'submit' },
      // created needs a detail with that action on that type
      { outcome: 'success', action: 'approve', object: { type: 'Document', id: 'doc_9', created: true } },
      { outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_9', created: true } },
      // created needs a detail naming the type and no id: a token for exp_1 never reports creating another expense
      { outcome: 'success', action: 'approve', object: { type: 'Expense', id: 'exp_999', created: true } },
      { outcome: 'success', action: 'approve', object: { type: 'Expense', id: 'exp_1', created: true } },
    ]) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(403);
      const answer = await res.json() as { error: string; error_description: string };
      expect(answer.error).toBe('access_denied');
      expect(answer.error_description).toMatch(/^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/);
    }
    expect((await post({ outcome: 'success', action: 'approve', object: { type: 'Expense', id: 'exp_1' } })).status).toBe(201);
    expect((await post({ outcome: 'failure', action: 'approve' })).status).toBe(201);
    // A refusal records what was attempted: it may name anything, and history never reads it.
    expect((await post({ outcome: 'denied', action: 'delete_all', object: { type: 'Document', id: '*' } })).status).toBe(201);
  });

  it('refuses created on anything but a success, or without the object\'s type and id (400)', async () => {
    const jti = await jtiOf(await exchange(EXPENSES, 'expenses:submit', 'submit', { type: 'Expense', amount: 5 }));
    // Under a detail naming the type and no id, a created object of that type is what the token allowed.
    expect((await reportEvent(w, 'expenses-rs', { jti, outcome: 'success', action: 'submit', object: { type: 'Expense', id: 'exp_new', created: true } })).status).toBe(201);
    for (const body of [
      { outcome: 'failure', action: 'submit', object: { type: 'Expense', id: 'exp_c1', created: true } },
      { outcome: 'denied', action: 'submit', object: { type: 'Expense', id: 'exp_c1', created: true } },
      { outcome: 'success', action: 'submit', object: { id: 'exp_c1', created: true } },
      { outcome: 'success', action: 'submit', object: { type: 'Expense', created: true } },
    ]) {
      const res = await reportEvent(w, 'expenses-rs', { jti, ...body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request', field: 'object.created' });
    }
  });

  it('a token without details allowed no action: only denied events may be reported for it', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken()));
    const jti = await jtiOf(res);
    const success = await reportEvent(w, 'expenses-rs', { jti, outcome: 'success', action: 'read' });
    expect(success.status).toBe(403);
    expect(await success.json()).toMatchObject({ error: 'access_denied', error_description: expect.stringContaining('carries no authorization_details') });
    expect((await reportEvent(w, 'expenses-rs', { jti, outcome: 'denied', action: 'access' })).status).toBe(201);
  });
});
