import { entriesAfter, entryBySeq } from '../ledger/query.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';
import type { Db } from '../store/db.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import type { DecisionInput } from './decide.ts';
import { decideRequest, type RequestDecision } from './request.ts';
import { parsePolicyDocument } from './document.ts';

export interface ReplayChange {
  seq: number;
  at: string;
  jti: string | null;
  client_id: string;
  user: unknown;
  original: { decision: string; granted_scope: string[]; reasons: string[] };
  replayed: { decision: 'granted' | 'denied'; outcome: string; granted_scope: string[]; reasons: string[]; matched_rules: string[] };
}

export interface ReplayReport { examined: number; skipped: number; unchanged: number; changed: ReplayChange[] }

const PAGE = 2000;
/** The kinds of entry that record an exchange decision. */
const DECISION_KINDS = ['exchange.granted', 'exchange.denied'];
const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

type RecordedPayload = Record<string, unknown> & { context?: Omit<DecisionInput, 'now'> & { now: string }; outcome?: string; decision?: string };

/** Re-decides a recorded context exactly as the exchange decided it (src/policy/request.ts). */
export function redecide(policy: CompiledPolicy, context: Omit<DecisionInput, 'now'> & { now: string }): RequestDecision {
  return decideRequest(policy, { ...context, now: new Date(context.now) });
}

/**
 * Whether a re-decision is the recorded one: the same policy outcome (allow, deny, review) where the entry
 * records it, else the same answer (granted or not); and for a grant the same scopes.
 */
export function agrees(p: RecordedPayload, d: RequestDecision): boolean {
  const scopes = (p.granted_scope as string[] | undefined) ?? [];
  if (p.outcome !== undefined && p.outcome !== d.outcome) return false;
  const replayed = d.outcome === 'allow' ? 'granted' : 'denied';
  if (p.outcome === undefined && replayed !== p.decision) return false;
  return p.decision !== 'granted' || sameSet(d.grantedScopes, scopes);
}

/** One recorded exchange decision, by sequence number. */
export async function recordedDecision(db: Db, seq: number): Promise<{ seq: number; at: string; payload: RecordedPayload } | undefined> {
  const entry = await entryBySeq(db, seq, DECISION_KINDS);
  return entry ? { seq: entry.seq, at: entry.at, payload: entry.payload as RecordedPayload } : undefined;
}

/** `7d`, `12h`, `30m` or an ISO 8601 date-time. */
export function parseSince(value: string, now = Date.now()): Date {
  const rel = /^(\d{1,6})([dhm])$/.exec(value);
  if (rel) return new Date(now - Number(rel[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2] as 'd' | 'h' | 'm']);
  const d = new Date(value);
  if (value.length > 64 || Number.isNaN(d.getTime())) throw new ValidationError('since must look like 7d, 12h, 30m or an ISO 8601 date-time', 'since');
  return d;
}

/**
 * Re-decides recorded exchanges under a draft policy, with the context each was decided with (kept in
 * the ledger), and lists every decision that would change. Entries whose context is gone (erased, or
 * refused before the policy was consulted) are counted as skipped.
 */
export async function replay(db: Db, policy: CompiledPolicy, since?: Date): Promise<ReplayReport> {
  const report: ReplayReport = { examined: 0, skipped: 0, unchanged: 0, changed: [] };
  let after = 0;
  for (;;) {
    const entries = await entriesAfter(db, DECISION_KINDS, after, PAGE, since);
    if (entries.length === 0) return report;
    after = Number(entries.at(-1)!.seq);
    for (const entry of entries) {
      report.examined++;
      const p = entry.payload as RecordedPayload;
      if (!p.context) {
        report.skipped++;
        continue;
      }
      const d = redecide(policy, p.context);
      const replayed = d.outcome === 'allow' ? 'granted' : 'denied';
      const originalScopes = (p.granted_scope as string[] | undefined) ?? [];
      if (agrees(p, d)) {
        report.unchanged++;
        continue;
      }
      report.changed.push({
        seq: entry.seq,
        at: entry.at,
        jti: (p.jti as string | undefined) ?? null,
        client_id: p.client_id as string,
        user: p.user,
        original: { decision: p.decision as string, granted_scope: originalScopes, reasons: (p.reasons as string[] | undefined) ?? [] },
        replayed: { decision: replayed, outcome: d.outcome, granted_scope: d.outcome === 'allow' ? d.grantedScopes : [], reasons: d.reasons, matched_rules: d.matchedRules },
      });
    }
  }
}

const validate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['document'],
  properties: { document: { type: 'string', minLength: 1, maxLength: 262_144 }, since: { type: 'string', maxLength: 64 } },
});

export async function replayFromBody(db: Db, body: unknown): Promise<ReplayReport> {
  const input = check<{ document: string; since?: string }>(validate, body);
  let policy: CompiledPolicy;
  try {
    policy = compilePolicy(parsePolicyDocument(input.document), 'draft');
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(`document: ${err.message}`, `document${err.field ? `.${err.field}` : ''}`);
    throw err;
  }
  return replay(db, policy, input.since ? parseSince(input.since) : undefined);
}
