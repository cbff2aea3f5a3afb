import { randomBytes } from 'node:crypto';
import { canonicalize } from '../ledger/canonical.ts';
import { appendEntry } from '../ledger/append.ts';
import { sha256Hex } from '../ledger/hash.ts';
import { ValidationError } from '../validate/schema.ts';
import type { Db } from '../store/db.ts';
import { hasPassed } from '../../packages/resource/src/protocol/time.ts';

/** The tables src/review owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['reviews'] as const;

/** Seconds an agent waits between polls of a pending review (`interval`). */
export const REVIEW_INTERVAL = 5;
/** How long a request may wait for a person, and how long an approval stays usable. */
const PENDING_TTL_MS = 24 * 3600_000;
const APPROVAL_TTL_MS = 15 * 60_000;

export interface ReviewBinding {
  client_id: string;
  user: { issuer: string; sub: string };
  /** The task, when the request continues one (a first exchange starts a new task each time). */
  task: string | null;
  scope: string[];
  resource: string;
  details: unknown[];
  /** The DPoP key the request was made with: an approval is redeemed by the same key, or by none if none. */
  cnf_jkt?: string;
}

/**
 * An approval is bound to what was asked (client, user, task, scope, resource, details, DPoP key), not to
 * the subject token itself, which may be refreshed while the agent waits.
 */
export function bindingOf(b: ReviewBinding): string {
  // Without a key the hash is what it was before DPoP existed, so reviews opened then still redeem.
  const { cnf_jkt, ...rest } = b;
  return sha256Hex(canonicalize({ ...rest, scope: [...b.scope].sort(), ...(cnf_jkt ? { cnf_jkt } : {}) }));
}

export type PollState = 'pending' | 'slow_down' | 'approved' | 'denied' | 'expired' | 'used' | 'unknown';

/**
 * `exchange`: a request waits for a person (the agent polls with review_id). The others are about an
 * agent's behaviour: a task or an agent (for one user) suspended, or downgraded pending the review.
 */
export type ReviewKind = 'exchange' | 'task_suspension' | 'task_review' | 'agent_suspension' | 'agent_review';

export async function openReview(db: Db, kind: ReviewKind, binding: ReviewBinding, context: Record<string, unknown>): Promise<string> {
  const id = `rev_${randomBytes(12).toString('base64url')}`;
  const now = new Date();
  await db.transaction(async (trx) => {
    await trx('reviews').insert({
      id, kind, status: 'pending', created_at: now, expires_at: new Date(now.getTime() + PENDING_TTL_MS),
      client_id: binding.client_id, subject_issuer: binding.user.issuer, subject: binding.user.sub, task: binding.task,
      binding: bindingOf(binding), context: JSON.stringify(context), last_polled_at: now,
    });
    await appendEntry(trx, {
      kind: 'review.opened', actor: 'system',
      // A behaviour signal's evidence (counts, window, baseline) is no personal text: the ledger shows it whole.
      payload: { review_id: id, review_kind: kind, client_id: binding.client_id, user: binding.user, task: binding.task ?? undefined, rule: context.rule, reasons: context.reasons, ...(context.evidence ? { evidence: context.evidence } : {}) },
      personal: { context },
    });
  });
  return id;
}

/** The agent asks again with `review_id`: where its request stands. Polling faster than the interval is `slow_down`. */
export async function pollReview(db: Db, id: string, binding: ReviewBinding): Promise<PollState> {
  return db.transaction(async (trx) => {
    const row = await trx('reviews').where({ id, kind: 'exchange', binding: bindingOf(binding) }).forUpdate().first();
    if (!row) return 'unknown';
    const now = Date.now();
    if (row.status === 'used') return 'used';
    if (row.status === 'denied') return 'denied';
    if (row.status === 'approved') return hasPassed(row.approval_expires_at, now) ? 'expired' : 'approved';
    if (hasPassed(row.expires_at, now)) return 'expired';
    const last = row.last_polled_at ? new Date(row.last_polled_at).getTime() : 0;
    await trx('reviews').where({ id }).update({ last_polled_at: new Date(now) });
    return now - last < REVIEW_INTERVAL * 1000 ? 'slow_down' : 'pending';
  });
}

