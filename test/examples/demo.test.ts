import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** `npm run demo` as a person runs it: its own process, its own embedded database, to the end. */
function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // The demo always runs on the embedded database, whatever the suite uses.
    const { DATABASE_URL: _pg, ...env } = process.env;
    const child = spawn(process.execPath, ['examples/mcp-expenses/demo.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  it('plays the seeds\' story to the end and verifies the ledger', async () => {
    const { code, stdout, stderr } = await runDemo();
    expect(stderr).not.toMatch(/demo failed/);
    expect(code, stdout + stderr).toBe(0);
    for (const line of [/separation_of_duties/, /authorization_pending, review rev_/, /approved by alice/, /restricted_data_for_summary.*task_suspended/, /refused by the MCP server/, /verify: \d+ entries.*OK/, /demo complete/]) {
      expect(stdout).toMatch(line);
    }
  }, 90_000);
});
