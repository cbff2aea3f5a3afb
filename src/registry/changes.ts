import type { Db } from '../store/db.ts';
import { notify } from '../store/notify.ts';

export const REGISTRY_CHANNEL = 'intentgate_registry';
export const REGISTRY_TABLES = ['clients', 'resources', 'issuers'] as const;
export type RegistryTable = (typeof REGISTRY_TABLES)[number];

/** Inside the transaction that changed `table`: every process reloads it once the change commits (src/registry/cache.ts). */
export function registryChanged(trx: Db, table: RegistryTable): Promise<void> {
  return notify(trx, REGISTRY_CHANNEL, table);
}
