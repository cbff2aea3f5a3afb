import { describe, expect, it } from 'vitest';
import { runScript } from '../helpers/cli.ts';

describe('npm run demo', () => {
  it('plays the seeds\' story to the end and verifies the ledger', async () => {
    // As a person runs it: its own process and, whatever database the suite uses, its own embedded one.
    const { code, stdout, stderr } = await runScript('examples/mcp-expenses/demo.ts', [], {});
    expect(stderr).not.toMatch(/demo failed/);
    expect(code, stdout + stderr).toBe(0);
    for (const line of [/separation_of_duties/, /authorization_pending, review rev_/, /approved by alice/, /task_required/, /start the task .*token_type N_A/, /tool call 2: list_expenses .*same task/, /restricted_data_for_summary.*task_suspended/, /task token held/, /tool call 4 works/, /refused by the MCP server/, /verify: \d+ entries.*OK/, /demo complete/]) {
      expect(stdout).toMatch(line);
    }
  }, 90_000);
});
