import type { Knex } from 'knex';

/** History rules read a user's grants (issuer + sub) on every decision: index them. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.index(['subject_issuer', 'subject']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropIndex(['subject_issuer', 'subject']);
  });
}
