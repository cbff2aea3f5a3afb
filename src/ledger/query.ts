import type { Db, Statement } from '../store/db.ts';
import { sha256Hex } from './hash.ts';
import { ValidationError } from '../validate/schema.ts';

/** An entry as readers see it: the sealed payload decoded, personal values restored unless erased. */
export interface LedgerEntry {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  payload: Record<string, unknown>;
  leaf_hash: string;
  chain_hash: string;
}

export interface LedgerFilter {
  kind?: string;
  subject?: string;
  client_id?: string;
  task?: string;
  jti?: string;
  decision?: string;
  since?: Date;
  until?: Date;
}

interface Row { seq: number; payload: Buffer; leaf_hash: Buffer; chain_hash: Buffer }

export async function decodeRows(db: Db, rows: Row[]): Promise<LedgerEntry[]> {
  const decoded = rows.map((r) => ({ row: r, doc: JSON.parse(Buffer.from(r.payload).toString('utf8')) as { seq: number; at: string; kind: string; actor: string; body: Record<string, unknown> } }));
  const hashes = new Set<string>();
  for (const { doc } of decoded) for (const [k, v] of Object.entries(doc.body)) if (k.endsWith('_sha256') && typeof v === 'string') hashes.add(v);
  const personal = new Map<string, string>();
  if (hashes.size) {
    for (const p of await db('ledger_personal').whereIn('hash', [...hashes]).select('hash', 'value')) personal.set(p.hash, p.value);
  }
  return decoded.map(({ row, doc }) => {
    const payload: Record<string, unknown> = { ...doc.body };
    for (const [k, v] of Object.entries(doc.body)) {
      if (!k.endsWith('_sha256') || typeof v !== 'string') continue;
      const value = personal.get(v);
      // An erased value stays erased: the hash remains, the text does not. A value that no longer matches
      // its hash was rewritten: it is not shown (and `ledger verify` reports it).
      if (value !== undefined && sha256Hex(value) === v) payload[k.slice(0, -'_sha256'.length)] = JSON.parse(value);
    }
    return {
      seq: Number(row.seq), at: doc.at, kind: doc.kind, actor: doc.actor, payload,
      leaf_hash: Buffer.from(row.leaf_hash).toString('hex'), chain_hash: Buffer.from(row.chain_hash).toString('hex'),
    };
  });
}

/** Newest first, keyset-paginated by sequence number. */
export async function queryLedger(db: Db, filter: LedgerFilter, limit: number, beforeSeq?: number): Promise<{ items: LedgerEntry[]; next_cursor: string | null }> {
  const q = db('ledger_entries').select('seq', 'payload', 'leaf_hash', 'chain_hash');
  for (const col of ['kind', 'subject', 'client_id', 'task', 'jti', 'decision'] as const) {
    if (filter[col] !== undefined) q.where(col, filter[col]);
  }
  if (filter.since) q.where('at', '>=', filter.since);
  if (filter.until) q.where('at', '<', filter.until);
  if (beforeSeq !== undefined) q.where('seq', '<', beforeSeq);
  const rows = (await q.orderBy('seq', 'desc').limit(limit + 1)) as Row[];
  const page = rows.slice(0, limit);
  return {
    items: await decodeRows(db, page),
    next_cursor: rows.length > limit && page.length ? Buffer.from(String(page.at(-1)!.seq)).toString('base64url') : null,
  };
}

/** How many entries of each of `kinds` match the filter's indexed columns (e.g. a task's grants and refusals). */
export async function countKinds(db: Db, filter: Pick<LedgerFilter, 'task' | 'client_id' | 'subject'>, kinds: string[]): Promise<Record<string, number>> {
  const q = db('ledger_entries').whereIn('kind', kinds).groupBy('kind').select('kind').count({ n: '*' });
  for (const col of ['task', 'client_id', 'subject'] as const) if (filter[col] !== undefined) q.where(col, filter[col]);
  const rows = (await q) as Array<{ kind: string; n: number | string }>;
  return Object.fromEntries(rows.map((r) => [r.kind, Number(r.n)]));
}

