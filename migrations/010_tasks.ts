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
    t.index(['client_id', 'task']);
    t.index(['subject_issuer', 'subject', 'task']);
    t.index(['status', 'task']);
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
    t.dropIndex(['client_id', 'task']);
    t.dropIndex(['subject_issuer', 'subject', 'task']);
    t.dropIndex(['status', 'task']);
    t.dropColumns('client_id', 'subject_issuer', 'subject', 'intent', 'purpose', 'scope', 'resources', 'authorization_details', 'task_jti', 'created_at', 'expires_at');
  });
}
