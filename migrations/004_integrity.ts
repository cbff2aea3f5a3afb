import type { Knex } from 'knex';

/**
 * Personal ledger text may be erased (DELETE) but never rewritten (UPDATE); and the subject-token claims
 * of a delegation chain's first token travel with every token derived from it, so a policy's `user`
 * conditions hold on every hop, not only the first.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE TRIGGER ledger_personal_no_update BEFORE UPDATE ON ledger_personal FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()');
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.jsonb('subject_claims');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER ledger_personal_no_update ON ledger_personal');
  await knex.schema.alterTable('issued_tokens', (t) => {
    t.dropColumn('subject_claims');
  });
}
