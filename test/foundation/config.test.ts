import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const prod = {
  ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://db/x', INTENTGATE_KEK: randomBytes(32).toString('base64'),
  INTENTGATE_LEDGER_KEY: '/etc/intentgate/ledger.pem', INTENTGATE_ANCHOR_DIR: '/var/lib/intentgate/anchors',
};

describe('configuration', () => {
  it('never trusts the development issuer in production mode, whatever the file says', () => {
    expect(loadConfig('production', prod, { development_issuer: true }).devIssuer).toBe(false);
    expect(loadConfig('development', {}, {}).devIssuer).toBe(true);
    expect(loadConfig('development', {}, { development_issuer: false }).devIssuer).toBe(false);
  });

  it('refuses unknown keys and out-of-range values with the field named', () => {
    expect(() => loadConfig('development', {}, { tokens: { access_token_ttl: 5 } })).toThrow(/tokens.access_token_ttl/);
    expect(() => loadConfig('development', {}, { keys: { algorithm: 'HS256' as 'ES256' } })).toThrow(ConfigError);
    expect(() => loadConfig('development', { PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig('development', { ISSUER: 'http://auth.example' })).toThrow(/https, or http:\/\/localhost/);
    expect(() => loadConfig('development', { LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('resolves the policy file relative to the configuration file', () => {
    expect(loadConfig('development', {}).policyFile).toMatch(/config\/policies\/default\.yaml$/);
  });
});