/** Reads `?kind=&subject=&client_id=&task=&jti=&decision=&since=&until=&limit=&cursor=`. */
export function ledgerQueryParams(q: URLSearchParams): { filter: LedgerFilter; limit: number; beforeSeq: number | undefined } {
  const filter: LedgerFilter = {};
  for (const name of ['kind', 'subject', 'client_id', 'task', 'jti', 'decision'] as const) {
    const v = q.get(name);
    if (v === null) continue;
    if (v.length > 2000 || v.includes('\0')) throw new ValidationError(`${name} is malformed`, name);
    filter[name] = v;
  }
  for (const name of ['since', 'until'] as const) {
    const v = q.get(name);
    if (v === null) continue;
    const d = new Date(v);
    if (v.length > 64 || Number.isNaN(d.getTime())) throw new ValidationError(`${name} must be an ISO 8601 date-time`, name);
    filter[name] = d;
  }
  const rawLimit = q.get('limit') ?? '50';
  if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 500) throw new ValidationError('limit must be an integer from 1 to 500', 'limit');
  const cursor = q.get('cursor');
  let beforeSeq: number | undefined;
  if (cursor !== null) {
    const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
    if (!/^\d{1,15}$/.test(decoded) || Buffer.from(decoded).toString('base64url') !== cursor) throw new ValidationError('cursor is not one this server issued', 'cursor');
    beforeSeq = Number(decoded);
  }
  return { filter, limit: Number(rawLimit), beforeSeq };
}

export interface DecisionBucket { start: string; granted: number; denied: number }

/**
 * Exchange decisions per hour since `since` (oldest first, empty hours included): what the console's
 * overview draws. Counted from the indexed `kind` and `at` columns, never from payloads.
 */
export async function decisionsPerHour(db: Db, since: Date, until = new Date()): Promise<DecisionBucket[]> {
  const rows = await db('ledger_entries')
    .whereIn('kind', ['exchange.granted', 'exchange.denied']).where('at', '>=', since).where('at', '<', until)
    .groupByRaw('1, 2').select(db.raw('floor(extract(epoch from at) / 3600)::float8 as hour'), 'kind', db.raw('count(*) as n')) as Array<{ hour: number | string; kind: string; n: number | string }>;
  const HOUR = 3_600_000;
  const first = Math.floor(since.getTime() / HOUR) * HOUR;
  const buckets: DecisionBucket[] = [];
  for (let t = first; t < until.getTime(); t += HOUR) buckets.push({ start: new Date(t).toISOString(), granted: 0, denied: 0 });
  for (const r of rows) {
    const b = buckets[(Number(r.hour) * HOUR - first) / HOUR];
    if (b) b[r.kind === 'exchange.granted' ? 'granted' : 'denied'] += Number(r.n);
  }
  return buckets;
}

/** One entry by sequence number, decoded; `kinds` limits which kinds count. */
export async function entryBySeq(db: Db, seq: number, kinds?: string[]) {
  const q = db('ledger_entries').where({ seq });
  if (kinds) q.whereIn('kind', kinds);
  const [entry] = await decodeRows(db, await q.select('seq', 'payload', 'leaf_hash', 'chain_hash'));
  return entry;
}

/** Entries of these kinds after `after` (and from `since`), oldest first, one page, decoded. */
export async function entriesAfter(db: Db, kinds: string[], after: number, limit: number, since?: Date) {
  const q = db('ledger_entries').whereIn('kind', kinds).where('seq', '>', after);
  if (since) q.where('at', '>=', since);
  return decodeRows(db, await q.orderBy('seq', 'asc').limit(limit).select('seq', 'payload', 'leaf_hash', 'chain_hash'));
}

/** The events a resource server (`actor`) reported about one user's sub: rows for decodeRows. */
export function resourceEvents(subject: string, actor: string): Statement {
  return { sql: "select seq, payload, leaf_hash, chain_hash from ledger_entries where kind = 'resource.event' and subject = ? and actor = ?", bindings: [subject, actor] };
}

// Reviews opened for a request that asked for a review are not refusals of the agent's behaviour.
const NOT_PENDING = `coalesce(convert_from(payload, 'UTF8')::jsonb #>> '{body,error}', '') <> 'authorization_pending'`;

/**
 * How many exchange decisions (`granted` or `denied`) since `since`: of a task, or of one agent for one user
 * (issuer + sub). Refusals that only asked for a person's review (authorization_pending) do not count.
 */
export async function countDecisions(db: Db, of: { task: string } | { client_id: string; user: { issuer: string; sub: string } }, decision: 'granted' | 'denied', since: Date): Promise<number> {
  const q = db('ledger_entries').where({ kind: `exchange.${decision}` }).where('at', '>=', since);
  if ('task' in of) q.where({ task: of.task });
  // The ledger's columns index the user's sub; the issuer is read from the sealed payload.
  else q.where({ client_id: of.client_id, subject: of.user.sub }).whereRaw(`convert_from(payload, 'UTF8')::jsonb #>> '{body,user,issuer}' = ?`, [of.user.issuer]);
  if (decision === 'denied') q.whereRaw(NOT_PENDING);
  const row = await q.count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}
