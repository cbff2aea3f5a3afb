import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { StandingChanged, type LedgerJob } from '../../src/ledger/writer.ts';
import { suspendHold } from '../../src/tasks/behaviour.ts';
import { suspend, type Standing } from '../../src/tasks/holds.ts';
import { type IssuedToken } from '../../src/tokens/issued.ts';
import { commitWriterFixture } from '../helpers/commit_writer.ts';

// The group commit re-reads each grant's agent standing, and a hold write and a commit never interleave
// (src/tasks/holds.ts, the hold lock): whichever commits first, no token for a held agent stays live.
// On PGlite (one connection) the transactions queue for the connection: the same two orders, nothing between.
describe('a grant\'s commit and an agent hold for the same user', () => {
  const fx = commitWriterFixture();

  const user = (sub: string) => ({ issuer: 'https://idp.test', sub });
  const grant = (sub: string, writes?: LedgerJob['writes']): { jti: string; job: LedgerJob<IssuedToken, unknown> } => {
    const jti = randomBytes(8).toString('hex');
    const now = Date.now();
    return {
      jti,
      job: {
        entries: [{ kind: 'exchange.granted', actor: 'agent', payload: { client_id: 'agent', user: user(sub), jti } }],
        tokens: [{
          jti, client_id: 'agent', subject: sub, subject_issuer: 'https://idp.test', audience: 'https://expenses.test', scope: 'expenses:read',
          grant_type: 'token-exchange', issued_at: new Date(now), expires_at: new Date(now + 600_000), kind: 'access',
        }],
        ...(writes ? { writes } : {}),
        standing: {
          agent: { client_id: 'agent', issuer: 'https://idp.test', sub },
          refuse: (s) => ((s.agent as Standing).status === 'suspended' ? new Error('agent_suspended') : undefined),
        },
      },
    };
  };
  const statusOf = async (jti: string) => (await fx.db('issued_tokens').where({ jti }).first('status') as { status: string } | undefined)?.status;
  const settledWithin = async (p: Promise<unknown>, ms: number) => {
    let settled = false;
    p.then(() => { settled = true; }, () => { settled = true; });
    await sleep(ms);
    return settled;
  };

  it('a hold written first (a new row, not yet committed): the commit waits for it, reads it, and records nothing', async () => {
    let written!: () => void;
    let end!: () => void;
    const isWritten = new Promise<void>((r) => { written = r; });
    const ended = new Promise<void>((r) => { end = r; });
    const hold = fx.db.transaction(async (trx) => {
      await suspend(trx, { per: 'agent', client_id: 'agent', user: user('ann') }, 'test', null);
      written();
      await ended;
    });
    await isWritten;
    const { jti, job } = grant('ann');
    const commit = fx.writer.commit(job);
    expect(await settledWithin(commit, 300)).toBe(false);
    end();
    await hold;
    const err = await commit.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StandingChanged);
    expect((err as StandingChanged).refusal.message).toBe('agent_suspended');
    expect(await statusOf(jti)).toBeUndefined();
    // Another agent's (or user's) grant is untouched by it.
    await expect(fx.writer.commit(grant('bea').job)).resolves.toHaveLength(1);
  });

  it('a commit under way first: the suspension waits for it, then revokes what it recorded', async () => {
    let inside!: () => void;
    let go!: () => void;
    const isInside = new Promise<void>((r) => { inside = r; });
    const going = new Promise<void>((r) => { go = r; });
    // The commit holds its transaction open after its standing check (its rows are written after this).
    const { jti, job } = grant('cal', async () => { inside(); await going; });
    const commit = fx.writer.commit(job);
    await isInside;
    const binding = { client_id: 'agent', user: user('cal'), task: null, scope: [], resource: '', details: [] };
    const suspension = suspendHold(fx.db, { per: 'agent', client_id: 'agent', user: user('cal') }, binding, {}, ['test']);
    expect(await settledWithin(suspension, 300)).toBe(false);
    go();
    await expect(commit).resolves.toHaveLength(1);
    await suspension;
    expect(await statusOf(jti)).toBe('revoked');
    // And from now on the commit refuses.
    await expect(fx.writer.commit(grant('cal').job)).rejects.toBeInstanceOf(StandingChanged);
  });

  it('reads the standing of users whose names need quoting, and only theirs', async () => {
    const odd = 'd\'o\\"x; --';
    await suspend(fx.db, { per: 'agent', client_id: 'agent', user: user(odd) }, 'test', null);
    await expect(fx.writer.commit(grant(odd).job)).rejects.toBeInstanceOf(StandingChanged);
    await expect(fx.writer.commit(grant(`${odd}2`).job)).resolves.toHaveLength(1);
  });
});
