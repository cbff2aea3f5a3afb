import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { DEFAULTS, SHIPPED_POLICY } from '../../src/config/defaults.ts';

function configFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ig-config-')), 'intentgate.yaml');
  writeFileSync(file, text);
  return file;
}

describe('a configuration file merges over the defaults', () => {
  it('a file that sets one key keeps every other default, authorization_details_types included', () => {
    const file = configFile('tokens:\n  access_token_ttl: 120\n');
    const config = loadConfig('development', { INTENTGATE_CONFIG: file });
    const defaults = loadConfig('development', { INTENTGATE_CONFIG: configFile('{}\n') });
    expect(config.accessTokenTtl).toBe(120);
    expect(Object.keys(config.detailTypes)).toEqual(['tool_call']);
    expect(config.detailTypes).toEqual(defaults.detailTypes);
    expect(config.exchange).toEqual(defaults.exchange);
    expect(config.rateLimits).toEqual(defaults.rateLimits);
    // No policy named: the shipped one, not a path beside the file that does not exist.
    expect(config.policyFile).toBe(SHIPPED_POLICY);
  });

  it('merges nested sections key by key', () => {
    const config = loadConfig('development', { INTENTGATE_CONFIG: configFile('exchange:\n  clock_skew: 5\nrate_limits:\n  token: { burst: 5, per_second: 1 }\n') });
    expect(config.exchange.clockSkew).toBe(5);
    expect(config.exchange.requireIntent).toBe(true);
    expect(config.exchange.maxDelegationDepth).toBe(DEFAULTS.exchange.max_delegation_depth);
    expect(config.rateLimits.token).toEqual({ burst: 5, per_second: 1 });
    expect(config.rateLimits.admin).toEqual(DEFAULTS.rate_limits.admin);
  });

  it('a declared detail type is added beside the defaults; one named like a default replaces its schema whole', () => {
    const file = configFile(YAML.stringify({ authorization_details_types: { payment: { type: 'object', required: ['type'] }, tool_call: { type: 'object' } } }));
    const config = loadConfig('development', { INTENTGATE_CONFIG: file });
    expect(config.detailTypes).toEqual({ tool_call: { type: 'object' }, payment: { type: 'object', required: ['type'] } });
  });

  it('a policy named in the file is relative to the file', () => {
    const file = configFile('policy:\n  file: mine.yaml\n');
    expect(loadConfig('development', { INTENTGATE_CONFIG: file }).policyFile).toBe(path.join(path.dirname(file), 'mine.yaml'));
  });

  it('the shipped config/default.yaml says exactly what the built-in defaults say', () => {
    const shipped = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
    const { policy, ...rest } = shipped;
    expect(rest).toEqual(DEFAULTS);
    expect(path.resolve('config', (policy as { file: string }).file)).toBe(SHIPPED_POLICY);
    expect(loadConfig('development', { INTENTGATE_CONFIG: path.resolve('config/default.yaml') })).toEqual(loadConfig('development', { INTENTGATE_CONFIG: configFile('{}\n') }));
  });

  it('a named file that does not exist, or a wrong value, is a one-line ConfigError naming it', () => {
    expect(() => loadConfig('development', { INTENTGATE_CONFIG: '/nonexistent/ig.yaml' })).toThrow(ConfigError);
    expect(() => loadConfig('development', { INTENTGATE_CONFIG: configFile('exchange:\n  clock_skew: -1\n') })).toThrow(/exchange.clock_skew/);
    expect(() => loadConfig('development', { INTENTGATE_CONFIG: configFile('environment: "pro duction"\n') })).toThrow(/environment/);
  });

  it('the deployment environment comes from INTENTGATE_ENVIRONMENT or the file, and is unset by default', () => {
    expect(loadConfig('development', {}).environment).toBeUndefined();
    expect(loadConfig('development', { INTENTGATE_CONFIG: configFile('environment: staging\n') }).environment).toBe('staging');
    expect(loadConfig('development', { INTENTGATE_CONFIG: configFile('environment: staging\n'), INTENTGATE_ENVIRONMENT: 'production' }).environment).toBe('production');
    expect(() => loadConfig('development', { INTENTGATE_ENVIRONMENT: 'bad value' })).toThrow(/INTENTGATE_ENVIRONMENT/);
  });
});
