import pg from 'pg';
import { appendEntry } from '../ledger/append.ts';
import { isEmbedded, runStatements, type Db, type Statement } from '../store/db.ts';
import { notify } from '../store/notify.ts';

/** The tables src/tasks owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['agent_holds'] as const;

export type Standing = { status: 'active' | 'suspended' | 'downgraded'; review_id: string | null };

/**
 * What a behaviour outcome holds: one task, or one agent for one user (issuer + sub) across all its
 * tasks, so an agent that keeps starting tasks cannot shed a hold by starting another.
 */
export type HoldTarget =
  | { per: 'task'; task: string }
  | { per: 'agent'; client_id: string; user: { issuer: string; sub: string } };

const agentKey = (t: Extract<HoldTarget, { per: 'agent' }>) => ({ client_id: t.client_id, subject_issuer: t.user.issuer, subject: t.user.sub });

/**
 * The statement that reads a standing: a task's (`tasks`) or an agent's for one user (`agent_holds`); its rows
 * go to standingFrom. A statement, so a decision under the user lock reads it in the lock's round trip.
 */
export function standingRead(t: HoldTarget): Statement {
  return t.per === 'task'
    ? { sql: 'select status, review_id from tasks where task = ?', bindings: [t.task] }
    : { sql: 'select status, review_id from agent_holds where client_id = ? and subject_issuer = ? and subject = ?', bindings: [t.client_id, t.user.issuer, t.user.sub] };
}

/** The standing from standingRead's rows (no row: active). */
export function standingFrom(rows: unknown[]): Standing {
  const row = rows[0] as { status: Standing['status']; review_id: string | null } | undefined;
  return row ? { status: row.status, review_id: row.review_id ?? null } : { status: 'active', review_id: null };
}

export async function standingOf(db: Db, t: HoldTarget): Promise<Standing> {
  return standingFrom((await runStatements(db, [standingRead(t)]))[0]!);
}

/*
 * The hold lock: an advisory transaction lock per (agent, user), and one per task, in the two-int4 key space
 * (class, hash), apart from the one-bigint keys of the user locks. Why a lock and not `for share` on agent_holds:
 * most holds are new rows, and a read that finds no row locks nothing; an INSERT committed after that read's
 * snapshot would let the grant commit after the suspension revoked the agent's tokens, and live on. So every
 * hold write (an agent's, or a task's suspension, downgrade, revocation or lifting) takes it exclusive before it
 * reads, locks or revokes anything, and the ledger's group commit takes it shared, in the statement before its
 * read of the standings: either the hold committed first (and the commit reads it), or the commit did (and the
 * suspension, waiting for it, revokes what it recorded). Taken first on both sides, it also orders a task's
 * suspension (task row, then its tokens) against a renewal's commit (its parent token, then the task row), which
 * would otherwise deadlock. A hash collision only serialises two unrelated keys. The embedded database has one
 * connection: its transactions never interleave.
 */
const HOLD_LOCK_CLASS = 0x1a7e_0100;
const TASK_LOCK_CLASS = 0x1a7e_0101;
const lockText = (client_id: string, issuer: string, sub: string) => JSON.stringify([client_id, issuer, sub]);

/** Takes the target's hold lock before its standing is written or its tokens revoked. */
export async function lockHold(trx: Db, t: HoldTarget): Promise<void> {
  if (isEmbedded(trx)) return;
  if (t.per === 'task') await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [TASK_LOCK_CLASS, t.task]);
  else await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [HOLD_LOCK_CLASS, lockText(t.client_id, t.user.issuer, t.user.sub)]);
}

/**
 * For the ledger's group commit: the standing of each agent (for its user) and of each task, in order, held
 * against change until the batch commits (the hold locks, shared). One round trip per batch whatever its size:
 * on PostgreSQL the locks and the reads are statements of one simple-query message, each on a snapshot of its
 * own (READ COMMITTED), so the reads see every hold committed before the locks were granted (a read in the
 * locks' statement would not). Their values go as quoted literals (the simple protocol has no parameters).
 * A task with no row (a delegation's task from before task tokens) is active.
 */
