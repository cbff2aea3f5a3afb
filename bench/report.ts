// Turns the measured slices into ratios to the peer, the console report and the dated section of
// bench/RESULTS.md.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

/** One phase measured once (one slice of one round). */
export interface Slice {
  rps: number;
  p50: number;
  p99: number;
  completed: number;
  ok: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** CPU time of the server process per completed request (PostgreSQL's work is not in it). */
  serverCpuMsPerRequest: number;
  /** Highest resident memory of the server process seen during the slice. */
  rssMaxMb: number;
  /** Highest V8 heap (heapTotal) of the server process seen during the slice. */
  heapMaxMb: number;
  /** Tokens the server recorded during the slice, for phases that issue tokens. */
  recorded: number | undefined;
  loadBefore: number;
}

export interface PhaseFigures { key: string; label: string; slices: Slice[] }

export interface RunInfo {
  date: Date;
  cpus: number;
  cpuModel: string;
  node: string;
  postgres: string;
  connections: number;
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  loadGenerator: string;
  users: number;
  distinctUsers: number;
  loadBefore: number;
  orders: string[][];
}

/** Share of completed requests that were not 2xx, plus connection errors and timeouts. */
export function failureRate(s: Slice): number {
  return (s.non2xx + s.errors) / Math.max(1, s.completed + s.errors);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Per-round ratios of one phase to another (each pair measured in the same round), then their median and range. */
function ratios(of: PhaseFigures, to: PhaseFigures, pick: (s: Slice) => number): { median: number; min: number; max: number; each: number[] } {
  // A round in which either side completed nothing (the machine was swamped) has no ratio: left out (NaN).
  const each = of.slices.map((s, i) => (s.completed > 0 && to.slices[i]!.completed > 0 ? pick(s) / Math.max(Number.EPSILON, pick(to.slices[i]!)) : Number.NaN));
  const valid = each.filter((x) => Number.isFinite(x));
  if (valid.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, each };
  return { median: median(valid), min: Math.min(...valid), max: Math.max(...valid), each };
}

interface Target { label: string; of: string; to: string; pick: 'rps' | 'p99'; bound: number; atLeast: boolean }

const TARGETS: Target[] = [
  { label: 'token exchange / peer, requests/s', of: 'exchange', to: 'peer', pick: 'rps', bound: 0.5, atLeast: true },
  { label: 'token exchange / peer, p99', of: 'exchange', to: 'peer', pick: 'p99', bound: 2.5, atLeast: false },
  { label: 'intentgate client_credentials / peer, requests/s', of: 'cc', to: 'peer', pick: 'rps', bound: 0.8, atLeast: true },
  { label: 'introspection / peer, requests/s', of: 'introspection', to: 'peer', pick: 'rps', bound: 0.8, atLeast: true },
  { label: 'exchange with DPoP / exchange, requests/s', of: 'dpop', to: 'exchange', pick: 'rps', bound: 0.8, atLeast: true },
  { label: 'exchange with history rules / exchange, requests/s', of: 'history', to: 'exchange', pick: 'rps', bound: 0.8, atLeast: true },
];
const RSS_LIMIT_MB = 250;

const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const r2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

function codes(slices: Slice[]): string {
  const bad = new Map<string, number>();
  for (const s of slices) for (const [code, n] of Object.entries(s.statusCodes)) if (!code.startsWith('2')) bad.set(code, (bad.get(code) ?? 0) + n);
  return bad.size ? ` (${[...bad].map(([code, n]) => `${code}: ${n}`).join(', ')})` : '';
}

function lines(info: RunInfo, figures: PhaseFigures[]): { table: string[]; targets: string[]; rss: string } {
  const byKey = new Map(figures.map((f) => [f.key, f]));
  const peer = byKey.get('peer')!;
  const table = [
    '| phase | requests/s (mean of rounds) | ×peer req/s: median [range] | p99 ms (mean) | ×peer p99: median [range] | server CPU ms/request | peer CPU ÷ this CPU per request | peak RSS MB (V8 heap) | non-2xx | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...figures.map((f) => {
      const rps = ratios(f, peer, (s) => s.rps);
      const p99 = ratios(f, peer, (s) => s.p99);
      // The peer's CPU per request over this phase's, round by round: what the throughput ratio would be if
      // both were limited by their own process's CPU alone (steadier than req/s when other work competes).
      const cpu = ratios(peer, f, (s) => s.serverCpuMsPerRequest);
      const sum = (k: 'non2xx' | 'errors') => f.slices.reduce((a, s) => a + s[k], 0);
      return `| ${f.label} | ${fmt(mean(f.slices.map((s) => s.rps)))} | ${r2(rps.median)} [${r2(rps.min)}–${r2(rps.max)}] | ${fmt(mean(f.slices.map((s) => s.p99)), 0)} | `
        + `${r2(p99.median)} [${r2(p99.min)}–${r2(p99.max)}] | ${r2(mean(f.slices.map((s) => s.serverCpuMsPerRequest)))} | ${r2(cpu.median)} [${r2(cpu.min)}–${r2(cpu.max)}] | ${fmt(Math.max(...f.slices.map((s) => s.rssMaxMb)), 0)} (${fmt(Math.max(...f.slices.map((s) => s.heapMaxMb)), 0)}) | `
        + `${sum('non2xx')}${codes(f.slices)} | ${sum('errors')} |`;
    }),
  ];
  const targets = TARGETS.filter((t) => byKey.has(t.of) && byKey.has(t.to)).map((t) => {
    const r = ratios(byKey.get(t.of)!, byKey.get(t.to)!, (s) => s[t.pick]);
    const ok = Number.isFinite(r.median) && (t.atLeast ? r.median >= t.bound : r.median <= t.bound);
    return `| ${t.label} | ${t.atLeast ? '≥' : '≤'} ${t.bound} | **${r2(r.median)}** | ${r.each.map(r2).join(', ')} | ${ok ? 'met' : 'NOT met'} |`;
  });
  const igRss = Math.max(...figures.filter((f) => f.key !== 'peer' && f.key !== 'pglite').flatMap((f) => f.slices.map((s) => s.rssMaxMb)));
  targets.push(`| intentgate (PostgreSQL) peak resident memory under load, MB | ≤ ${RSS_LIMIT_MB} | **${fmt(igRss, 0)}** | | ${igRss <= RSS_LIMIT_MB ? 'met' : 'NOT met'} |`);
  return { table, targets, rss: fmt(igRss, 0) };
}

