import type { Knex } from 'knex';
import { seal, type LedgerInput } from '../src/ledger/entry.ts';
import { ZERO_HASH } from '../src/ledger/hash.ts';

const APPEND_ONLY = ['ledger_entries', 'ledger_checkpoints'];

/**
 * The ledger becomes a hash chain: canonical payload bytes, leaf and chain hashes, a single head row
 * whose lock orders every append, an erasable table for personal text, signed checkpoints, and
 * triggers that refuse UPDATE, DELETE and TRUNCATE. Earlier plain entries are re-sealed in order.
 */
export async function up(knex: Knex): Promise<void> {
  // Earlier plain entries are read, the table replaced, and the entries re-sealed, all in this migration's transaction.
  const old = await knex('ledger_entries').select('*').orderBy('seq', 'asc');
  await knex.schema.dropTable('ledger_entries');

  await knex.schema.createTable('ledger_entries', (t) => {
    t.bigInteger('seq').primary();
    t.timestamp('at', { useTz: true }).notNullable();
    t.text('kind').notNullable();
    t.text('actor').notNullable();
    t.text('client_id');
    t.text('subject');
    t.text('task');
    t.text('jti');
    t.text('decision');
    t.binary('payload').notNullable();
    t.binary('leaf_hash').notNullable();
    t.binary('chain_hash').notNullable();
    t.index(['kind', 'seq']);
    t.index(['client_id', 'seq']);
    t.index(['subject', 'seq']);
    t.index(['task', 'seq']);
    t.index(['jti']);
    t.index(['at']);
  });
  await knex.schema.createTable('ledger_head', (t) => {
    t.integer('id').primary();
    t.bigInteger('seq').notNullable();
    t.binary('chain_hash').notNullable();
  });
  // Personal free text, by the SHA-256 the payload carries; the one ledger table rows may be erased from.
  await knex.schema.createTable('ledger_personal', (t) => {
    t.text('hash').primary();
    t.text('value').notNullable();
  });
  await knex.schema.createTable('ledger_checkpoints', (t) => {
    t.bigInteger('tree_size').primary();
    t.binary('root_hash').notNullable();
    t.timestamp('timestamp', { useTz: true }).notNullable();
    t.text('kid').notNullable();
    t.text('jws').notNullable();
  });

  let previous: Buffer = ZERO_HASH;
  let seq = 0;
  for (const row of old) {
    const { intent, ...payload } = row.payload as Record<string, unknown>;
    const input: LedgerInput = { kind: row.kind, actor: row.actor ?? 'system', payload, ...(intent !== undefined ? { personal: { intent } } : {}) };
    seq += 1;
    const { entry, personal } = seal(input, seq, new Date(row.at), previous);
    if (personal.length) await knex('ledger_personal').insert(personal).onConflict('hash').ignore();
    await knex('ledger_entries').insert(entry);
    previous = entry.chain_hash;
  }
  await knex('ledger_head').insert({ id: 1, seq, chain_hash: previous });

  await knex.raw(`
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME USING ERRCODE = '42501';
    END $$`);
  for (const table of APPEND_ONLY) {
    await knex.raw(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`);
    await knex.raw(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`);
  }
}

export async function down(): Promise<void> {
  throw new Error('003_ledger_chain cannot be undone: the chained ledger is the record');
}