export async function lockStandings(trx: Db, agents: Array<{ client_id: string; issuer: string; sub: string }>, tasks: string[] = []): Promise<{ agents: Standing[]; tasks: Standing[] }> {
  if (agents.length === 0 && tasks.length === 0) return { agents: [], tasks: [] };
  type Row = { client_id: string; subject_issuer: string; subject: string; status: Standing['status']; review_id: string | null };
  type TaskRow = { task: string; status: Standing['status']; review_id: string | null };
  const readAgents = (list: (values: string[]) => string) => 'select client_id, subject_issuer, subject, status, review_id from agent_holds'
    + ` where (client_id, subject_issuer, subject) in (select * from unnest(${list(agents.map((a) => a.client_id))}, ${list(agents.map((a) => a.issuer))}, ${list(agents.map((a) => a.sub))}))`;
  const readTasks = (list: (values: string[]) => string) => `select task, status, review_id from tasks where task = any(${list(tasks)})`;
  let rows: Row[] = [];
  let taskRows: TaskRow[] = [];
  if (isEmbedded(trx)) {
    if (agents.length) rows = ((await trx.raw(readAgents(() => '?::text[]'), [agents.map((a) => a.client_id), agents.map((a) => a.issuer), agents.map((a) => a.sub)])) as { rows: Row[] }).rows;
    if (tasks.length) taskRows = ((await trx.raw(readTasks(() => '?::text[]'), [tasks])) as { rows: TaskRow[] }).rows;
  } else {
    const list = (values: string[]) => `array[${values.map((v) => pg.escapeLiteral(v)).join(', ')}]::text[]`;
    // Sorted, so two batches always take them in the same order.
    const keys = [
      ...[...new Set(agents.map((a) => lockText(a.client_id, a.issuer, a.sub)))].sort().map((k) => [HOLD_LOCK_CLASS, k] as const),
      ...[...new Set(tasks)].sort().map((k) => [TASK_LOCK_CLASS, k] as const),
    ];
    const locks = `select count(pg_advisory_xact_lock_shared(c, hashtext(k))) from unnest(array[${keys.map(([c]) => c).join(', ')}]::int[], ${list(keys.map(([, k]) => k))}) as u(c, k)`;
    const statements = [locks, ...(agents.length ? [readAgents(list)] : []), ...(tasks.length ? [readTasks(list)] : [])];
    const results = await trx.raw(statements.join(';\n')) as unknown as Array<{ rows: unknown[] }>;
    if (!Array.isArray(results) || results.length !== statements.length) throw new Error('the standings round trip answered a different number of statements than it sent');
    if (agents.length) rows = results[1]!.rows as Row[];
    if (tasks.length) taskRows = results[statements.length - 1]!.rows as TaskRow[];
  }
  const held = new Map(rows.map((r) => [lockText(r.client_id, r.subject_issuer, r.subject), { status: r.status, review_id: r.review_id ?? null }]));
  const byTask = new Map(taskRows.map((r) => [r.task, { status: r.status, review_id: r.review_id ?? null }]));
  return {
    agents: agents.map((a) => held.get(lockText(a.client_id, a.issuer, a.sub)) ?? ACTIVE),
    tasks: tasks.map((t) => byTask.get(t) ?? ACTIVE),
  };
}

/** Every change to agent_holds is notified here, in its transaction: each process then reloads its copy. */
export const HOLDS_CHANNEL = 'intentgate_holds';

const ACTIVE: Standing = Object.freeze({ status: 'active', review_id: null }) as Standing;
const cacheKey = (client_id: string, issuer: string, sub: string) => JSON.stringify([client_id, issuer, sub]);

// This process's copies, by the database they copy, and how many hold writes of this process have not
// yet committed and been reloaded: until they have, every standing is read from the database.
const caches = new Map<Db, AgentHoldCache>();
let writesInFlight = 0;

/**
 * The agent holds (agent_holds: only agents that are held, for a user), in this process's memory, so an
 * exchange needs no round trip to learn that its agent is in good standing. A write by this process makes
 * every read go to the database until it has committed and the copy is reloaded; a write by another process
 * arrives by NOTIFY, and the copy is dropped until reloaded. While the notification connection is down (or
 * before it is up) the copy is not used at all: standing is read from the database, as without a cache.
 */
export class AgentHoldCache {
  readonly #db: Db;
  #rows: ReadonlyMap<string, Standing> | undefined;
  #listening: boolean;
  #generation = 0;
  #running: Promise<void> | undefined;

  /** `listening`: no other process writes (embedded database), or notifications are being heard. */
  constructor(db: Db, listening: boolean) {
    this.#db = db;
    this.#listening = listening;
    caches.set(db, this);
  }

