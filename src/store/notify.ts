import pg from 'pg';
import type { Db } from './db.ts';
import { isEmbedded } from './db.ts';

/** NOTIFY inside the transaction: PostgreSQL delivers it only if the transaction commits. */
export async function notify(trx: Db, channel: string, payload: string): Promise<void> {
  await trx.raw('select pg_notify(?, ?)', [channel, payload]);
}

export interface Listener { close(): Promise<void> }

/**
 * LISTENs on `channels` over a dedicated connection (not from the pool), reconnecting after errors;
 * `onConnected` runs on every (re)connection, when notifications may have been missed.
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
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
    c.on('notification', (n) => onMessage(n.channel, n.payload ?? ''));
    c.on('error', (err) => {
      onError(err);
      c.end().catch(() => {});
      if (client === c) client = undefined;
      schedule();
    });
    try {
      await c.connect();
      for (const ch of channels) await c.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
      client = c;
      if (closed) await c.end();
      else onConnected?.();
    } catch (err) {
      onError(err as Error);
      c.end().catch(() => {});
      schedule();
    }
  };
  const schedule = () => {
    if (!closed) timer = setTimeout(() => void connect(), 2000).unref();
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await client?.end().catch(() => {});
    },
  };
}
