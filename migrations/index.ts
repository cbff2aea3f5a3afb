import type { Knex } from 'knex';
import * as m001 from './001_foundation.ts';

/** Every migration, in order. Listed statically so they load the same way under node and vitest. */
export const migrations: ReadonlyArray<readonly [string, Knex.Migration]> = [
  ['001_foundation', m001],
];
