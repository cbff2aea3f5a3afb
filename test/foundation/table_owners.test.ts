import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Every table has one owning folder under src/ (DESIGN.md, "Rules that keep it changeable"): the owner declares
// it (`export const OWNED_TABLES = [...]` in one of its modules) and only the owner's modules query it. Anyone
// else asks the owner through a named function. A query is a knex builder call naming the table (`db('t')`,
// `.from('t')`, `.join('t', ...)`, a qualified column `'t.col'`) or raw SQL naming it after FROM, JOIN, INTO,
// UPDATE or TABLE. Comment lines are not code and are skipped.

const SRC = path.resolve('src');
const MIGRATIONS = path.resolve('migrations');
const DECLARATION = /export const OWNED_TABLES\s*=\s*\[([^\]]*)\]/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The file's code lines (comment lines dropped), each with its 1-based number. */
function codeLines(text: string): Array<[number, string]> {
  return text.split('\n').map((l, i) => [i + 1, l] as [number, string]).filter(([, l]) => !/^\s*(\/\/|\/\*|\*)/.test(l));
}

/** The tables named in `text`'s queries, with the line of each. */
export function queriedTables(text: string, tables: string[]): Array<{ table: string; line: number }> {
  const found: Array<{ table: string; line: number }> = [];
  const alt = tables.join('|');
  // The callee of a builder: a database handle (`db`, `trx`, `this.#db`, `deps.db`, `knex`) or a table-taking method.
  const callee = String.raw`\b(?:\w*db|\w*Db|\w*trx|\w*Trx|knex|from|into|table|hasTable|\w*join|\w*Join)`;
  const builder = new RegExp(String.raw`${callee}\s*\(\s*['"\`](${alt})(?:\s+as\s+\w+)?['"\`]\s*[,)]|['"\`](${alt})\.\w+['"\`]`, 'g');
  const raw = new RegExp(`\\b(?:from|join|into|update|table)\\s+"?(${alt})\\b`, 'gi');
  for (const [line, code] of codeLines(text)) {
    for (const m of code.matchAll(builder)) found.push({ table: (m[1] ?? m[2])!, line });
    for (const m of code.matchAll(raw)) found.push({ table: m[1]!, line });
  }
  return found;
}

/** Every table the migrations create. */
function migratedTables(): string[] {
  const names = new Set<string>();
  for (const f of files(MIGRATIONS)) for (const m of readFileSync(f, 'utf8').matchAll(/createTable(?:IfNotExists)?\(\s*['"](\w+)['"]/g)) names.add(m[1]!);
  return [...names].sort();
}

/** table → the src/ folder that declares it, and the tables declared by two folders. */
function declaredOwners(): { owners: Map<string, string>; twice: string[] } {
  const owners = new Map<string, string>();
  const twice: string[] = [];
  for (const file of files(SRC)) {
    const folder = path.relative(SRC, file).split(path.sep)[0]!;
    for (const m of readFileSync(file, 'utf8').matchAll(DECLARATION)) {
      for (const [, t] of m[1]!.matchAll(/['"](\w+)['"]/g)) {
        if (owners.has(t!) && owners.get(t!) !== folder) twice.push(`${t} (${owners.get(t!)}, ${folder})`);
        owners.set(t!, folder);
      }
    }
  }
  return { owners, twice };
}

/** Each query against a table from outside its owning folder, as `file:line table (owner)`. */
function trespasses(owners: Map<string, string>): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const rel = path.relative(SRC, file);
    const folder = rel.split(path.sep)[0]!;
    for (const q of queriedTables(readFileSync(file, 'utf8'), [...owners.keys()])) {
      if (owners.get(q.table) !== folder) out.push(`src/${rel}:${q.line} ${q.table} (owned by src/${owners.get(q.table)})`);
    }
  }
  return out;
}

describe('tables', () => {
  it('each have one declared owner under src/', () => {
    const tables = migratedTables();
    expect(tables.length).toBeGreaterThan(10);
    const { owners, twice } = declaredOwners();
    expect(twice).toEqual([]);
    expect(tables.filter((t) => !owners.has(t))).toEqual([]);
  });

  it('are queried only by their owner', () => {
    expect(trespasses(declaredOwners().owners)).toEqual([]);
  });

  it('the check finds a query where there is one, and not in comments or prose', () => {
    const t = ['issued_tokens', 'tasks', 'oidc_payloads', 'ledger_entries'];
    const sample = [
      "const rows = await db('issued_tokens').where({ task });",
      '  .from(`tasks`)',
      "  .where('oidc_payloads.expires_at', '<=', now)",
      '  sql: `select seq from ledger_entries where kind = ?`',
      "  trx.table('tasks').update({})",
      '// read from issued_tokens here',
      "const message = 'the tasks of the user';",
      "q.get('tasks');",
    ].join('\n');
    expect(queriedTables(sample, t)).toEqual([
      { table: 'issued_tokens', line: 1 }, { table: 'tasks', line: 2 }, { table: 'oidc_payloads', line: 3 }, { table: 'ledger_entries', line: 4 }, { table: 'tasks', line: 5 },
    ]);
  });
});
