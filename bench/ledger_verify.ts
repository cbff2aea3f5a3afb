// Measures `ledger verify` on a large ledger: N entries (default 1,000,000; LEDGER_ENTRIES to change)
// written to a fresh PostgreSQL database, one signed checkpoint with its anchor, then a full verify,
// streamed. Appends the figures to bench/RESULTS.md. Usage: node bench/ledger_verify.ts
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { exportJWK, generateKeyPair } from 'jose';
import { loadConfig } from '../src/config/index.ts';
import { Checkpointer } from '../src/ledger/checkpoint.ts';
import { seal } from '../src/ledger/entry.ts';
import { loadLedgerKey } from '../src/ledger/key.ts';
import { publicKeyFrom, verifyLedger } from '../src/ledger/verify.ts';
import { createDb } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';

const N = Number(process.env.LEDGER_ENTRIES ?? 1_000_000);
const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `ig_verify_${randomBytes(4).toString('hex')}`;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

await admin(`CREATE DATABASE ${name}`);
const url = new URL(server);
url.pathname = `/${name}`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ig-verify-'));
const db = createDb({ databaseUrl: url.toString(), dataDir: dir, poolMax: 4 });
try {
  await migrate(db);
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const keyFile = path.join(dir, 'ledger.jwk');
  writeFileSync(keyFile, JSON.stringify(await exportJWK(privateKey)));
  const config = loadConfig('development', { DATA_DIR: dir, INTENTGATE_LEDGER_KEY: keyFile, INTENTGATE_ANCHOR_DIR: path.join(dir, 'anchors') });
  const { key } = await loadLedgerKey(config);

  const head = await db('ledger_head').first('seq', 'chain_hash');
  let previous: Buffer = Buffer.from(head.chain_hash);
  let seq = Number(head.seq);
  const t0 = Date.now();
  const BATCH = 2000;
  while (seq < N) {
    const rows = [];
    for (let i = 0; i < BATCH && seq < N; i++) {
      seq += 1;
      const { entry } = seal({
        kind: 'exchange.granted',
        actor: `agent-${seq % 50}`,
        payload: {
          client_id: `agent-${seq % 50}`, user: { issuer: 'https://idp.example', sub: `user-${seq % 5000}` }, act: { sub: `agent-${seq % 50}` },
          authorization_details: [{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id: `exp_${seq}`, amount: seq % 1000 } }],
          requested_scope: ['expenses:approve'], granted_scope: ['expenses:approve'], audience: 'https://expenses.example', decision: 'granted',
          reasons: [], matched_rules: ['expenses-approve-small'], policy_version: '1', task: `tsk_${seq % 20000}`, jti: randomBytes(18).toString('base64url'), expires_at: 1_800_000_000,
        },
      }, seq, new Date(), previous);
      rows.push(entry);
      previous = entry.chain_hash;
    }
    await db.batchInsert('ledger_entries', rows, BATCH);
    if (seq % 100_000 === 0) process.stderr.write(`  written ${seq}\n`);
  }
  await db('ledger_head').where({ id: 1 }).update({ seq, chain_hash: previous });
  const writeSecs = (Date.now() - t0) / 1000;

  const t1 = Date.now();
  const checkpoint = await new Checkpointer(db, key, config.ledger.anchorDir).maybeCheckpoint(() => true);
  const checkpointSecs = (Date.now() - t1) / 1000;

  const t2 = Date.now();
  const report = await verifyLedger(db, await publicKeyFrom(JSON.stringify(key.publicJwk)), config.ledger.anchorDir);
  const verifySecs = (Date.now() - t2) / 1000;
  if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.problem)}`);

  const lines = [
    '',
    `## ledger verify, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `${os.cpus().length} CPUs, Node ${process.version}; ${seq.toLocaleString('en')} entries on PostgreSQL, one signed checkpoint (tree size ${checkpoint?.tree_size}) with its anchor file.`,
    '',
    '| step | seconds |',
    '|---|---:|',
    `| write ${seq.toLocaleString('en')} sealed entries (bulk) | ${writeSecs.toFixed(1)} |`,
    `| first checkpoint over all of them | ${checkpointSecs.toFixed(1)} |`,
    `| **ledger verify** (sequence, leaf and chain hashes, payload positions, index columns, checkpoint signature and root, anchored leaves) | **${verifySecs.toFixed(1)}** |`,
    '',
    `Target: at most 30 s for a million entries. Verify rate: ${Math.round(seq / verifySecs).toLocaleString('en')} entries/s.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  appendFileSync('bench/RESULTS.md', `${lines.join('\n')}\n`);
} finally {
  await db.destroy();
  if (process.env.KEEP_DB) { process.stderr.write(`kept ${url}\n`); process.exit(0); }
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  rmSync(dir, { recursive: true, force: true });
}
