import type { Knex } from 'knex';

/**
 * Task tokens: a task is started by its own exchange and has a row from then on, with who started it, for
 * whom, why, its ceiling (scope, resources, authorization details) and its lifetime. Rows made before (a
 * behaviour rule suspending or downgrading a delegation-based task) keep working: every new column is
 * nullable. The issued-token index says what kind each token is (`task`, `access`, `delegation`); rows
 * from before are told apart at read time.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tasks', (t) => {
    t.text('client_id');
    t.text('subject_issuer');
    t.text('subject');
    t.text('intent');
    t.text('purpose');
    t.text('scope');
    t.jsonb('resources');
    t.jsonb('authorization_details');
    t.text('task_jti');
    t.timestamp('created_at', { useTz: true });
    t.timestamp('expires_at', { useTz: true });
    // The user's token's expiry: no task token of the task, renewed or not, outlives it.
    t.timestamp('subject_expires_at', { useTz: true });
  });
  // The order tasks were started in, for listing newest first (timestamps can tie).
  await knex.raw('alter table tasks add column seq bigint generated always as identity');
  await knex.schema.alterTable('tasks', (t) => {
    t.unique(['seq']);
    t.index(['client_id', 'seq']);
    t.index(['subject_issuer', 'subject', 'seq']);
    t.index(['status', 'seq']);
  });
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.text('kind');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropColumn('kind');
  });
  await knex.schema.alterTable('tasks', (t) => {
    t.dropColumns('seq', 'client_id', 'subject_issuer', 'subject', 'intent', 'purpose', 'scope', 'resources', 'authorization_details', 'task_jti', 'created_at', 'expires_at', 'subject_expires_at');
  });
}
