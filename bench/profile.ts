// Summarises a V8 CPU profile (.cpuprofile, as bench/child.ts or `node --cpu-prof` writes it) into the
// functions and the code areas where the time went: self time (spent in the function itself) and total
// time (with what it calls, each sample counted once per function however deep the recursion).
// `node bench/profile.ts FILE.cpuprofile` prints the summary of any profile.
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface Share { name: string; selfMs: number; totalMs: number }
export interface ProfileSummary { wallMs: number; busyMs: number; functions: Share[]; areas: Share[] }

const ROOT = path.resolve(import.meta.dirname, '..');
const IDLE = new Set(['(idle)', '(program)']);

/** Where a function lives: intentgate's folder under src/, a package, Node itself, or V8's own work. */
function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg) return pkg[1]!;
  if (file.startsWith('node:')) return 'node (runtime)';
  const rel = path.relative(ROOT, file);
  if (rel.startsWith('..')) return file;
  const parts = rel.split(path.sep);
  return parts[0] === 'src' && parts.length > 2 ? `src/${parts[1]}` : parts.slice(0, 2).join('/');
}

function label(frame: CallFrame): string {
  const file = frame.url ? (frame.url.startsWith('file://') ? path.relative(ROOT, new URL(frame.url).pathname) : frame.url) : '';
  const where = file ? ` ${file.replace(/^.*node_modules\//, '')}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where}`;
}

export function summarise(profile: CpuProfile, top = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fn = new Map<string, Share>();
  const ar = new Map<string, Share>();
  const get = (m: Map<string, Share>, name: string) => {
    let s = m.get(name);
    if (!s) m.set(name, s = { name, selfMs: 0, totalMs: 0 });
    return s;
  };
  // Samples taken while the profiler itself was being driven (node:inspector) are not the server's work.
  const profilerIds = new Set<number>();
  const underProfiler = (id: number): boolean => {
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      if (profilerIds.has(n) || byId.get(n)!.callFrame.url === 'node:inspector') {
        profilerIds.add(id);
        return true;
      }
    }
    return false;
  };
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(id)!;
    if (IDLE.has(leaf.callFrame.functionName) || underProfiler(id)) return;
    busy += ms;
    get(fn, label(leaf.callFrame)).selfMs += ms;
    get(ar, area(leaf.callFrame)).selfMs += ms;
    const seenFn = new Set<string>();
    const seenArea = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const frame = byId.get(n)!.callFrame;
      if (frame.functionName === '(root)') break;
      const f = label(frame);
      if (!seenFn.has(f)) { seenFn.add(f); get(fn, f).totalMs += ms; }
      const a = area(frame);
      if (!seenArea.has(a)) { seenArea.add(a); get(ar, a).totalMs += ms; }
    }
  });
  const bySelf = (m: Map<string, Share>) => [...m.values()].sort((a, b) => b.selfMs - a.selfMs);
  return {
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busy,
    functions: bySelf(fn).slice(0, top),
    areas: bySelf(ar).slice(0, top),
  };
}

/** The summary as Markdown: per request when `requests` is given, else as shares of the busy time. */
export function profileMarkdown(s: ProfileSummary, requests: number): string {
  const per = (ms: number) => `${((ms * 1000) / Math.max(1, requests)).toFixed(0)}`;
  const pct = (ms: number) => `${((100 * ms) / Math.max(1e-9, s.busyMs)).toFixed(1)}%`;
  const table = (title: string, rows: Share[]) => [
    `| ${title} | self µs/request | self share | total µs/request |`,
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| \`${r.name.replaceAll('|', '\\|')}\` | ${per(r.selfMs)} | ${pct(r.selfMs)} | ${per(r.totalMs)} |`),
  ].join('\n');
  return [
    `Profiled window ${(s.wallMs / 1000).toFixed(1)} s, ${requests} requests; the server's main thread was busy ${(s.busyMs / 1000).toFixed(2)} s `
      + `(${per(s.busyMs)} µs per request; idle and unattributed V8 time left out).`,
    '',
    table('area (where the code lives)', s.areas.slice(0, 14)),
    '',
    table('function', s.functions.slice(0, 20)),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node bench/profile.ts FILE.cpuprofile [REQUESTS]');
  const summary = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, 30);
  process.stdout.write(`${profileMarkdown(summary, Number(process.argv[3] ?? 1))}\n`);
}
