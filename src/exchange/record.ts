import { ledgerText } from '../ledger/refusals.ts';
import { ParentNotLive, StandingChanged, type LedgerJob, type LedgerWriter } from '../ledger/writer.ts';
import type { Db } from '../store/db.ts';
import type { AuthorizationDetail } from './details.ts';
import { ExchangeError } from './errors.ts';
import type { Minted } from './mint.ts';
import type { Act } from './subject.ts';

/** What every exchange decision records, granted or not. */
export interface DecisionRecord {
  client_id: string;
  user: { issuer: string; sub: string } | undefined;
  act: Act | undefined;
  intent: string | undefined;
  authorization_details: AuthorizationDetail[];
  requested_scope: string[] | undefined;
  granted_scope: string[];
  audience: string | undefined;
  decision: 'granted' | 'denied';
  /** The policy's outcome (allow, deny, review) when the request reached a decision; replay compares it. */
  outcome?: string;
  error: string | undefined;
  reasons: string[];
  matched_rules: string[];
  policy_version: string | undefined;
  parent_jti: string | undefined;
  task: string | undefined;
  /** The policy's input, kept so a draft policy can re-decide this request (personal: erasable). */
  context: Record<string, unknown> | undefined;
  /** RFC 9449: the key the issued token is bound to, when the agent used DPoP. */
  cnf_jkt: string | undefined;
  /** The original subject token's claims, carried to the tokens derived from this one. */
  subject_claims: Record<string, unknown> | undefined;
  /** Behaviour signals the request raised (baseline drift), each with its evidence. */
  signals?: unknown[];
  /** A task start: every resource of the task (`audience` is then intentgate itself, the task token's). */
  resources?: string[];
  /** What the token is: `task`, `access` (for a resource) or `delegation` (for another agent). */
  token_kind?: 'task' | 'access' | 'delegation';
}

function entry(kind: string, record: DecisionRecord, extra: Record<string, unknown> = {}) {
  const { intent, context, subject_claims: _claims, signals, ...rest } = record;
  return { kind, actor: record.client_id, payload: { ...rest, ...(signals?.length ? { signals } : {}), ...extra }, personal: { intent, context } };
}

/** A refused decision, with the reason the client was given (request values never raw: ledgerText). */
export async function recordDenial(ledger: LedgerWriter, record: DecisionRecord, description: string): Promise<void> {
  await ledger.commit({ entries: [entry('exchange.denied', record, { error_description: ledgerText(description, 512) })] });
}

/**
 * The decision and the token's index row, committed together. Only after the commit is the token
 * returned; if it fails, the caller answers an error and the token is never seen.
 */
export async function recordGrant(ledger: LedgerWriter, record: DecisionRecord, minted: Minted, writes?: (trx: Db) => Promise<void>, standing?: LedgerJob['standing']): Promise<void> {
  await ledger.commit({
    ...(writes ? { writes } : {}),
    ...(standing ? { standing } : {}),
    entries: [entry('exchange.granted', record, { jti: minted.jti, expires_at: minted.exp })],
    ...(record.parent_jti ? { parents: [record.parent_jti] } : {}),
    tokens: [{
      jti: minted.jti,
      client_id: record.client_id,
      subject: record.user?.sub ?? null,
      subject_issuer: record.user?.issuer ?? null,
      audience: record.audience!,
      scope: record.granted_scope.join(' '),
      grant_type: 'token-exchange',
      issued_at: new Date(minted.iat * 1000),
      expires_at: new Date(minted.exp * 1000),
      parent_jti: record.parent_jti ?? null,
      task: record.task ?? null,
      act: JSON.stringify(record.act),
      authorization_details: record.authorization_details.length ? JSON.stringify(record.authorization_details) : null,
      subject_claims: record.subject_claims ? JSON.stringify(record.subject_claims) : null,
      kind: record.token_kind ?? null,
    }],
  });
}

/**
 * Fail closed: a grant or a refusal is answered only once its ledger entry has committed; if it cannot be
 * written, the answer is 503 and no token exists. A parent revoked meanwhile, or the agent or task held meanwhile,
 * is the caller's to answer.
 */
export async function recorded(write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if (err instanceof ParentNotLive || err instanceof StandingChanged) throw err;
    throw new ExchangeError('temporarily_unavailable', 'the decision could not be recorded; no token was issued; retry later', {}, 503, err);
  }
}
