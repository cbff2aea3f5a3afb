import pg from 'pg';
import type { Db } from './db.ts';
import { isEmbedded } from './db.ts';

/** NOTIFY inside the transaction: PostgreSQL delivers it only if the transaction commits. */
export async function notify(trx: Db, channel: string, payload: string): Promise<void> {
  await trx.raw('select pg_notify(?, ?)', [channel, payload]);
}

export interface Listener { close(): Promise<void> }

// A connection that died silently (a half-open TCP connection, a NAT or firewall that dropped an idle one)
// raises no error: notifications just stop. A heartbeat on it every few seconds, bounded, finds out.
const HEARTBEAT_MS = 3000;
/** The listener's application_name: an operator finds it in pg_stat_activity. */
export const LISTENER_NAME = 'intentgate-listener';
const HEARTBEAT_TIMEOUT_MS = 3000;

/**
 * LISTENs on `channels` over a dedicated connection (not from the pool), reconnecting after errors;
 * `onConnected` runs on every (re)connection, when notifications may have been missed. TCP keepalive and a
 * heartbeat (`select 1` every HEARTBEAT_MS, answered within HEARTBEAT_TIMEOUT_MS) turn a silent death into
 * `onError`, so the copies that rely on the notifications stop relying on them until it is back.
 * The embedded database has one process, so there is no one else to hear from: a no-op there.
 */
export function listen(
  db: Db, databaseUrl: string | undefined, channels: string[], onMessage: (channel: string, payload: string) => void, onError: (err: Error) => void,
  onConnected?: () => void,
): Listener {
  if (isEmbedded(db) || !databaseUrl) return { close: async () => {} };
  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: databaseUrl, connectionTimeoutMillis: 5000, query_timeout: HEARTBEAT_TIMEOUT_MS, application_name: LISTENER_NAME, keepAlive: true, keepAliveInitialDelayMillis: 5000,
    });
    let failed = false;
    // Once per connection, whatever noticed first (an error event, a failed heartbeat, a failed LISTEN).
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      if (client === c) {
        client = undefined;
        clearInterval(heartbeat);
      }
      onError(err);
      c.end().catch(() => {});
      schedule();
    };
    c.on('notification', (n) => onMessage(n.channel, n.payload ?? ''));
    c.on('error', fail);
    try {
      await c.connect();
      for (const ch of channels) await c.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (closed || failed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    heartbeat = setInterval(() => {
      c.query('select 1').catch((err: Error) => fail(new Error(`notification connection heartbeat failed: ${err.message}`)));
    }, HEARTBEAT_MS).unref();
    onConnected?.();
  };
  const schedule = () => {
    if (!closed) timer = setTimeout(() => void connect(), 2000).unref();
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      clearInterval(heartbeat);
      await client?.end().catch(() => {});
    },
  };
}
