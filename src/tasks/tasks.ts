import { appendEntry } from '../ledger/append.ts';
import { countKinds, queryLedger, type LedgerEntry } from '../ledger/query.ts';
import { hasPassed } from '../../packages/resource/src/protocol/time.ts';
import { pageParams } from '../registry/pagination.ts';
import { getResource } from '../registry/resources.ts';
import { ValidationError } from '../validate/schema.ts';
import type { Db } from '../store/db.ts';
import { isLive } from '../tokens/live.ts';
import { taskHasTokens, tokensOfTask } from '../tokens/issued.ts';
import { releaseTaskToken, revokeCascadeIn } from '../tokens/revoke.ts';
import { lockHold } from './holds.ts';

/** The tables src/tasks owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['tasks'] as const;

/**
 * The `tasks` table: one row per task started with a task token (who, for whom, why, its ceiling and
 * lifetime), and the state behaviour rules and admins set on a task (`active`, `suspended`, `downgraded`,
 * `revoked`). Tasks from before task tokens (a delegation's task id) get a row only when their state changes.
 */
export type TaskState = 'active' | 'suspended' | 'downgraded' | 'revoked';
/** What an admin sees: the stored state, or `expired` once an active or downgraded task has outlived its token. */
export type ShownState = TaskState | 'expired';
export const SHOWN_STATES: readonly ShownState[] = ['active', 'suspended', 'downgraded', 'revoked', 'expired'];

export interface AuthorizationDetailLike { type: string; purpose?: unknown; [k: string]: unknown }

export interface NewTask {
  task: string;
  client_id: string;
  user: { issuer: string; sub: string };
  intent: string | undefined;
  scope: string[];
  resources: string[];
  authorization_details: AuthorizationDetailLike[];
  task_jti: string;
  created_at: Date;
  expires_at: Date;
  /** When the user's token the task was started with expires. */
  subject_expires_at: Date;
}

export interface TaskRow {
  task: string;
  status: TaskState;
  reason: string | null;
  review_id: string | null;
  client_id: string | null;
  subject_issuer: string | null;
  subject: string | null;
  intent: string | null;
  purpose: string | null;
  scope: string | null;
  resources: string[] | null;
  authorization_details: AuthorizationDetailLike[] | null;
  task_jti: string | null;
  created_at: Date | string | null;
  expires_at: Date | string | null;
  subject_expires_at: Date | string | null;
}

/** A task's purpose: the one purpose its authorization details declare, or null when they declare none or several. */
export function purposeOf(details: readonly AuthorizationDetailLike[]): string | null {
  const purposes = new Set(details.map((d) => d.purpose).filter((p): p is string => typeof p === 'string'));
  return purposes.size === 1 ? [...purposes][0]! : null;
}

/** The task's row, written in the transaction that records its task token (LedgerJob.writes). */
export async function insertTask(trx: Db, t: NewTask): Promise<void> {
  await trx('tasks').insert({
    task: t.task, status: 'active', reason: null, review_id: null, updated_at: t.created_at,
    client_id: t.client_id, subject_issuer: t.user.issuer, subject: t.user.sub, intent: t.intent ?? null,
    purpose: purposeOf(t.authorization_details), scope: t.scope.join(' '), resources: JSON.stringify(t.resources),
    authorization_details: JSON.stringify(t.authorization_details), task_jti: t.task_jti, created_at: t.created_at, expires_at: t.expires_at, subject_expires_at: t.subject_expires_at,
  });
}

/** A renewed task token moves the task's expiry (in the transaction that records the new token). */
export async function extendTask(trx: Db, task: string, expiresAt: Date): Promise<void> {
  await trx('tasks').where({ task }).update({ expires_at: expiresAt, updated_at: new Date() });
}

export async function getTask(db: Db, task: string): Promise<TaskRow | undefined> {
  return db('tasks').where({ task }).first();
}