export function consoleReport(info: RunInfo, figures: PhaseFigures[]): string {
  const { table, targets } = lines(info, figures);
  return [...table, '', '| target | bound | median of rounds | each round | |', '|---|---:|---:|---|---|', ...targets].join('\n');
}

const HEADER = `# intentgate benchmark results

See "Benchmark" below for what \`npm run bench\` measures; the newest sections are at the end.
`;

export function appendResults(file: string, info: RunInfo, figures: PhaseFigures[], profiles: Array<{ key: string; label: string; markdown: string }>): void {
  if (!existsSync(file)) writeFileSync(file, HEADER);
  const when = info.date.toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  const { table, targets } = lines(info, figures);
  const section = [
    '',
    `## ${when}`,
    '',
    `${info.cpus} CPUs (${info.cpuModel}), Node ${info.node}, PostgreSQL ${info.postgres}; ${info.connections} connections; ${info.rounds} rounds of ` +
      `${info.seconds} s per phase after a ${info.warmupSeconds} s warm-up of each; autocannon ${info.loadGenerator}; ${info.users} users ` +
      `(${info.distinctUsers} got exchanged tokens); load average ${info.loadBefore.toFixed(2)} before the run. Order of the rounds: ` +
      `${info.orders.map((o) => o.join(' → ')).join('; ')}.`,
    '',
    ...table,
    '',
    '| target | bound | median of rounds | each round | |',
    '|---|---:|---:|---|---|',
    ...targets,
    '',
    ...profiles.flatMap((p) => [`CPU profile of the intentgate process during "${p.label}" (a separate window after the rounds):`, '', p.markdown, '']),
  ].join('\n');
  appendFileSync(file, section);
}
