import type { Knex } from 'knex';

/** DPoP proofs (RFC 9449) seen at the token endpoint, kept until they would be too old anyway: replay detection. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('dpop_proofs', (t) => {
    t.text('jkt').notNullable();
    t.text('jti').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['jkt', 'jti']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('dpop_proofs');
}
