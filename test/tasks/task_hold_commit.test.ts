import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ExchangeError } from '../../src/exchange/errors.ts';
import { taskRefusal } from '../../src/exchange/held.ts';
import { queryLedger } from '../../src/ledger/query.ts';
import { StandingChanged, type LedgerJob } from '../../src/ledger/writer.ts';
import { downgradeTask } from '../../src/tasks/behaviour.ts';
import { lockHold, suspend, type Standing } from '../../src/tasks/holds.ts';
import { changeTask, extendTask, insertTask } from '../../src/tasks/tasks.ts';
import { type IssuedToken } from '../../src/tokens/issued.ts';
import { revokeCascadeIn } from '../../src/tokens/revoke.ts';
import { commitWriterFixture } from '../helpers/commit_writer.ts';

// The group commit re-reads the task's standing of every grant inside a task, and a task's suspension (or
// revocation) and a commit never interleave (src/tasks/holds.ts, the hold lock): whichever commits first, no
// token of a suspended task stays live, and a grant refused at commit is refused as the task's token is.
// The jobs are shaped as the exchange's: a tool call (child of the task token) and a renewal (a new task
// token, child of the old one, moving the task's expiry). On PGlite (one connection) the transactions queue.
describe('a grant\'s commit and its task\'s suspension', () => {
  const fx = commitWriterFixture();

  const user = { issuer: 'https://idp.test', sub: 'tia' };
  const token = (task: string, kind: 'task' | 'access', parent?: string, scope = 'expenses:read'): IssuedToken => {
    const now = Date.now();
    return {
      jti: randomBytes(8).toString('hex'), client_id: 'agent', subject: user.sub, subject_issuer: user.issuer, audience: kind === 'task' ? 'https://intentgate.test' : 'https://expenses.test',
      scope, grant_type: 'token-exchange', issued_at: new Date(now), expires_at: new Date(now + 600_000), kind, task, parent_jti: parent ?? null,
    };
  };
  const entry = (task: string, jti: string) => ({ kind: 'exchange.granted', actor: 'agent', payload: { client_id: 'agent', user, task, jti } });
  /** A task started: its row and its task token, committed. */
  const started = async () => {
    const task = `tsk_${randomBytes(6).toString('hex')}`;
    const t = token(task, 'task');
    await fx.writer.commit({
      entries: [entry(task, t.jti)], tokens: [t],
      writes: (trx) => insertTask(trx, {
        task, client_id: 'agent', user, intent: 'test', scope: ['expenses:read'], resources: ['https://expenses.test'], authorization_details: [],
        task_jti: t.jti, created_at: t.issued_at, expires_at: t.expires_at, subject_expires_at: t.expires_at,
      }),
    });
    return { task, taskJti: t.jti };
  };
  // The exchange's own refusal at commit for a task renewal (src/exchange/task_start.ts).
  const refuse = (s: { task?: unknown }) => taskRefusal(s.task as Standing | undefined);
  /** A tool call in the task: a child of the task token, decided on the task being active. */
  const toolCall = (task: string, taskJti: string, writes?: LedgerJob['writes']) => {
    const t = token(task, 'access', taskJti);
    const job: LedgerJob<IssuedToken, unknown> = { entries: [entry(task, t.jti)], tokens: [t], parents: [taskJti], standing: { task, refuse }, ...(writes ? { writes } : {}) };
    return { jti: t.jti, job };
  };
  /** A renewal: a new task token, child of the old one, moving the task's expiry in the same transaction. */
  const renewal = (task: string, taskJti: string, before?: () => Promise<void>) => {
    const t = token(task, 'task', taskJti);
    const job: LedgerJob<IssuedToken, unknown> = {
      entries: [entry(task, t.jti)], tokens: [t], parents: [taskJti], standing: { task, refuse },
      writes: async (trx) => { await before?.(); await extendTask(trx, task, t.expires_at); },
    };
    return { jti: t.jti, job };
  };
  const statusOf = async (jti: string) => (await fx.db('issued_tokens').where({ jti }).first('status') as { status: string } | undefined)?.status;
  const ledgerHas = async (task: string, jti: string) => (await queryLedger(fx.db, { task }, 200)).items.some((e) => e.payload.jti === jti);
  const settledWithin = async (p: Promise<unknown>, ms: number) => {
    let settled = false;
    p.then(() => { settled = true; }, () => { settled = true; });
    await sleep(ms);
    return settled;
  };
  const refusalOf = async (p: Promise<unknown>) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StandingChanged);
    const r = (err as StandingChanged).refusal as ExchangeError;
    return { error: r.code, description: r.message, reasons: r.extra.reasons, review_id: r.extra.review_id };
  };
  /** Holds the commit's transaction open after its standing check and parent lock, until `go`. */
  const gate = () => {
    let inside!: () => void;
    let go!: () => void;
    const isInside = new Promise<void>((r) => { inside = r; });
    const going = new Promise<void>((r) => { go = r; });
    return { isInside, go, hold: async () => { inside(); await going; } };
  };

  it('suspension first (not yet committed): the tool call\'s commit waits, reads it, is refused as the task is, and records nothing', async () => {
    const { task, taskJti } = await started();
    let written!: () => void;
    let end!: () => void;
    const isWritten = new Promise<void>((r) => { written = r; });
    const ended = new Promise<void>((r) => { end = r; });
    // As suspendHold does for a task: the hold lock, the revocation (task token held), the new state.
    const suspension = fx.db.transaction(async (trx) => {
      await lockHold(trx, { per: 'task', task });
      await revokeCascadeIn(trx, { task }, 'system', 'behaviour: test', { holdTaskToken: true });
      await suspend(trx, { per: 'task', task }, 'test', 'rev_t1');
      written();
      await ended;
    });
    await isWritten;
    const { jti, job } = toolCall(task, taskJti);
    const commit = fx.writer.commit(job);
    expect(await settledWithin(commit, 300)).toBe(false);
    end();
    await suspension;
    // The refusal the exchange gives a suspended task's token (src/exchange/task_subject.ts), with its review.
    expect(await refusalOf(commit)).toEqual({ error: 'access_denied', description: 'the task is suspended pending review', reasons: ['task_suspended'], review_id: 'rev_t1' });
    expect(await statusOf(jti)).toBeUndefined();
    expect(await ledgerHas(task, jti)).toBe(false);
    // Another task's grant is untouched by it.
    const other = await started();
    await expect(fx.writer.commit(toolCall(other.task, other.taskJti).job)).resolves.toHaveLength(1);
  });

  it('tool call first: the admin\'s suspension waits for its commit, then revokes what it recorded', async () => {
    const { task, taskJti } = await started();
    const g = gate();
    const { jti, job } = toolCall(task, taskJti, g.hold);
    const commit = fx.writer.commit(job);
    await g.isInside;
    const suspension = changeTask(fx.db, task, 'suspend', 'admin', 'looks odd');
    expect(await settledWithin(suspension, 300)).toBe(false);
    g.go();
    await expect(commit).resolves.toHaveLength(1);
    await expect(suspension).resolves.toBe(true);
    expect(await statusOf(jti)).toBe('revoked');
    expect(await statusOf(taskJti)).toBe('suspended');
    // From now on the commit refuses (no review: an admin's suspension).
    expect(await refusalOf(fx.writer.commit(toolCall(task, taskJti).job))).toMatchObject({ error: 'access_denied', reasons: ['task_suspended'], review_id: undefined });
  });

  it('renewal first: the admin\'s revocation waits for its commit, then revokes the new task token', async () => {
    const { task, taskJti } = await started();
    const g = gate();
    // The renewal holds its parent (the old task token) and will write the task's row; the revocation locks
    // the row, then the tokens. Without the hold lock taken first on both sides, these two deadlock.
    const { jti, job } = renewal(task, taskJti, g.hold);
    const commit = fx.writer.commit(job);
    await g.isInside;
    const revocation = changeTask(fx.db, task, 'revoke', 'admin', 'done');
    expect(await settledWithin(revocation, 300)).toBe(false);
    g.go();
    await expect(commit).resolves.toHaveLength(1);
    await expect(revocation).resolves.toBe(true);
    expect(await statusOf(jti)).toBe('revoked');
    expect(await statusOf(taskJti)).toBe('revoked');
    expect(await refusalOf(fx.writer.commit(renewal(task, taskJti).job)))
      .toEqual({ error: 'invalid_request', description: 'subject_token has been revoked or is no longer live', reasons: undefined, review_id: undefined });
  });

  it('revocation first (not yet committed): the renewal\'s commit waits, reads it, and records nothing', async () => {
    const { task, taskJti } = await started();
    let written!: () => void;
    let end!: () => void;
    const isWritten = new Promise<void>((r) => { written = r; });
    const ended = new Promise<void>((r) => { end = r; });
    const revocation = fx.db.transaction(async (trx) => {
      await lockHold(trx, { per: 'task', task });
      await trx('tasks').where({ task }).update({ status: 'revoked' });
      await revokeCascadeIn(trx, { task }, 'admin', 'task revoked: test');
      written();
      await ended;
    });
    await isWritten;
    const { jti, job } = renewal(task, taskJti);
    const commit = fx.writer.commit(job);
    expect(await settledWithin(commit, 300)).toBe(false);
    end();
    await revocation;
    expect(await refusalOf(commit)).toMatchObject({ error: 'invalid_request', description: 'subject_token has been revoked or is no longer live' });
    expect(await statusOf(jti)).toBeUndefined();
    expect(await ledgerHas(task, jti)).toBe(false);
  });

  it('a task downgraded since the decision: a write is refused at commit, a read stands', async () => {
    const { task, taskJti } = await started();
    await downgradeTask(fx.db, task, 'volume', {});
    // As the exchange builds it: a write (no read scope left) is refused; this stand-in refuses only suspensions and
    // revocations, so the downgrade is checked through the standing the fx.writer hands it.
    const seen: unknown[] = [];
    const t = token(task, 'access', taskJti, 'expenses:submit');
    const job: LedgerJob<IssuedToken, unknown> = {
      entries: [entry(task, t.jti)], tokens: [t], parents: [taskJti],
      standing: { task, refuse: (s) => { seen.push(s.task); return (s.task as Standing).status === 'downgraded' ? new Error('task_downgraded') : undefined; } },
    };
    await expect(fx.writer.commit(job)).rejects.toBeInstanceOf(StandingChanged);
    expect(seen).toEqual([{ status: 'downgraded', review_id: null }]);
    expect(await statusOf(t.jti)).toBeUndefined();
    // A task with no row (a delegation's task from before task tokens) is active.
    const legacy = `tsk_${randomBytes(6).toString('hex')}`;
    const seenLegacy: unknown[] = [];
    await fx.writer.commit({ entries: [entry(legacy, 'x')], standing: { task: legacy, refuse: (s) => { seenLegacy.push(s.task); return undefined; } } });
    expect(seenLegacy).toEqual([{ status: 'active', review_id: null }]);
  });
});