function shown(row: Pick<TaskRow, 'status' | 'expires_at'>): ShownState {
  if ((row.status === 'active' || row.status === 'downgraded') && row.expires_at && hasPassed(row.expires_at)) return 'expired';
  return row.status;
}

const iso = (v: unknown): string | null => (v ? new Date(v as string).toISOString() : null);

function listItem(r: TaskRow) {
  return {
    task: r.task, agent: r.client_id, user: { iss: r.subject_issuer, sub: r.subject }, intent: r.intent, purpose: r.purpose,
    status: shown(r), created_at: iso(r.created_at), expires_at: iso(r.expires_at),
  };
}

const LIST_PARAMS = new Set(['agent', 'user_iss', 'user_sub', 'status', 'cursor', 'limit']);

/**
 * `GET /admin/api/tasks`: tasks started with a task token, newest first, filtered by agent, user and state.
 * Unknown or repeated query parameters are refused, so a misspelt filter never silently lists everything.
 */
export async function listTasks(db: Db, query: URLSearchParams): Promise<{ items: ReturnType<typeof listItem>[]; next_cursor: string | null }> {
  for (const name of new Set(query.keys())) {
    if (!LIST_PARAMS.has(name)) throw new ValidationError(`${name} is not a recognised query parameter (agent, user_iss, user_sub, status, cursor, limit)`, name);
    if (query.getAll(name).length > 1) throw new ValidationError(`${name} must not be given twice`, name);
  }
  const { limit, after } = pageParams(query);
  const q = db('tasks').whereNotNull('task_jti');
  for (const [param, column] of [['agent', 'client_id'], ['user_iss', 'subject_issuer'], ['user_sub', 'subject']] as const) {
    const v = query.get(param);
    if (v === null) continue;
    if (v === '' || v.length > 2000 || v.includes('\0')) throw new ValidationError(`${param} must be 1 to 2000 characters, without NUL`, param);
    q.where(column, v);
  }
  const status = query.get('status');
  if (status !== null) {
    if (!(SHOWN_STATES as readonly string[]).includes(status)) throw new ValidationError(`status must be one of ${SHOWN_STATES.join(', ')}`, 'status');
    const now = new Date();
    if (status === 'expired') q.whereIn('status', ['active', 'downgraded']).where('expires_at', '<=', now);
    else if (status === 'active' || status === 'downgraded') q.where({ status }).where('expires_at', '>', now);
    else q.where({ status });
  }
  // Keyset over the order tasks were started in, newest first; the cursor is the last item's place.
  if (after !== undefined) {
    if (!/^\d{1,18}$/.test(after)) throw new ValidationError('cursor is not one this server issued', 'cursor');
    q.where('seq', '<', after);
  }
  const rows = (await q.orderBy('seq', 'desc').limit(limit + 1)) as Array<TaskRow & { seq: number | string }>;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(listItem),
    next_cursor: rows.length > limit && last ? Buffer.from(String(last.seq), 'utf8').toString('base64url') : null,
  };
}

