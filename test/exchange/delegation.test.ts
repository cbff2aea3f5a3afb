import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ exchange: { max_delegation_depth: 3 } }); });
afterAll(async () => { await w?.t.stop(); });

async function ok(res: Response): Promise<{ access_token: string; scope: string; expires_in: number; authorization_details?: unknown }> {
  const body = await res.json();
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** agent → delegation token for sub-agent (audience = its client_id). */
async function delegate(extra: Record<string, string> = {}, subject?: string) {
  return w.exchange('agent', exchangeParams(subject ?? await w.userToken(), { resource: [] as unknown as string, audience: 'sub-agent', scope: 'expenses:read expenses:submit', intent: 'Hand the expense reading to the sub-agent', ...extra }));
}

describe('delegation', () => {
  it('mints a delegation token for a sub-agent the policy allows, which it exchanges for its own; act nests', async () => {
    const d = await ok(await delegate());
    const dClaims = decodeJwt(d.access_token);
    expect(dClaims).toMatchObject({ aud: 'sub-agent', act: { sub: 'agent' }, scope: 'expenses:read expenses:submit', sub: 'alice' });

    const own = await ok(await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read the expense reports' }));
    const claims = decodeJwt(own.access_token);
    expect(claims).toMatchObject({ aud: EXPENSES, sub: 'alice', client_id: 'sub-agent', scope: 'expenses:read', act: { sub: 'sub-agent', act: { sub: 'agent' } }, task: dClaims.task });
    expect(claims.exp!).toBeLessThanOrEqual(dClaims.exp!);

    const row = await w.t.server.db('issued_tokens').where({ jti: claims.jti }).first();
    expect(row).toMatchObject({ parent_jti: dClaims.jti, task: dClaims.task, subject_issuer: 'https://idp.test' });
  });

  it('refuses a delegation to an agent the policy does not name', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: [] as unknown as string, audience: 'other-agent' }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'access_denied', reasons: ['delegation_not_allowed'] });
  });

  it('lets only a client in the token audience (or may_act) present an intentgate token', async () => {
    const d = await ok(await delegate());
    const res = await w.exchange('other-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Try to use a token meant for someone else' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('may not be presented by this client') });
  });

  it('never widens scope across a hop', async () => {
    const d = await ok(await delegate({ scope: 'expenses:read' }));
    const res = await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:submit', intent: 'Submit an expense' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('never widens authorization details across a hop', async () => {
    const granted = details('submit', { type: 'Expense', id: 'exp_1', amount: 10 });
    const d = await ok(await delegate({ scope: 'expenses:submit', authorization_details: granted }));
    expect(d.authorization_details).toEqual(JSON.parse(granted));
    const other = details('submit', { type: 'Expense', id: 'exp_2', amount: 10 });
    const widened = await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:submit', intent: 'Submit another expense', authorization_details: other });
    expect(widened.status).toBe(400);
    expect(await widened.json()).toMatchObject({ error: 'invalid_authorization_details' });
    const inherited = await ok(await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:submit', intent: 'Submit the expense' }));
    expect(decodeJwt(inherited.access_token).authorization_details).toEqual(JSON.parse(granted));
  });

  it('a parent without authorization details grants none: a sub-agent cannot add any (e.g. delete_all Document *)', async () => {
    const d = await ok(await delegate({ scope: 'expenses:read' }));
    expect(decodeJwt(d.access_token).authorization_details).toBeUndefined();
    const asSub = (extra: Record<string, string>) => w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read the expense reports', ...extra });
    // The policy at expenses allows expenses:read with any detail: only the hop rule stands between.
    for (const added of [details('delete_all', { type: 'Document', id: '*' }), details('list', { type: 'Expense' }, 'summarize')]) {
      const res = await asSub({ authorization_details: added });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_authorization_details', error_description: expect.stringContaining('carries no authorization details') });
    }
    // The refusal is a recorded decision.
    const [denied] = (await w.t.admin('GET', '/admin/api/ledger?kind=exchange.denied&client_id=sub-agent&limit=1').then((r) => r.json()) as { items: Array<{ payload: Record<string, unknown> }> }).items;
    expect(denied!.payload).toMatchObject({ error: 'invalid_authorization_details', parent_jti: decodeJwt(d.access_token).jti });
    // Without details the hop still works, and its token carries none.
    const own = await ok(await asSub({}));
    expect(decodeJwt(own.access_token).authorization_details).toBeUndefined();
    // Nor can it hand the token on with details it was never given.
    const again = await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, audience: 'sub-agent', scope: 'expenses:read', intent: 'Again', authorization_details: details('delete_all', { type: 'Document', id: '*' }) });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_authorization_details' });
  });

  it('never changes a task\'s purpose across a hop', async () => {
    const granted = details('list', { type: 'Expense' }, 'summarize');
    const d = await ok(await delegate({ scope: 'expenses:read', authorization_details: granted }));
    const res = await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'List for approval', authorization_details: details('list', { type: 'Expense' }, 'expense_approval') });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_authorization_details' });
  });

  it('grants at most the parent\'s scope when the sub-agent names none', async () => {
    const d = await ok(await delegate({ scope: 'expenses:read' }));
    const own = await ok(await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, intent: 'Read whatever is allowed' }));
    expect(own.scope.split(' ').filter(Boolean)).toEqual(['expenses:read']);
  });

  it('never outlives the parent token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const d = await ok(await delegate({}, await w.userToken({ exp: now + 40 })));
    const own = await ok(await w.exchange('sub-agent', { subject_token: d.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' }));
    expect(decodeJwt(own.access_token).exp).toBeLessThanOrEqual(now + 40);
  });

  it('caps the depth of the act chain', async () => {
    // The subject already carries two earlier actors; with agent as the third, depth 3 is the cap.
    const deep = await w.userToken({ act: { sub: 'upstream-2', act: { sub: 'upstream-1' } } });
    const atCap = await w.exchange('agent', exchangeParams(deep));
    expect(atCap.status).toBe(200);
    expect(decodeJwt((await atCap.json() as { access_token: string }).access_token).act).toEqual({ sub: 'agent', act: { sub: 'upstream-2', act: { sub: 'upstream-1' } } });
    const tooDeep = await w.exchange('agent', exchangeParams(await w.userToken({ act: { sub: 'u3', act: { sub: 'u2', act: { sub: 'u1' } } } })));
    expect(tooDeep.status).toBe(400);
    expect(await tooDeep.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('deeper than 3') });
  });

  it('honours may_act in the subject token', async () => {
    const forOther = await w.exchange('agent', exchangeParams(await w.userToken({ may_act: { sub: 'other-agent' } })));
    expect(forOther.status).toBe(400);
    expect(await forOther.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('may_act') });
    const forAgent = await w.exchange('agent', exchangeParams(await w.userToken({ may_act: { sub: 'agent' } })));
    expect(forAgent.status).toBe(200);
  });

  it('accepts an actor_token that identifies the client, refuses one that names another', async () => {
    const own = await ok(await w.exchange('agent', exchangeParams(await w.userToken())));
    const withActor = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: own.access_token, actor_token_type: ACCESS_TOKEN_TYPE }));
    expect(withActor.status).toBe(200);
    const others = await ok(await w.exchange('other-agent', exchangeParams(await w.userToken())));
    const mismatch = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: others.access_token, actor_token_type: ACCESS_TOKEN_TYPE }));
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ error: 'invalid_request', error_description: 'actor_token was issued to another client' });
    const foreign = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: await w.userToken(), actor_token_type: ACCESS_TOKEN_TYPE }));
    expect(foreign.status).toBe(400);
    expect(await foreign.json()).toMatchObject({ error: 'invalid_request', error_description: 'actor_token must identify the authenticated client' });
  });
});
