import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalPending, ExchangeFailed, type Agent, type ExchangeRequest } from '@intentgate/agent';
import { reviewerToken } from '../helpers/server.ts';
import { EXPENSES, IDP, startWorld, type World } from '../helpers/world.ts';
import { agentFor } from './helpers.ts';

let w: World;
let agent: Agent;
let reviewer: string;
beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review.yaml') } });
  agent = await agentFor(w);
  reviewer = await reviewerToken(w.t, IDP, 'rita');
});
afterAll(async () => { await w?.t.stop(); });

async function bigApproval(id: string): Promise<ExchangeRequest> {
  return {
    subjectToken: await w.userToken(), intent: `Approve the large expense ${id}`, resource: EXPENSES, scope: 'expenses:approve',
    authorizationDetails: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id, amount: 5000 } }],
  };
}

async function pendingFor(request: ExchangeRequest): Promise<ApprovalPending> {
  const err = await agent.exchange(request).catch((e: unknown) => e);
  if (!(err instanceof ApprovalPending)) throw new Error(`expected ApprovalPending, got ${String(err)}`);
  return err;
}

async function decide(reviewId: string, verdict: 'approve' | 'deny'): Promise<void> {
  const res = await w.t.admin('POST', `/admin/api/reviews/${reviewId}/${verdict}`, { comment: `${verdict} from the agent tests` }, reviewer);
  if (res.status !== 200) throw new Error(`${verdict}: ${res.status} ${await res.text()}`);
}

describe('human review through the agent', () => {
  it('raises ApprovalPending with the review id, the interval and the request to repeat', async () => {
    const request = await bigApproval('exp_r1');
    const pending = await pendingFor(request);
    expect(pending).toMatchObject({ error: 'authorization_pending', status: 400, interval: 5 });
    expect(pending.reviewId).toMatch(/^rev_/);
    expect(pending.request).toEqual(request);
    // Repeating at once is too fast: the server's own slow_down.
    const tooFast = await agent.exchange({ ...request, reviewId: pending.reviewId }).catch((e: unknown) => e);
    expect(tooFast).toBeInstanceOf(ExchangeFailed);
    expect(tooFast).toMatchObject({ error: 'slow_down', body: { review_id: pending.reviewId } });
  });

  it('waits while the review is pending and returns the token once a reviewer approves', async () => {
    const pending = await pendingFor(await bigApproval('exp_r2'));
    const polls: Array<{ attempt: number; interval: number }> = [];
    let approval: Promise<void> | undefined;
    const token = await agent.waitForApproval(pending, {
      onPoll: ({ attempt, interval }) => {
        polls.push({ attempt, interval });
        // Approve only after the first poll has been answered: that one must have been pending.
        if (attempt === 2) approval = decide(pending.reviewId, 'approve');
      },
    });
    await approval;
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.every((p) => p.interval === 5)).toBe(true);
    expect(token).toMatchObject({ tokenType: 'Bearer', scope: ['expenses:approve'] });
    expect(decodeJwt(token.accessToken)).toMatchObject({ sub: 'alice', scope: 'expenses:approve', authorization_details: [{ object: { id: 'exp_r2', amount: 5000 } }] });
  }, 30_000);

  it('adds five seconds to the interval on slow_down (RFC 8628 §3.5)', async () => {
    const real = await pendingFor(await bigApproval('exp_r3'));
    // Polling after 1 s is faster than the server allows: it answers slow_down, and the next poll waits 6 s.
    const hurried = new ApprovalPending({ error: 'authorization_pending', status: 400, body: {}, reviewId: real.reviewId, interval: 1, request: real.request });
    const intervals: number[] = [];
    let approval: Promise<void> | undefined;
    const token = await agent.waitForApproval(hurried, {
      onPoll: ({ attempt, interval }) => {
        intervals.push(interval);
        if (attempt === 2) approval = decide(real.reviewId, 'approve');
      },
    });
    await approval;
    expect(intervals.slice(0, 2)).toEqual([1, 6]);
    expect(intervals.slice(2).every((i) => i === 6)).toBe(true);
    expect(decodeJwt(token.accessToken)).toMatchObject({ scope: 'expenses:approve' });
  }, 30_000);
});
