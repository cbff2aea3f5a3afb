import path from 'node:path';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentInputError, createAgent, ExchangeDenied, ExchangeFailed, TASK_TOKEN_TYPE, type Agent } from '@intentgate/agent';
import { EXPENSES, HR, startWorld, type World } from '../helpers/world.ts';
import { agentFor } from './helpers.ts';

let w: World;
let agent: Agent;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/tasks.yaml') }, rate_limits: { token: { burst: 100_000, per_second: 100_000 } } });
  agent = await agentFor(w);
});
afterAll(async () => { await w?.t.stop(); });

const summary = { type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' } };

async function introspect(token: string): Promise<boolean> {
  const res = await fetch(`${w.t.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(w.creds['expenses-rs']!.join(':')).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

describe('agent.startTask', () => {
  it('starts a task whose exchange() draws tool-call tokens from it; the purpose is given to every detail', async () => {
    const task = await agent.startTask({
      subjectToken: await w.userToken({ sub: 'sdk-1' }), intent: "Summarise Alice's week", resources: EXPENSES, scope: 'expenses:read',
      authorizationDetails: [summary], purpose: 'summarize',
    });
    expect(task.id).toMatch(/^tsk_/);
    expect(task).toMatchObject({ resources: [EXPENSES], scope: ['expenses:read'], authorizationDetails: [{ ...summary, purpose: 'summarize' }] });
    expect(decodeJwt(await task.taskToken()).task).toBe(task.id);
    const one = await task.exchange({ intent: 'List', scope: 'expenses:read', authorizationDetails: [summary] });
    const two = await task.exchange({ intent: 'List again', resource: EXPENSES, scope: 'expenses:read' });
    expect([decodeJwt(one.accessToken).task, decodeJwt(two.accessToken).task]).toEqual([task.id, task.id]);
    expect(one).toMatchObject({ tokenType: 'Bearer', resource: EXPENSES, issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token' });
    // Refusals are typed as for agent.exchange.
    const out = await task.exchange({ intent: 'Reach for HR', resource: HR, scope: 'hr:read', authorizationDetails: [{ type: 'tool_call', action: 'read' }] }).catch((e: unknown) => e);
    expect(out).toBeInstanceOf(ExchangeDenied);
    expect((out as ExchangeDenied).reasons).toEqual(['restricted_data_for_summary', 'task_suspended']);
    expect(await introspect(one.accessToken)).toBe(false);
    const after = await task.exchange({ intent: 'List', scope: 'expenses:read' }).catch((e: unknown) => e);
    expect(after).toMatchObject({ name: 'ExchangeDenied', reasons: ['task_suspended'] });
  });

  it('renews the task token before it expires, in the same task', async () => {
    const task = await agent.startTask({
      subjectToken: await w.userToken({ sub: 'sdk-2' }), intent: 'A long task', resources: [EXPENSES], scope: 'expenses:read',
      authorizationDetails: [summary], renewBeforeExpirySeconds: 1_000_000,
    });
    const first = await task.taskToken();
    const [a, b] = await Promise.all([task.taskToken(), task.taskToken()]);
    expect(a).toBe(b);
    expect(a).not.toBe(first);
    expect(decodeJwt(a).task).toBe(task.id);
    expect(decodeJwt((await task.exchange({ intent: 'List', scope: 'expenses:read' })).accessToken).task).toBe(task.id);
  });

  it('binds the task and its tool-call tokens to the agent\'s DPoP key', async () => {
    const task = await agent.startTask({ subjectToken: await w.userToken({ sub: 'sdk-3' }), intent: 'Bound', resources: EXPENSES, scope: 'expenses:read', authorizationDetails: [summary], dpop: true });
    const jkt = await agent.dpopThumbprint();
    expect(decodeJwt(await task.taskToken()).cnf).toEqual({ jkt });
    const token = await task.exchange({ intent: 'List', scope: 'expenses:read' });
    expect(token.tokenType).toBe('DPoP');
    expect(decodeJwt(token.accessToken).cnf).toEqual({ jkt });
  });

  it('works through an openid-client Configuration too', async () => {
    const [clientId, secret] = w.creds.agent!;
    const configuration = await oidc.discovery(new URL(w.t.issuer), clientId, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    const other = await createAgent({ configuration });
    const task = await other.startTask({ subjectToken: await w.userToken({ sub: 'sdk-4' }), intent: 'Via openid-client', resources: EXPENSES, scope: 'expenses:read', authorizationDetails: [summary] });
    expect(decodeJwt((await task.exchange({ intent: 'List', scope: 'expenses:read' })).accessToken).task).toBe(task.id);
  });

  it('refuses bad input before any request, and types the server\'s refusals', async () => {
    const user = await w.userToken();
    await expect(agent.startTask({ subjectToken: user, intent: '', resources: EXPENSES })).rejects.toBeInstanceOf(AgentInputError);
    await expect(agent.startTask({ subjectToken: user, intent: 'x', resources: [] })).rejects.toMatchObject({ field: 'resources' });
    await expect(agent.startTask({ subjectToken: user, intent: 'x', resources: 'not a uri' })).rejects.toMatchObject({ field: 'resources' });
    await expect(agent.startTask({ subjectToken: user, intent: 'x', resources: EXPENSES, renewBeforeExpirySeconds: -1 })).rejects.toMatchObject({ field: 'renewBeforeExpirySeconds' });
    const refused = await agent.startTask({ subjectToken: user, intent: 'x', resources: HR, scope: 'hr:read', authorizationDetails: [summary], purpose: 'summarize' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ExchangeDenied);
    const unknown = await agent.startTask({ subjectToken: user, intent: 'x', resources: 'https://unknown.example', scope: 'expenses:read' }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ name: 'ExchangeFailed', error: 'invalid_target' });
    expect(unknown).toBeInstanceOf(ExchangeFailed);
    expect(TASK_TOKEN_TYPE).toBe('urn:intentgate:token-type:task');
  });
});

describe('agent.tools() works in a task by default', () => {
  it('starts one task on the first call from a user\'s token; every call\'s token shares its id', async () => {
    const tools = agent.tools<{ list_expenses: Record<string, never>; read_expense: { id: string } }>({
      subjectToken: await w.userToken({ sub: 'sdk-5' }), resource: EXPENSES, intent: 'Summarise the week',
      tools: {
        list_expenses: { scope: 'expenses:read', action: 'list', object: () => ({ type: 'Expense' }), purpose: 'summarize' },
        read_expense: { scope: 'expenses:read', action: 'read', object: (a) => ({ type: 'Expense', id: a.id }), purpose: 'summarize', taskObject: { type: 'Expense' } },
      },
    });
    const a = await tools.tokenFor('list_expenses', {});
    const b = await tools.tokenFor('read_expense', { id: 'exp_1' });
    const c = await tools.tokenFor('read_expense', { id: 'exp_2' });
    const ids = [a, b, c].map((t) => decodeJwt(t.accessToken).task);
    expect(new Set(ids).size).toBe(1);
    const view = await (await w.t.admin('GET', `/admin/api/tasks/${ids[0]}`)).json() as { intent: string; ceiling: { authorization_details: unknown[] }; tokens: Array<{ kind: string }> };
    expect(view.intent).toBe('Summarise the week');
    expect(view.ceiling.authorization_details).toEqual([
      { type: 'tool_call', tool: 'list_expenses', action: 'list', purpose: 'summarize' },
      { type: 'tool_call', tool: 'read_expense', action: 'read', purpose: 'summarize', object: { type: 'Expense' } },
    ]);
    expect(view.tokens.map((t) => t.kind)).toEqual(['task', 'access', 'access', 'access']);
  });

  it('exchanges directly with task: false, or with a token intentgate issued (already in a task)', async () => {
    const spec = { list_expenses: { scope: 'expenses:read', action: 'list', object: () => ({ type: 'Expense' }) } };
    const direct = agent.tools({ subjectToken: await w.userToken({ sub: 'sdk-6' }), resource: EXPENSES, intent: 'List', task: false, tools: spec });
    const x = await direct.tokenFor('list_expenses', {});
    const y = await direct.tokenFor('list_expenses', {}, { intent: 'List again' });
    expect(decodeJwt(x.accessToken).task).not.toBe(decodeJwt(y.accessToken).task);
    const task = await agent.startTask({ subjectToken: await w.userToken({ sub: 'sdk-7' }), intent: 'Delegating', resources: EXPENSES, scope: 'expenses:read', authorizationDetails: [{ type: 'tool_call', action: 'list' }] });
    const delegation = await task.exchange({ intent: 'Hand over', audience: 'sub-agent', scope: 'expenses:read' });
    const sub = await agentFor(w, 'sub-agent');
    const subTools = sub.tools({ subjectToken: delegation.accessToken, resource: EXPENSES, intent: 'List for the planner', tools: { list: { scope: 'expenses:read', action: 'list' } } });
    expect(decodeJwt((await subTools.tokenFor('list', {})).accessToken).task).toBe(task.id);
    expect(() => agent.tools({ subjectToken: 't', resource: EXPENSES, task: true as unknown as false, tools: spec })).toThrow(AgentInputError);
    // A task token presented as such is rejected by a plain exchange's type check server-side.
    await expect(agent.exchange({ subjectToken: await task.taskToken(), intent: 'x', resource: EXPENSES })).rejects.toMatchObject({ error: 'invalid_request' });
  });
});