/** Marks an approval used; true for exactly one caller. */
export async function consumeApproval(db: Db, id: string): Promise<boolean> {
  const rows = await db('reviews').where({ id, status: 'approved' }).where('approval_expires_at', '>', new Date()).update({ status: 'used' }).returning('id');
  return rows.length === 1;
}

export interface Reviewer {
  id: string;
  /** The person the deciding credential is bound to; null for a credential bound to nobody. */
  user: { issuer: string; sub: string } | null;
  /** Every person bound to the credential or to a credential up its creator chain. */
  chain: Array<{ issuer: string; sub: string }>;
}

/**
 * A person's decision. Only a credential bound to a person decides (an unbound one could be anybody), and
 * never on a request made on behalf of a person bound anywhere in its creator chain, so a person cannot
 * approve their own request through a credential they made. Only pending reviews can be decided; approving
 * a task suspension lifts it for new exchanges (revoked tokens stay revoked).
 */
/** What else a decision changes, in its transaction (a held task or agent is restored or suspended). */
export type OnReviewDecided = (trx: Db, review: { id: string; kind: string; task: string | null; context: unknown }, approved: boolean) => Promise<void>;

export async function decideReview(db: Db, id: string, approve: boolean, reviewer: Reviewer, comment: string | undefined, onDecided?: OnReviewDecided): Promise<Record<string, unknown> | undefined> {
  const { user } = reviewer;
  if (!user) throw new ValidationError('deciding a review takes a credential bound to a person (created with user)', undefined, 403, 'access_denied');
  return db.transaction(async (trx) => {
    const row = await trx('reviews').where({ id }).forUpdate().first();
    if (!row) return undefined;
    if (row.status !== 'pending' || hasPassed(row.expires_at)) {
      throw new ValidationError(`review ${id} is ${row.status === 'pending' ? 'expired' : row.status}, not pending`, 'id', 409, 'conflict');
    }
    if ([user, ...reviewer.chain].some((p) => p.issuer === row.subject_issuer && p.sub === row.subject)) {
      throw new ValidationError('nobody decides a request made on their own behalf, nor through a credential created by one bound to them', 'id', 403, 'access_denied');
    }
    const now = new Date();
    await trx('reviews').where({ id }).update({
      status: approve ? 'approved' : 'denied', decided_by: reviewer.id, decided_at: now, comment: comment ?? null,
      approval_expires_at: approve ? new Date(now.getTime() + APPROVAL_TTL_MS) : null,
    });
    await onDecided?.(trx, { id, kind: row.kind, task: row.task ?? null, context: row.context }, approve);
    await appendEntry(trx, {
      kind: approve ? 'review.approved' : 'review.denied', actor: reviewer.id,
      payload: { review_id: id, review_kind: row.kind, client_id: row.client_id, user: { issuer: row.subject_issuer, sub: row.subject }, task: row.task ?? undefined },
      personal: { comment },
    });
    return toReview({ ...row, status: approve ? 'approved' : 'denied', decided_by: reviewer.id, decided_at: now, comment });
  });
}

function toReview(r: Record<string, unknown>): Record<string, unknown> {
  const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
  return {
    id: r.id, kind: r.kind, status: r.status, created_at: iso(r.created_at), expires_at: iso(r.expires_at),
    client_id: r.client_id, user: { issuer: r.subject_issuer, sub: r.subject }, task: r.task ?? null, context: r.context,
    decided_by: r.decided_by ?? null, decided_at: iso(r.decided_at), comment: r.comment ?? null,
  };
}

export async function listReviews(db: Db, status: string | undefined): Promise<{ items: Record<string, unknown>[]; next_cursor: null }> {
  const q = db('reviews').orderBy('created_at', 'asc').limit(200).select('*');
  if (status !== undefined) {
    if (!['pending', 'approved', 'denied', 'used'].includes(status)) throw new ValidationError('status must be pending, approved, denied or used', 'status');
    q.where({ status });
  }
  return { items: (await q).map(toReview), next_cursor: null };
}
