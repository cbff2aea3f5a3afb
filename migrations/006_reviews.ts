import type { Knex } from 'knex';

/** Human review: requests a rule sends to a person, and tasks a behaviour rule suspended. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('reviews', (t) => {
    t.text('id').primary();
    t.text('kind').notNullable(); // exchange | task_suspension
    t.text('status').notNullable(); // pending | approved | denied | used
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('client_id').notNullable();
    t.text('subject_issuer').notNullable();
    t.text('subject').notNullable();
    t.text('task');
    // What an approval is bound to: client, user, task, scope, resource, authorization details.
    t.text('binding').notNullable();
    t.jsonb('context').notNullable();
    t.timestamp('last_polled_at', { useTz: true });
    t.text('decided_by');
    t.timestamp('decided_at', { useTz: true });
    t.timestamp('approval_expires_at', { useTz: true });
    t.text('comment');
    t.index(['status', 'created_at']);
    t.index(['binding']);
  });
  await knex.schema.createTable('tasks', (t) => {
    t.text('task').primary();
    t.text('status').notNullable(); // suspended | active
    t.text('reason');
    t.text('review_id');
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });
  // A reviewer may not review requests made on their own behalf: admins may say whom they are.
  await knex.schema.alterTable('admins', (t) => {
    t.text('user_issuer');
    t.text('user_sub');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('tasks');
  await knex.schema.dropTableIfExists('reviews');
  await knex.schema.alterTable('admins', (t) => {
    t.dropColumns('user_issuer', 'user_sub');
  });
}
