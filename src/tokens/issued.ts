import type { Db } from '../store/db.ts';

export interface IssuedToken {
  jti: string;
  client_id: string;
  subject: string | null;
  audience: string;
  scope: string;
  grant_type: string;
  issued_at: Date;
  expires_at: Date;
  parent_jti?: string | null;
  task?: string | null;
  subject_issuer?: string | null;
  /** JSON text: the delegation chain. */
  act?: string | null;
  /** JSON text: the granted authorization_details. */
  authorization_details?: string | null;
  /** JSON text: the claims of the chain's original subject token, for policy on later hops. */
  subject_claims?: string | null;
  /** `task` (a task token), `access` (for a resource) or `delegation` (for another agent). */
  kind?: 'task' | 'access' | 'delegation' | null;
}

/**
 * The issued-token index: every token intentgate mints, recorded in the same transaction as its ledger
 * entry and before the token is returned, so no token exists that the server does not know about.
 */
export async function recordIssuedTokens(trx: Db, tokens: IssuedToken[]): Promise<void> {
  if (tokens.length) await trx('issued_tokens').insert(tokens.map((t) => ({ ...t, status: 'active' })));
}