  /** The standing in memory, or undefined when the copy cannot be relied on now. */
  lookup(client_id: string, user: { issuer: string; sub: string }): Standing | undefined {
    if (!this.#listening || writesInFlight > 0 || !this.#rows) return undefined;
    return this.#rows.get(cacheKey(client_id, user.issuer, user.sub)) ?? ACTIVE;
  }

  /** A change was notified (or made here): drop the copy, and load it again. */
  changed(): Promise<void> {
    this.#generation++;
    this.#rows = undefined;
    return this.reload();
  }

  /** The notification connection is up again (or went down): notifications may have been missed. */
  listening(up: boolean): void {
    this.#listening = up;
    void this.changed().catch(() => undefined);
  }

  /** Reads the table; a read overtaken by a change is repeated, so the copy installed is never older than one. */
  reload(): Promise<void> {
    this.#running ??= (async () => {
      try {
        for (;;) {
          const generation = this.#generation;
          const rows = await this.#db('agent_holds').select('client_id', 'subject_issuer', 'subject', 'status', 'review_id') as
            Array<{ client_id: string; subject_issuer: string; subject: string; status: Standing['status']; review_id: string | null }>;
          if (generation !== this.#generation) continue;
          this.#rows = new Map(rows.map((r) => [cacheKey(r.client_id, r.subject_issuer, r.subject), { status: r.status, review_id: r.review_id ?? null }]));
          return;
        }
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  close(): void {
    if (caches.get(this.#db) === this) caches.delete(this.#db);
  }
}

/** The agent's standing for this user (`agent_holds`; no row: active): from memory when it can be relied on. */
export async function agentStanding(db: Db, client_id: string, user: { issuer: string; sub: string }): Promise<Standing> {
  return caches.get(db)?.lookup(client_id, user) ?? standingOf(db, { per: 'agent', client_id, user });
}

/**
 * Around a write of agent_holds: every copy in this process is bypassed from before the write until the
 * transaction has ended and the copies are reloaded; other processes hear of it by NOTIFY on commit.
 */
async function writingHolds(trx: Db, write: () => Promise<unknown>): Promise<void> {
  writesInFlight++;
  let ended: Promise<unknown> | undefined;
  try {
    await write();
    await notify(trx, HOLDS_CHANNEL, 'agent_holds');
    ended = (trx as { executionPromise?: Promise<unknown> }).executionPromise;
  } finally {
    // Not a transaction (or the write failed): the change, if any, is already in force.
    void Promise.resolve(ended).catch(() => undefined)
      .then(() => Promise.all([...caches.values()].map((c) => c.changed().catch(() => undefined))))
      .finally(() => { writesInFlight--; });
  }
}

async function current(trx: Db, t: HoldTarget): Promise<{ status: string; review_id: string | null } | undefined> {
  return t.per === 'task'
    ? trx('tasks').where({ task: t.task }).forUpdate().first('status', 'review_id')
    : trx('agent_holds').where(agentKey(t)).forUpdate().first('status', 'review_id');
}

async function put(trx: Db, t: HoldTarget, status: 'active' | 'suspended' | 'downgraded', reason: string, reviewId: string | null): Promise<void> {
  const now = new Date();
  await lockHold(trx, t);
  if (t.per === 'task') {
    await trx('tasks').insert({ task: t.task, status, reason, review_id: reviewId, updated_at: now }).onConflict('task').merge();
  } else if (status === 'active') {
    await writingHolds(trx, () => trx('agent_holds').where(agentKey(t)).del());
  } else {
    await writingHolds(trx, () => trx('agent_holds').insert({ ...agentKey(t), status, reason, review_id: reviewId, updated_at: now })
      .onConflict(['client_id', 'subject_issuer', 'subject']).merge());
  }
}

const entryFields = (t: HoldTarget) => (t.per === 'task' ? { task: t.task } : { client_id: t.client_id, user: t.user });

/**
 * Downgrades the target to read scopes (optionally held by a review a person decides). Only an active
 * target is downgraded: a suspension is stricter, and a second downgrade records nothing new.
 * Returns whether it changed anything.
 */
export async function downgrade(db: Db, t: HoldTarget, rule: string, evidence: Record<string, unknown>, reviewId: string | null = null): Promise<boolean> {
  return db.transaction(async (trx) => {
    await lockHold(trx, t);
    const row = await current(trx, t);
    if (row && row.status !== 'active') return false;
    await put(trx, t, 'downgraded', rule, reviewId);
    await appendEntry(trx, { kind: `${t.per}.downgraded`, actor: 'system', payload: { ...entryFields(t), rule, evidence, ...(reviewId ? { review_id: reviewId } : {}) } });
    return true;
  });
}

/** Suspends the target (its tokens are revoked by the caller, in the same transaction). */
export async function suspend(trx: Db, t: HoldTarget, reason: string, reviewId: string | null): Promise<void> {
  await put(trx, t, 'suspended', reason, reviewId);
}

/** Lifts the hold a review placed, when that review still holds it. Returns whether it did. */
export async function lift(trx: Db, t: HoldTarget, reviewId: string): Promise<boolean> {
  await lockHold(trx, t);
  const row = await current(trx, t);
  if (!row || row.status === 'active' || row.review_id !== reviewId) return false;
  await put(trx, t, 'active', 'review approved', null);
  await appendEntry(trx, { kind: `${t.per}.restored`, actor: 'system', payload: { ...entryFields(t), review_id: reviewId } });
  return true;
}
