import type { Knex } from 'knex';

// Plain SQL types and features PostgreSQL and PGlite share; no extensions.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.jsonb('public_jwk').notNullable();
    t.text('private_jwk_enc').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('activates_at', { useTz: true }).notNullable();
    t.text('created_by');
  });

  await knex.schema.createTable('admins', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('token_hash').notNullable().unique();
    t.boolean('bootstrap').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('created_by');
    t.timestamp('revoked_at', { useTz: true });
    t.text('revoked_by');
  });

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.text('client_name');
    t.jsonb('grant_types').notNullable();
    t.text('scope').notNullable().defaultTo('');
    t.text('token_endpoint_auth_method').notNullable();
    t.jsonb('jwks');
    t.text('resource_server');
    t.text('secret_enc');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('resources', (t) => {
    t.text('identifier').primary();
    t.text('name').notNullable();
    t.jsonb('scopes').notNullable();
    t.integer('access_token_ttl');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('issuers', (t) => {
    t.text('issuer').primary();
    t.jsonb('jwks');
    t.text('jwks_uri');
    t.jsonb('algorithms').notNullable();
    t.jsonb('audiences').notNullable();
    t.jsonb('typs').notNullable();
    t.text('scope_claim').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('issued_tokens', (t) => {
    t.text('jti').primary();
    t.text('client_id').notNullable();
    t.text('subject');
    t.text('audience').notNullable();
    t.text('scope').notNullable().defaultTo('');
    t.text('grant_type').notNullable();
    t.timestamp('issued_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.text('parent_jti');
    t.text('task');
    t.index(['client_id']);
    t.index(['expires_at']);
  });

  // Issue 4 turns this into the hash-chained ledger; until then it is an append-only record of decisions.
  await knex.schema.createTable('ledger_entries', (t) => {
    t.bigIncrements('seq').primary();
    t.timestamp('at', { useTz: true }).notNullable();
    t.text('kind').notNullable();
    t.text('actor');
    t.jsonb('payload').notNullable();
    t.index(['kind']);
  });

  await knex.schema.createTable('oidc_payloads', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('user_code');
    t.text('uid');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['user_code']);
    t.index(['uid']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['oidc_payloads', 'ledger_entries', 'issued_tokens', 'issuers', 'resources', 'clients', 'admins', 'signing_keys']) {
    await knex.schema.dropTableIfExists(table);
  }
}
