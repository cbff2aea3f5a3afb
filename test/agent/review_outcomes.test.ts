import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentInputError, ApprovalPending, ExchangeDenied, ExchangeFailed, type Agent, type ExchangeRequest } from '@intentgate/agent';
import { reviewerToken } from '../helpers/server.ts';
import { EXPENSES, HR, IDP, startWorld, type World } from '../helpers/world.ts';
import { agentFor } from './helpers.ts';

let w: World;
let agent: Agent;
let reviewer: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review.yaml') } });
  reviewer = await reviewerToken(w.t, IDP, 'rita');
  const created = await w.t.admin('POST', '/admin/api/clients', { client_id: 'summarizer', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'expenses:read hr:read' });
  w.creds.summarizer = ['summarizer', ((await created.json()) as { client_secret: string }).client_secret];
  agent = await agentFor(w);
});
afterAll(async () => { await w?.t.stop(); });

async function pendingFor(id: string): Promise<ApprovalPending> {
  const request: ExchangeRequest = {
    subjectToken: await w.userToken(), intent: `Approve the large expense ${id}`, resource: EXPENSES, scope: 'expenses:approve',
    authorizationDetails: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id, amount: 5000 } }],
  };
  const err = await agent.exchange(request).catch((e: unknown) => e);
  if (!(err instanceof ApprovalPending)) throw new Error(`expected ApprovalPending, got ${String(err)}`);
  return err;
}

describe('review outcomes the agent reports', () => {
  it('throws ExchangeDenied with review_denied after a reviewer denies', async () => {
    const pending = await pendingFor('exp_d1');
    expect((await w.t.admin('POST', `/admin/api/reviews/${pending.reviewId}/deny`, { comment: 'no' }, reviewer)).status).toBe(200);
    const err = await agent.waitForApproval(pending).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExchangeDenied);
    expect(err).toMatchObject({ error: 'access_denied', reasons: ['review_denied'] });
  }, 20_000);

  it('throws ExchangeFailed expired_token when the review lapsed', async () => {
    const pending = await pendingFor('exp_d2');
    await w.t.server.db('reviews').where({ id: pending.reviewId }).update({ expires_at: new Date(Date.now() - 1000) });
    const err = await agent.waitForApproval(pending).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExchangeFailed);
    expect(err).not.toBeInstanceOf(ExchangeDenied);
    expect(err).toMatchObject({ error: 'expired_token' });
  }, 20_000);

  it('stops waiting when the signal aborts or the timeout passes, without polling', async () => {
    const pending = await pendingFor('exp_d3');
    let polls = 0;
    const controller = new AbortController();
    const aborted = agent.waitForApproval(pending, { signal: controller.signal, onPoll: () => { polls++; } }).catch((e: unknown) => e);
    controller.abort(new Error('the user cancelled'));
    expect(await aborted).toMatchObject({ message: 'the user cancelled' });
    const timedOut = await agent.waitForApproval(pending, { timeoutMs: 50, onPoll: () => { polls++; } }).catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ name: 'TimeoutError' });
    expect(polls).toBe(0);
    await expect(agent.waitForApproval(pending, { timeoutMs: -1 })).rejects.toBeInstanceOf(AgentInputError);
    await expect(agent.waitForApproval(new Error('not pending') as never)).rejects.toBeInstanceOf(AgentInputError);
  });

  it('carries the review id of a suspended task on ExchangeDenied', async () => {
    const summarizer = await agentFor(w, 'summarizer');
    const delegation = await agent.exchange({
      subjectToken: await w.userToken({ sub: 'ivy' }), intent: 'Summarise the quarter', audience: 'summarizer', scope: ['expenses:read', 'hr:read'],
      authorizationDetails: [{ type: 'tool_call', action: 'read', purpose: 'summarize' }],
    });
    const err = await summarizer.exchange({ subjectToken: delegation.accessToken, intent: 'Summarise', resource: HR, scope: 'hr:read' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExchangeDenied);
    expect(err).toMatchObject({ reasons: ['restricted_data_for_summary', 'task_suspended'], reviewId: expect.stringMatching(/^rev_/) });
  });
});
