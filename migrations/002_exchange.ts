import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Versions of the one active policy document; the highest version is in force.
  await knex.schema.createTable('policies', (t) => {
    t.integer('version').primary();
    t.text('document').notNullable();
    t.text('source').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('created_by').notNullable();
  });

  await knex.schema.alterTable('issued_tokens', (t) => {
    t.text('subject_issuer');
    t.jsonb('act');
    t.jsonb('authorization_details');
    t.text('may_act');
    t.index(['task']);
    t.index(['parent_jti']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropIndex(['task']);
    t.dropIndex(['parent_jti']);
    t.dropColumns('subject_issuer', 'act', 'authorization_details', 'may_act');
  });
  await knex.schema.dropTableIfExists('policies');
}
