// Turns autocannon results into the console table and the dated section of bench/RESULTS.md.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import type { Result } from 'autocannon';

export interface Row {
  label: string;
  result: Result;
  cpu: CpuShare;
}

/** CPU used during a measured run, as a share of all cores: this process (server and load generator) and the whole machine. */
export interface CpuShare { process: number; machine: number; processMs: number }

export interface Figures {
  label: string;
  rps: number;
  p50: number;
  p99: number;
  completed: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  cpu: CpuShare;
}

export interface RunInfo {
  date: Date;
  cpus: number;
  cpuModel: string;
  node: string;
  postgres: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  loadGenerator: string;
  users: number;
  /** One-minute load average just before the first measured run: other work on the machine skews figures. */
  loadBefore: number;
}

export function figures({ label, result, cpu }: Row): Figures {
  return {
    label,
    rps: result.requests.mean,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    cpu,
  };
}

/** Share of completed requests that were not 2xx, plus connection errors and timeouts. */
export function failureRate(f: Figures): number {
  return (f.non2xx + f.errors) / Math.max(1, f.completed + f.errors);
}

const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const pct = (share: number): string => `${Math.round(share * 100)}%`;
/** CPU milliseconds the benchmark process spent per completed request: steadier than req/s when other work competes. */
export const cpuPerRequest = (f: Figures): number => f.cpu.processMs / Math.max(1, f.completed);

function codes(f: Figures): string {
  const bad = Object.entries(f.statusCodes).filter(([code]) => !code.startsWith('2'));
  return bad.length ? ` (${bad.map(([code, n]) => `${code}: ${n}`).join(', ')})` : '';
}

/** One comparison measured in the same run: `of` against `to`. */
export interface Ratio { label: string; of: Figures; to: Figures }

const rpsRatio = (r: Ratio): number => r.of.rps / Math.max(r.to.rps, Number.EPSILON);
const cpuRatio = (r: Ratio): number => cpuPerRequest(r.of) / Math.max(cpuPerRequest(r.to), Number.EPSILON);

export function consoleTable(rows: Figures[], ratios: Ratio[]): string {
  const head = ['', 'req/s (mean)', 'p50 ms', 'p99 ms', 'requests', 'non-2xx', 'errors', 'CPU bench/machine', 'CPU ms/req'];
  const body = rows.map((f) => [
    f.label, fmt(f.rps), fmt(f.p50), fmt(f.p99), String(f.completed), `${f.non2xx}${codes(f)}`, String(f.errors), `${pct(f.cpu.process)} / ${pct(f.cpu.machine)}`, fmt(cpuPerRequest(f), 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    '',
    ...ratios.flatMap((r) => [
      `ratio ${r.label} (req/s): ${rpsRatio(r).toFixed(3)}`,
      `ratio ${r.label} (CPU ms per request of the benchmark process): ${cpuRatio(r).toFixed(3)}`,
    ]),
  ].join('\n');
}

const HEADER = `# intentgate benchmark results

\`npm run bench\` (\`bench/run.ts\`) measures the token endpoint of an intentgate started in-process on a
fresh PostgreSQL database (created on the server \`DATABASE_URL\` points at, default
\`postgres://postgres@127.0.0.1:5432/postgres\`, and dropped afterwards). In the same run, after a short
warm-up of each, autocannon drives 64 connections against:

- **client_credentials** (the baseline): a confidential client with HTTP Basic authentication asking
  for \`expenses:read\` on \`https://expenses.example\`. oidc-provider mints an RFC 9068 token, which is
  recorded in the issued-token index and the ledger before it is returned.
- **token exchange**: an agent (HTTP Basic) trading a real ES256 user token from a registered identity
  provider, with an intent and a \`tool_call\` authorization detail, for \`expenses:approve\`. Each
  request carries a different user's token (2000 users, rotated). The full pipeline runs: parse,
  client and subject authentication, target resolution, the policy decision under
  \`bench/policy.yaml\`, minting, and recording the grant.
- **token exchange with DPoP**: the same exchanges, each with a fresh single-use DPoP proof (ES256), so
  the proof check, its replay record in the database and the \`cnf.jkt\` binding are added.

Every response is counted; the run fails if more than 1% of either kind are not 2xx. Figures are
requests per second (mean of the per-second samples) and latency percentiles in milliseconds. The CPU
column is the share of all cores used during the measured run by the benchmark process (intentgate
plus autocannon) and by the whole machine; the difference is PostgreSQL plus anything else running.
When the machine is near 100% and the benchmark's share is well below it, other work was competing
and the figures of that section are low. CPU ms/request (the benchmark process's CPU time, server
and load generator, over the requests completed; PostgreSQL's work is not in it) is steadier than
requests/s under such competition.

Run it with \`npm run bench\`; \`BENCH_SECONDS\` sets the length of each measured run (default 10),
\`BENCH_WARMUP_SECONDS\` the warm-up (default 3), and \`BENCH_WORKERS=0\` runs autocannon on the server's
own thread instead of a worker thread. The reference machine has 2 cores; the load generator, the
server and PostgreSQL all share them, so absolute figures are modest and the ratio is the more
portable number, provided both runs of a section had the machine to themselves (similar CPU
columns). Each section notes the CPU count and Node version it was taken with.
`;

export function appendResults(file: string, info: RunInfo, rows: Figures[], ratios: Ratio[]): void {
  if (!existsSync(file)) writeFileSync(file, HEADER);
  const when = info.date.toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  const section = [
    '',
    `## ${when}`,
    '',
    `${info.cpus} CPUs (${info.cpuModel}), Node ${info.node}, PostgreSQL ${info.postgres}; ${info.connections} connections, ` +
      `${info.seconds} s per measured run after a ${info.warmupSeconds} s warm-up; autocannon ${info.loadGenerator}; ${info.users} distinct users; ` +
      `load average ${info.loadBefore.toFixed(2)} before the run.`,
    '',
    '| grant | requests/s (mean) | p50 (ms) | p99 (ms) | requests | non-2xx | errors | CPU bench / machine | CPU ms/request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((f) => `| ${f.label} | ${fmt(f.rps)} | ${fmt(f.p50)} | ${fmt(f.p99)} | ${f.completed} | ${f.non2xx}${codes(f)} | ${f.errors} | ${pct(f.cpu.process)} / ${pct(f.cpu.machine)} | ${fmt(cpuPerRequest(f), 2)} |`),
    '',
    ...ratios.map((r) => `Ratio ${r.label} (requests/s): **${rpsRatio(r).toFixed(3)}**; CPU ms per request, ${r.label}: ${cpuRatio(r).toFixed(3)}`),
    '',
  ].join('\n');
  appendFileSync(file, section);
}
