import type { Knex } from 'knex';

/**
 * History is per resource: a decision reads the user's grants at its own audience, and the events that
 * resource's server reported. Index both reads by resource (the issued-token audience; the ledger entry's
 * actor, which for `resource.event` is the reporting resource). The new issued_tokens index has 005's as
 * its prefix, so it replaces it. Only indexes change: the ledger's append-only triggers are untouched.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.index(['subject_issuer', 'subject', 'audience']);
  });
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropIndex(['subject_issuer', 'subject']);
  });
  await knex.schema.alterTable('ledger_entries', (t) => {
    t.index(['kind', 'subject', 'actor']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('ledger_entries', (t) => {
    t.dropIndex(['kind', 'subject', 'actor']);
  });
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.index(['subject_issuer', 'subject']);
  });
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropIndex(['subject_issuer', 'subject', 'audience']);
  });
}
