import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import YAML from 'yaml';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFrom, verifyLedger } from '../../src/ledger/verify.ts';
import { startCli } from '../helpers/cli.ts';
import { freePort, onPostgres, tokenRequest } from '../helpers/server.ts';
import { exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } }, ledger: { checkpoint_every: 25, checkpoint_interval: 1 } }); });
afterAll(async () => { await w?.t.stop(); });

async function verified() {
  const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
  return verifyLedger(w.t.server.db, await publicKeyFrom(jwk), w.t.config.ledger.anchorDir);
}

describe('one chain under concurrency', () => {
  it('stays valid under many concurrent exchanges in one process, with checkpoints made meanwhile', async () => {
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => (await w.exchange('agent', exchangeParams(await w.userToken({ sub: `u${i}` })))).status));
    expect(results.every((s) => s === 200)).toBe(true);
    const made = await w.t.admin('POST', '/admin/api/ledger/checkpoint');
    expect([201, 409]).toContain(made.status);
    const report = await verified();
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!onPostgres)('stays one valid chain when two server processes append at once (PostgreSQL only)', async () => {
    const port = await freePort();
    const env = { ...w.t.env, PORT: String(port), ISSUER: w.t.issuer, LOG_LEVEL: 'warn' };
    // The second process shares the database, keys, KEK, policy file and ledger key (same DATA_DIR).
    const second = startCli(['start-dev'], { ...env, INTENTGATE_CONFIG: writeConfig(w) }, /listening:/);
    try {
      await second.started;
      const secondUrl = `http://127.0.0.1:${port}`;
      const before = Number((await w.t.server.db('ledger_head').first('seq')).seq);
      const calls = Array.from({ length: 80 }, async (_, i) => {
        const url = i % 2 === 0 ? w.t.url : secondUrl;
        const res = await tokenRequest(url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub: `p${i}` })) }, w.creds.agent);
        return res.status;
      });
      const statuses = await Promise.all(calls);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      const after = Number((await w.t.server.db('ledger_head').first('seq')).seq);
      expect(after - before).toBe(80);
      const report = await verified();
      expect(report.problem).toBeUndefined();
      expect(report.ok).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 60_000);
});

/** A config file for the second process with the same overrides the world used (policy, limits). */
function writeConfig(world: World): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ig-config-')), 'config.yaml');
  const defaults = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
  writeFileSync(file, YAML.stringify({
    ...defaults,
    policy: { file: path.resolve('test/fixtures/policy/exchange.yaml') },
    development_issuer: false,
    rate_limits: { token: { burst: 100_000, per_second: 100_000 }, admin: { burst: 60, per_second: 30 } },
    ledger: { checkpoint_every: 25, checkpoint_interval: 1 },
  }));
  expect(world.t.config.policyFile).toBe(path.resolve('test/fixtures/policy/exchange.yaml'));
  return file;
}
