// Where a run's time goes, per test file: `npx vitest run --reporter=default --reporter=./test/helpers/timing_reporter.ts`
// writes TIMING_OUT (default /tmp/vitest_timing.json) and prints the slowest files. Wall-clock, from the main process.
import { writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

interface Row { file: string; queued: number; end: number; collect: number; setup: number; prepare: number; environment: number; tests: number; cases: number; state: string }

export default class TimingReporter implements Reporter {
  private readonly queued = new Map<string, number>();
  private readonly rows: Row[] = [];
  private readonly started = Date.now();

  onTestModuleQueued(m: TestModule): void { this.queued.set(m.moduleId, Date.now()); }

  onTestModuleEnd(m: TestModule): void {
    const d = m.diagnostic();
    this.rows.push({
      file: m.relativeModuleId, queued: (this.queued.get(m.moduleId) ?? this.started) - this.started, end: Date.now() - this.started,
      collect: d.collectDuration, setup: d.setupDuration, prepare: d.prepareDuration, environment: d.environmentSetupDuration,
      tests: d.duration, cases: [...m.children.allTests()].length, state: m.state(),
    });
  }

  onTestRunEnd(): void {
    const out = process.env.TIMING_OUT ?? '/tmp/vitest_timing.json';
    writeFileSync(out, JSON.stringify({ wall: Date.now() - this.started, files: this.rows }, null, 1));
    const s = (ms: number) => (ms / 1000).toFixed(1).padStart(6);
    const rows = [...this.rows].sort((a, b) => (b.end - b.queued) - (a.end - a.queued));
    console.log(`\nslowest files (s: queued→end, collect, tests+hooks); all rows in ${out}`);
    for (const r of rows.slice(0, 25)) console.log(`${s(r.end - r.queued)} ${s(r.collect)} ${s(r.tests)}  ${r.file}`);
  }
}
