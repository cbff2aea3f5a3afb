import type { LedgerWriter } from './writer.ts';

/** Where a client authentication failed (a metric label: a fixed set). */
export const AUTH_FAILURE_ENDPOINTS = ['token', 'introspection', 'revocation', 'ledger'] as const;
export type AuthFailureEndpoint = typeof AUTH_FAILURE_ENDPOINTS[number];

/**
 * Why, as a class (a metric label: a fixed set): no credentials at all, credentials that cannot be read,
 * a client_id that is not registered, or a registered client with the wrong secret or assertion.
 */
export const AUTH_FAILURE_REASONS = ['missing', 'malformed', 'unknown_client', 'invalid_credentials'] as const;
export type AuthFailureReason = typeof AUTH_FAILURE_REASONS[number];

interface Tally {
  count: number;
  reasons: Partial<Record<AuthFailureReason, number>>;
  endpoints: Partial<Record<AuthFailureEndpoint, number>>;
  from: Date;
}

// The one bucket for every client_id that is not registered (or was never named).
const UNREGISTERED = '';

function merge(into: Tally, from: Tally): void {
  into.count += from.count;
  for (const [k, n] of Object.entries(from.reasons)) into.reasons[k as AuthFailureReason] = (into.reasons[k as AuthFailureReason] ?? 0) + n;
  for (const [k, n] of Object.entries(from.endpoints)) into.endpoints[k as AuthFailureEndpoint] = (into.endpoints[k as AuthFailureEndpoint] ?? 0) + n;
  if (from.from < into.from) into.from = from.from;
}

/**
 * Failed client authentications in bounded form: counted in this process's memory and written, at each
 * flush (every `ledger.auth_failure_interval`, and on shutdown), as one `client_auth.failed` entry per
 * registered client that was named, plus one for all unregistered client_ids together, each with its
 * count. Memory holds at most one tally per registered client, and the ledger grows by at most that many
 * entries per interval, however much unauthenticated traffic arrives. Each process writes its own
 * entries. An entry that cannot be written is kept and retried at the next flush.
 */
export class AuthFailureLedger {
  readonly #ledger: LedgerWriter;
  #tallies = new Map<string, Tally>();
  #flushing: Promise<number> = Promise.resolve(0);

  constructor(ledger: LedgerWriter) {
    this.#ledger = ledger;
  }

  /** `registeredClientId` only when the client_id named is a registered client; anything else is pooled. */
  add(endpoint: AuthFailureEndpoint, reason: AuthFailureReason, registeredClientId: string | undefined, now = new Date()): void {
    const key = registeredClientId ?? UNREGISTERED;
    const one: Tally = { count: 1, reasons: { [reason]: 1 }, endpoints: { [endpoint]: 1 }, from: now };
    const tally = this.#tallies.get(key);
    if (tally) merge(tally, one);
    else this.#tallies.set(key, one);
  }

  /** Writes what was counted since the last flush; answers the number of entries written. One at a time. */
  flush(now = new Date()): Promise<number> {
    this.#flushing = this.#flushing.catch(() => 0).then(() => this.#write(now));
    return this.#flushing;
  }

  async #write(now: Date): Promise<number> {
    const tallies = this.#tallies;
    if (tallies.size === 0) return 0;
    this.#tallies = new Map();
    const entries = [...tallies].map(([key, t]) => ({
      kind: 'client_auth.failed',
      actor: 'system',
      payload: {
        client_id: key === UNREGISTERED ? null : key,
        ...(key === UNREGISTERED ? { unregistered: true } : {}),
        count: t.count,
        reasons: t.reasons,
        endpoints: t.endpoints,
        from: t.from.toISOString(),
        until: now.toISOString(),
      },
    }));
    try {
      await this.#ledger.commit({ entries });
    } catch (err) {
      // Keep the counts: they are written with the next flush's.
      for (const [key, t] of tallies) {
        const current = this.#tallies.get(key);
        if (current) merge(current, t);
        else this.#tallies.set(key, t);
      }
      throw err;
    }
    return entries.length;
  }
}
