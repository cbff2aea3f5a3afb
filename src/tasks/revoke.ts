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
export async function revokeCascade(db: Db, target: RevocationTarget, actor: string, reason: string): Promise<RevocationResult> {
  return db.transaction(async (trx) => {
    const roots = trx('issued_tokens').where({ status: 'active' }).forUpdate().select('jti');
    if ('jti' in target) roots.where({ jti: target.jti });
    else if ('task' in target) roots.where({ task: target.task });
    else {
      if ('client_id' in target) roots.where({ client_id: target.client_id });
      if ('user' in target) roots.where({ subject_issuer: target.user.issuer, subject: target.user.sub });
    }
    const rootJtis = (await roots).map((r: { jti: string }) => r.jti);
    if (rootJtis.length === 0) return { revoked: 0, jtis: [] };
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
        UPDATE issued_tokens SET status = 'revoked' WHERE status = 'active' AND jti IN (SELECT jti FROM tree) RETURNING jti`, [rootJtis]);
      if ((rows as unknown[]).length === 0) break;
      jtis.push(...(rows as Array<{ jti: string }>).map((r) => r.jti));
    }
    await appendEntry(trx, {
      kind: 'token.revoked',
      actor,
      payload: {
        target, reason, roots: rootJtis, revoked: jtis,
        // The indexed fields, so the ledger can be queried for this revocation by task, token, client or user.
        ...('task' in target ? { task: target.task } : {}),
        ...('jti' in target ? { jti: target.jti } : {}),
        ...('client_id' in target ? { client_id: target.client_id } : {}),
        ...('user' in target ? { user: target.user } : {}),
      },
    });
    return { revoked: jtis.length, jtis };
  });
}
