import type { Kek } from '../crypto/kek.ts';
import type { Db } from '../store/db.ts';
import { providerMetadata, toClient, type Client } from './clients.ts';
import { toIssuer, type TrustedIssuer } from './issuers.ts';
import { toResource, type Resource } from './resources.ts';
import { REGISTRY_TABLES, type RegistryTable } from './changes.ts';

interface ClientEntry { client: Client; row: Record<string, unknown>; metadata?: Record<string, unknown> }

interface Loading { running?: Promise<void>; again: boolean }

/**
 * Clients, resources and trusted issuers, held in this process's memory (as the policy is), so the hot
 * path reads the database only to record. These tables are small and read on every request, and change
 * only through the admin API or the CLI, whose transactions NOTIFY REGISTRY_CHANNEL: every process then
 * reloads the changed table, the writing process before it answers. A periodic reload and a reload after
 * the notification connection comes back cover a missed notification. Until the first load every lookup
 * throws (fail closed); a failed reload keeps the last good copy.
 */
export class RegistryCache {
  #clients: ReadonlyMap<string, ClientEntry> | undefined;
  #resources: ReadonlyMap<string, Resource> | undefined;
  #issuers: ReadonlyMap<string, TrustedIssuer> | undefined;
  readonly #loading = new Map<RegistryTable, Loading>(REGISTRY_TABLES.map((t) => [t, { again: false }]));
  readonly #db: Db;
  readonly #kek: Kek;

  constructor(db: Db, kek: Kek) {
    this.#db = db;
    this.#kek = kek;
  }

  /** Loads every table (at start, periodically, and after the notification connection reconnects). */
  async loadAll(): Promise<void> {
    await Promise.all(REGISTRY_TABLES.map((t) => this.reload(t)));
  }

  /**
   * Reloads `table`. A reload asked for while one runs makes that one run again when it ends, so the
   * promise settles only after a read that began after every change notified so far.
   */
  reload(table: RegistryTable): Promise<void> {
    const l = this.#loading.get(table)!;
    if (l.running) {
      l.again = true;
      return l.running;
    }
    l.running = (async () => {
      try {
        do {
          l.again = false;
          await this.#read(table);
        } while (l.again);
      } finally {
        l.running = undefined;
      }
    })();
    return l.running;
  }

  async #read(table: RegistryTable): Promise<void> {
    const rows = await this.#db(table).select('*') as Array<Record<string, unknown>>;
    if (table === 'clients') {
      this.#clients = new Map(rows.map((row) => [row.client_id as string, { client: toClient(row), row }]));
    } else if (table === 'resources') {
      this.#resources = new Map(rows.map((row) => [row.identifier as string, toResource(row)]));
    } else {
      this.#issuers = new Map(rows.map((row) => [row.issuer as string, toIssuer(row)]));
    }
  }

  static #ready<T>(map: T | undefined, what: string): T {
    if (!map) throw new Error(`the ${what} are not loaded`);
    return map;
  }

  client(clientId: string): Client | undefined {
    return RegistryCache.#ready(this.#clients, 'clients').get(clientId)?.client;
  }

  /** The client as oidc-provider wants it, its secret decrypted once per load. */
  providerClient(clientId: string): Record<string, unknown> | undefined {
    const entry = RegistryCache.#ready(this.#clients, 'clients').get(clientId);
    if (!entry) return undefined;
    entry.metadata ??= providerMetadata(this.#kek, entry.row);
    return entry.metadata;
  }

  resource(identifier: string): Resource | undefined {
    return RegistryCache.#ready(this.#resources, 'resources').get(identifier);
  }

  resources(): Iterable<Resource> {
    return RegistryCache.#ready(this.#resources, 'resources').values();
  }

  issuer(issuer: string): TrustedIssuer | undefined {
    return RegistryCache.#ready(this.#issuers, 'issuers').get(issuer);
  }
}
