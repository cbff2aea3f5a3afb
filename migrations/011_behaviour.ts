import type { Knex } from 'knex';

/**
 * Behaviour across tasks. `agent_holds`: an agent's standing for one user (issuer + sub) when a behaviour
 * outcome `per: agent` suspended or downgraded it, with the review that may lift it. Indexes for the
 * per-(agent, user) counters and the agent baselines, which read an agent's grants over a window.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('agent_holds', (t) => {
    t.text('client_id').notNullable();
    t.text('subject_issuer').notNullable();
    t.text('subject').notNullable();
    t.text('status').notNullable(); // suspended | downgraded
    t.text('reason');
    t.text('review_id');
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.primary(['client_id', 'subject_issuer', 'subject']);
  });
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.index(['client_id', 'issued_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropIndex(['client_id', 'issued_at']);
  });
  await knex.schema.dropTableIfExists('agent_holds');
}