interface TokenRow {
  jti: string; parent_jti: string | null; kind: string | null; client_id: string; audience: string; scope: string;
  status: string; issued_at: Date; expires_at: Date; subject_issuer: string | null; subject: string | null; authorization_details: unknown;
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** One line per ledger entry about the task; personal text (intents, context) is never in it. */
function summary(e: LedgerEntry): string {
  const p = e.payload;
  const reasons = list(p.reasons);
  switch (e.kind) {
    case 'exchange.granted':
      return `${p.client_id} was granted ${list(p.granted_scope).join(' ') || '(no scope)'} for ${p.audience}`;
    case 'exchange.denied':
      return `${p.client_id} was refused ${p.audience ?? ''}: ${p.error}${reasons.length ? ` (${reasons.join(', ')})` : ''}`;
    case 'token.revoked':
      return `${list(p.revoked).length} token(s) revoked${list(p.suspended).length ? `, task token suspended` : ''}: ${p.reason}`;
    case 'review.opened':
      return `review ${p.review_id} opened (${p.review_kind})${reasons.length ? `: ${reasons.join(', ')}` : ''}`;
    case 'review.approved':
    case 'review.denied':
      return `review ${p.review_id} ${e.kind === 'review.approved' ? 'approved' : 'denied'} by ${e.actor}`;
    case 'task.downgraded':
      return `downgraded to read scopes by rule ${p.rule}`;
    case 'task.suspended':
    case 'task.resumed':
    case 'task.revoked':
      return `${e.kind.slice('task.'.length)} by ${e.actor}${p.reason ? `: ${p.reason}` : ''}`;
    case 'resource.event':
      return `${e.actor} reported ${p.action} ${JSON.stringify(p.object ?? {})}: ${p.outcome}`;
    default:
      return e.kind;
  }
}

const EVIDENCE_LIMIT = 200;

/**
 * `GET /admin/api/tasks/{task}`: the task with its ceiling, counters, tokens and the ledger entries about it
 * (the latest 200). A task from before task tokens (a delegation's task id) is shown from its tokens.
 */
export async function taskView(db: Db, task: string): Promise<Record<string, unknown> | undefined> {
  const [row, tokens] = await Promise.all([
    getTask(db, task),
    tokensOfTask(db, task) as Promise<TokenRow[]>,
  ]);
  if (!row && tokens.length === 0) return undefined;
  // Issue times have whole seconds: within one, a parent comes before its children (the tree's depth).
  const parentOf = new Map(tokens.map((t) => [t.jti, t.parent_jti]));
  const depth = (jti: string) => { let n = 0; for (let p = parentOf.get(jti); p && n < 64; p = parentOf.get(p)) n++; return n; };
  tokens.sort((a, b) => new Date(a.issued_at).getTime() - new Date(b.issued_at).getTime() || depth(a.jti) - depth(b.jti) || (a.jti < b.jti ? -1 : 1));
  const [counts, ledger] = await Promise.all([
    countKinds(db, { task }, ['exchange.granted', 'exchange.denied']),
    queryLedger(db, { task }, EVIDENCE_LIMIT),
  ]);
  // Tokens recorded before the index said their kind: one for a registered resource is an access token.
  const kinds = new Map<string, 'access' | 'delegation'>();
  for (const aud of new Set(tokens.filter((t) => !t.kind).map((t) => t.audience))) kinds.set(aud, (await getResource(db, aud)) ? 'access' : 'delegation');
  const root = tokens.find((t) => t.kind === 'task') ?? tokens.find((t) => !t.parent_jti) ?? tokens[0];
  const state: ShownState = row ? shown(row) : 'active';
  return {
    task,
    agent: row?.client_id ?? root?.client_id ?? null,
    user: { iss: row?.subject_issuer ?? root?.subject_issuer ?? null, sub: row?.subject ?? root?.subject ?? null },
    intent: row?.intent ?? null,
    purpose: row?.purpose ?? (Array.isArray(root?.authorization_details) ? purposeOf(root.authorization_details as AuthorizationDetailLike[]) : null),
    status: state,
    ...(state === 'suspended' ? { suspension: { reason: row?.reason ?? null, review_id: row?.review_id ?? null } } : {}),
    ceiling: row?.task_jti
      ? { scope: (row.scope ?? '').split(' ').filter(Boolean), resources: row.resources ?? [], authorization_details: row.authorization_details ?? [] }
      : { scope: (root?.scope ?? '').split(' ').filter(Boolean), resources: root ? [root.audience] : [], authorization_details: Array.isArray(root?.authorization_details) ? root.authorization_details : [] },
    counters: {
      granted: counts['exchange.granted'] ?? 0,
      denied: counts['exchange.denied'] ?? 0,
      live_tokens: tokens.filter((t) => isLive(t)).length,
    },
    tokens: tokens.map((t) => ({
      jti: t.jti, parent_jti: t.parent_jti, kind: t.kind ?? kinds.get(t.audience)!, client_id: t.client_id, audience: t.audience,
      scope: t.scope, status: t.status === 'active' && hasPassed(t.expires_at) ? 'expired' : t.status, issued_at: iso(t.issued_at), expires_at: iso(t.expires_at),
    })),
    evidence: [...ledger.items].reverse().map((e) => ({ seq: e.seq, kind: e.kind, created_at: e.at, summary: summary(e) })),
  };
}

/**
 * Locks the task's row for a state change, creating one for a task from before task tokens. Undefined when
 * nothing is known of the task. The row is locked before any token row and the ledger head (the order
 * every task state change takes).
 */
async function lockTask(trx: Db, task: string): Promise<TaskRow | undefined> {
  const row = await trx('tasks').where({ task }).forUpdate().first();
  if (row) return row;
  if (!(await taskHasTokens(trx, task))) return undefined;
  await trx('tasks').insert({ task, status: 'active', updated_at: new Date() }).onConflict('task').ignore();
  return trx('tasks').where({ task }).forUpdate().first();
}

const conflict = (task: string, state: string, what: string) => new ValidationError(`task ${task} is ${state}; it cannot be ${what}`, 'task', 409, 'conflict');

export type TaskChange = 'suspend' | 'resume' | 'revoke';

/**
 * An admin suspends, resumes or revokes a task, recorded in the ledger with who did it. Suspending revokes
 * every token derived from the task token and holds the task token (refused until the task resumes);
 * resuming makes the held task token live again; revoking revokes every token of the task, for good.
 * Repeating a change that already holds (suspending a suspended task) changes and records nothing.
 */
export async function changeTask(db: Db, task: string, change: TaskChange, actor: string, reason: string | undefined): Promise<boolean> {
  return db.transaction(async (trx) => {
    // The task's hold lock before its row and tokens: a grant in the task committing meanwhile either commits
    // first (and is revoked here) or waits and reads the new state (src/tasks/holds.ts, lockHold).
    await lockHold(trx, { per: 'task', task });
    const row = await lockTask(trx, task);
    if (!row) return false;
    const state = shown(row);
    if (row.status === 'revoked') {
      if (change === 'revoke') return true;
      throw conflict(task, 'revoked', change === 'suspend' ? 'suspended' : 'resumed');
    }
    const now = new Date();
    if (change === 'suspend') {
      if (row.status === 'suspended') return true;
      if (state === 'expired') throw conflict(task, 'expired', 'suspended');
      const why = reason ?? 'suspended by an admin';
      await trx('tasks').where({ task }).update({ status: 'suspended', reason: why, review_id: null, updated_at: now });
      await revokeCascadeIn(trx, { task }, actor, `task suspended: ${why}`, { holdTaskToken: true });
      await appendEntry(trx, { kind: 'task.suspended', actor, payload: { task, reason: why } });
    } else if (change === 'resume') {
      if (row.status === 'active') return true;
      await resumeTaskIn(trx, task);
      await appendEntry(trx, { kind: 'task.resumed', actor, payload: { task, previous: row.status } });
    } else {
      const why = reason ?? 'revoked by an admin';
      await trx('tasks').where({ task }).update({ status: 'revoked', reason: why, updated_at: now });
      await revokeCascadeIn(trx, { task }, actor, `task revoked: ${why}`);
      await appendEntry(trx, { kind: 'task.revoked', actor, payload: { task, reason: why } });
    }
    return true;
  });
}

/**
 * Lifts a suspension or downgrade (an admin's resume, or an approving review), in the caller's transaction:
 * the task takes exchanges again and its held task token is live again. A revoked task stays revoked.
 */
export async function resumeTaskIn(trx: Db, task: string): Promise<void> {
  const changed = await trx('tasks').where({ task }).whereIn('status', ['suspended', 'downgraded']).update({ status: 'active', updated_at: new Date() }).returning('task');
  if (changed.length > 0) await releaseTaskToken(trx, task);
}
