import type { Knex } from 'knex';

/**
 * Admin credentials get a role: `admin` (everything), `reviewer` (the review queue and reads), `auditor`
 * (reads only). Credentials that existed before keep every right they had: role `admin`.
 * A reviewer is always bound to the person they are; the database refuses one that is not.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table admins add column role text not null default 'admin'`);
  await knex.raw(`alter table admins alter column role drop default`);
  await knex.raw(`alter table admins add constraint admins_role_known check (role in ('admin', 'reviewer', 'auditor'))`);
  await knex.raw(`alter table admins add constraint admins_reviewer_bound check (role <> 'reviewer' or (user_issuer is not null and user_sub is not null))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table admins drop constraint if exists admins_reviewer_bound');
  await knex.raw('alter table admins drop constraint if exists admins_role_known');
  await knex.raw('alter table admins drop column if exists role');
}
