import { appendEntry } from '../ledger/append.ts';
import type { Db } from '../store/db.ts';

/** Which live tokens to revoke; every token derived from them (by parent_jti, any depth) goes too. */
export type RevocationTarget =
  | { jti: string }
  | { task: string }
  | { client_id: string }
  | { user: { issuer: string; sub: string } }
  /** One agent's tokens for one user (a behaviour outcome `per: agent`). */
  | { client_id: string; user: { issuer: string; sub: string } };

export interface RevocationResult { revoked: number; jtis: string[] }

/**
 * Revokes the target's live tokens and, in the same transaction, every token derived from them, and
 * records it in the ledger. Token rows are locked before the ledger head (the order the token writer
 * uses too), and an exchange recording a child of a token locks that parent first: so an exchange racing
 * a revocation either commits its child before the cascade runs (and the cascade revokes it) or finds
 * its parent revoked and is refused. No live token is minted from a parent after its revocation commits.
 */
export async function revokeCascade(db: Db, target: RevocationTarget, actor: string, reason: string, options: CascadeOptions = {}): Promise<RevocationResult> {
  return db.transaction((trx) => revokeCascadeIn(trx, target, actor, reason, options));
}

export interface CascadeOptions {
  /**
   * Suspending a task: its task token is held (status `suspended`, refused like any token that is not live,
   * made active again when the task resumes) instead of revoked; every token derived from it is revoked.
   */
  holdTaskToken?: boolean;
}

/** revokeCascade inside the caller's transaction (which has locked nothing the cascade locks after). */
export async function revokeCascadeIn(trx: Db, target: RevocationTarget, actor: string, reason: string, options: CascadeOptions = {}): Promise<RevocationResult> {
  // A suspended task token is not live, but is still revoked with its task (unless this is the suspension).
  const roots = trx('issued_tokens').whereIn('status', ['active', 'suspended']).forUpdate().select('jti');
  if ('jti' in target) roots.where({ jti: target.jti });
  else if ('task' in target) roots.where({ task: target.task });
  else {
    if ('client_id' in target) roots.where({ client_id: target.client_id });
    if ('user' in target) roots.where({ subject_issuer: target.user.issuer, subject: target.user.sub });
  }
  const rootRows = (await roots.select('kind')) as Array<{ jti: string; kind: string | null }>;
  const rootJtis = rootRows.map((r) => r.jti);
  if (rootJtis.length === 0) return { revoked: 0, jtis: [] };
  const held = options.holdTaskToken ? rootRows.filter((r) => r.kind === 'task').map((r) => r.jti) : [];
  // Held first, in this transaction: the tree below still runs through it, and its status is no longer `active`.
  if (held.length) await trx('issued_tokens').whereIn('jti', held).update({ status: 'suspended' });
  const revocable = options.holdTaskToken ? ['active'] : ['active', 'suspended'];
  // Each statement sees the tree as of its start; a child committed while the statement waited on its
  // parent's lock is only visible to the next one. Repeat until a pass finds nothing live: every row it
  // revokes stays locked, so no new child can attach below it meanwhile.
  const jtis: string[] = [];
  for (;;) {
    const { rows } = await trx.raw(`
      WITH RECURSIVE tree AS (
        SELECT jti FROM issued_tokens WHERE jti = ANY(?::text[])
        UNION
        SELECT t.jti FROM issued_tokens t JOIN tree ON t.parent_jti = tree.jti
      )
      UPDATE issued_tokens SET status = 'revoked' WHERE status = ANY(?::text[]) AND jti IN (SELECT jti FROM tree) RETURNING jti`, [rootJtis, revocable]);
    if ((rows as unknown[]).length === 0) break;
    jtis.push(...(rows as Array<{ jti: string }>).map((r) => r.jti));
  }
  await appendEntry(trx, {
    kind: 'token.revoked',
    actor,
    payload: {
      target, reason, roots: rootJtis, revoked: jtis, ...(held.length ? { suspended: held } : {}),
      // The indexed fields, so the ledger can be queried for this revocation by task, token, client or user.
      ...('task' in target ? { task: target.task } : {}),
      ...('jti' in target ? { jti: target.jti } : {}),
      ...('client_id' in target ? { client_id: target.client_id } : {}),
      ...('user' in target ? { user: target.user } : {}),
    },
  });
  return { revoked: jtis.length, jtis };
}

/**
 * Makes a suspended task token live again (its task resumed); one revoked or expired stays as it is. Only
 * a task token is ever `suspended`.
 */
export async function releaseTaskToken(trx: Db, task: string): Promise<void> {
  await trx('issued_tokens').where({ task, kind: 'task', status: 'suspended' }).where('expires_at', '>', new Date()).update({ status: 'active' });
}
