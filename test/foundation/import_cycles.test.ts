import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Dependencies between src/ folders point one way (DESIGN.md, "Rules that keep it changeable"): a cycle
// between folders, through any import (type-only and dynamic ones included), fails the suite.

const SRC = path.resolve('src');
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') || p.endsWith('.js') ? [p] : [];
  });
}

/** folder → the other src/ folders its files import, with one file that does, for the message. */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of files(SRC)) {
    const rel = path.relative(SRC, file).split(path.sep);
    if (rel.length < 2) continue; // server.ts, cli.ts: composition, imported by nobody
    const from = rel[0]!;
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), spec!)).split(path.sep);
      if (target[0] === '..' || target.length < 2 || target[0] === from) continue;
      if (!graph.has(from)) graph.set(from, new Map());
      if (!graph.get(from)!.has(target[0]!)) graph.get(from)!.set(target[0]!, path.relative(SRC, file));
    }
  }
  return graph;
}

/** The strongly connected components with more than one folder (Tarjan): each is a cycle. */
function cycles(graph: Map<string, Map<string, string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        onStack.delete(w);
        component.push(w);
        if (w === v) break;
      }
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('folders under src/', () => {
  it('import each other without a cycle', () => {
    const graph = folderGraph();
    expect(graph.size).toBeGreaterThan(10);
    const found = cycles(graph).map((c) => c.flatMap((a) => c.filter((b) => graph.get(a)?.has(b)).map((b) => `${a} → ${b} (${graph.get(a)!.get(b)})`)));
    expect(found).toEqual([]);
  });

  it('the check finds a cycle where there is one', () => {
    const g = new Map([['a', new Map([['b', 'a/x.ts']])], ['b', new Map([['c', 'b/y.ts']])], ['c', new Map([['a', 'c/z.ts']])], ['d', new Map([['a', 'd/w.ts']])]]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
  });
});
