import type { Knex } from 'knex';
import * as m001 from './001_foundation.ts';
import * as m002 from './002_exchange.ts';
import * as m003 from './003_ledger_chain.ts';
import * as m004 from './004_integrity.ts';
import * as m005 from './005_history_index.ts';
import * as m006 from './006_reviews.ts';
import * as m007 from './007_dpop.ts';
import * as m008 from './008_history_per_resource.ts';
import * as m009 from './009_admin_roles.ts';
import * as m010 from './010_tasks.ts';
import * as m011 from './011_behaviour.ts';

/** Every migration, in order. Listed statically so they load the same way under node and vitest. */
export const migrations: ReadonlyArray<readonly [string, Knex.Migration]> = [
  ['001_foundation', m001],
  ['002_exchange', m002],
  ['003_ledger_chain', m003],
  ['004_integrity', m004],
  ['005_history_index', m005],
  ['006_reviews', m006],
  ['007_dpop', m007],
  ['008_history_per_resource', m008],
  ['009_admin_roles', m009],
  ['010_tasks', m010],
  ['011_behaviour', m011],
];
