/**
 * `npm run demo`: intentgate (embedded database), the expenses MCP server and two agents play the seeds'
 * story (the summary, the seeds' second scenario, runs in one task: a token per tool call, no delegation). Every step checks what it claims, so the demo fails (exit 1) the moment the story stops being true.
 */
import { decodeJwt } from 'jose';
import { createAgent, ExchangeDenied, type ExchangedToken } from '@intentgate/agent';
import { publicKeyFrom, verifyLedger } from '../../src/ledger/verify.ts';
import { callMcpTool, ExpenseAgent, expenseToolSpecs, type ExpenseTools } from './agent.ts';
import { HR, startDemoWorld } from './setup.ts';

const out = (line = '') => process.stdout.write(`${line}\n`);
const step = (line: string) => out(`   ${line}`);

function claim(ok: unknown, what: string): asserts ok {
  if (!ok) throw new Error(`the demo's story broke: ${what}`);
}

function describeToken(t: ExchangedToken): string {
  const c = decodeJwt(t.accessToken) as { scope: string; act: unknown; task: string; cnf?: { jkt: string }; exp: number; iat: number; aud: string };
  return `${t.tokenType} token, ${c.exp - c.iat} s, scope ${c.scope}, act ${JSON.stringify(c.act)}, task ${c.task}${c.cnf ? `, bound to key ${c.cnf.jkt.slice(0, 10)}…` : ''}`;
}

/** One ledger entry in a line; the setup entries (registrations, keys, policy) are left out. */
function ledgerLine(kind: string, p: Record<string, unknown>): string | undefined {
  const list = (v: unknown) => ((v as string[] | undefined) ?? []).join(' ');
  switch (kind) {
    case 'exchange.granted':
      if (p.token_kind === 'task') return `${p.client_id} starts task ${p.task}: ${list(p.granted_scope)} at ${list(p.resources)}${p.cnf_jkt ? ' (DPoP-bound)' : ''}`;
      return `${p.client_id} → ${p.audience}: granted ${list(p.granted_scope)}${p.cnf_jkt ? ' (DPoP-bound)' : ''}`;
    case 'exchange.denied':
      return `${p.client_id} → ${p.audience}: ${p.error}${(p.reasons as string[] | undefined)?.length ? ` (${list(p.reasons)})` : ''}`;
    case 'resource.event':
      return `the MCP server reports ${p.action} ${JSON.stringify(p.object ?? {})}: ${p.outcome}`;
    case 'review.opened':
      return `${p.review_id} (${p.review_kind}) for ${p.client_id}: ${list(p.reasons)}`;
    case 'review.approved':
    case 'review.denied':
      return `${p.review_id} (${p.review_kind})`;
    case 'token.revoked':
      return `${(p.revoked as unknown[] | undefined)?.length ?? 0} token(s)${(p.suspended as unknown[] | undefined)?.length ? ', task token held' : ''}: ${p.reason}`;
    default:
      return undefined;
  }
}

/** What a refused MCP call answered: the RFC 6750 error the server sent, when the client passed it on. */
function refusal(message: string): string {
  const body = /\{.*\}/.exec(message)?.[0];
  try {
    const { error, error_description } = JSON.parse(body ?? '') as { error: string; error_description: string };
    return `${error}: ${error_description}`;
  } catch {
    return message.slice(0, 120);
  }
}

async function main(): Promise<void> {
  const w = await startDemoWorld();
  try {
    out('intentgate demo: an expenses MCP server whose every tool call needs a narrow, intent-bound token');
    out(`   intentgate  ${w.issuer}   (development mode, embedded PGlite)`);
    out(`   MCP server  ${w.mcp.resource}   (metadata: ${w.mcp.url}/.well-known/oauth-protected-resource/mcp)`);
    const meta = await (await fetch(`${w.mcp.url}/.well-known/oauth-protected-resource/mcp`)).json() as { authorization_servers: string[] };
    claim(meta.authorization_servers[0] === w.issuer, 'the MCP server names intentgate as its authorization server');

    const aliceToken = await w.userToken('alice', { groups: ['managers'], name: 'Alice' });
    out(`   Alice's broad token from her identity provider: scope "${decodeJwt(aliceToken).scope}", 1 h`);
    const assistant = await createAgent({ issuer: w.issuer, clientId: 'assistant', clientSecret: w.creds.assistant!.clientSecret, http: { allowInsecure: true } });
    // Approvals are single decisions, each on its own token: no task (task: false); the summary below runs in one.
    const tools = assistant.tools<ExpenseTools>({ subjectToken: aliceToken, resource: w.mcp.resource, tools: expenseToolSpecs(), dpop: true, task: false });
    const alicesAgent = new ExpenseAgent(assistant, tools, w.mcp.resource);

    out();
    out('1. Alice: "File my taxi expense from the Berlin trip and get it approved."');
    const submitted = await alicesAgent.call('submit_expense', { amount: 120, currency: 'EUR', description: 'Taxi, Berlin trip' }, "File Alice's taxi expense from the Berlin trip");
    claim(submitted.ok, `submit_expense succeeds (${submitted.text})`);
    const mine = JSON.parse(submitted.text) as { id: string; amount: number };
    step(`exchange for submit_expense   → ${describeToken(submitted.token)}`);
    step(`MCP submit_expense            → ${mine.id} submitted (120 EUR); the server reported it to the ledger as created`);
    try {
      await alicesAgent.call('approve_expense', { id: mine.id, amount: 120 }, 'Get the taxi expense approved, as Alice asked');
      claim(false, 'approving one\'s own submission is refused');
    } catch (err) {
      claim(err instanceof ExchangeDenied && err.reasons.includes('separation_of_duties'), `refused with separation_of_duties (got ${String(err)})`);
      step(`exchange for approve_expense  → refused: access_denied, reasons ${JSON.stringify(err.reasons)}`);
      step('   the same user submitted it; no agent of hers may approve it (separation of duties).');
    }

    out();
    out('2. Alice: "Approve Bob\'s conference expense." (4,800 EUR: policy wants a person to look)');
    w.mcp.store.add({ id: 'exp_bob_lisbon', owner: 'bob', amount: 4800, currency: 'EUR', description: 'Conference, Lisbon' });
    const approved = await alicesAgent.call('approve_expense', { id: 'exp_bob_lisbon', amount: 4800 }, "Approve Bob's conference expense for Alice", async (pending) => {
      step(`exchange for approve_expense  → authorization_pending, review ${pending.reviewId}, polling every ${pending.interval} s`);
      const list = await (await w.admin('GET', '/admin/api/reviews?status=pending', undefined, w.reviewerToken)).json() as { items: Array<{ id: string; context: { intent: string; reasons?: string[] } }> };
      const review = list.items.find((r) => r.id === pending.reviewId);
      claim(review, 'the review is in the queue');
      step(`reviewer carol sees: "${review.context.intent}" (${JSON.stringify(review.context.reasons ?? [])}) and approves`);
      const res = await w.admin('POST', `/admin/api/reviews/${pending.reviewId}/approve`, { comment: 'conference budget confirmed' }, w.reviewerToken);
      claim(res.status === 200, `the reviewer's approval is accepted (${res.status})`);
    });
    claim(approved.ok, `approve_expense succeeds after the review (${approved.text})`);
    step(`agent polls again             → ${describeToken(approved.token)}`);
    step(`MCP approve_expense           → exp_bob_lisbon ${(JSON.parse(approved.text) as { status: string }).status} by alice`);

    out();
    out('3. Alice: "Summarise this week\'s expenses." The summarizer agent starts one task for it.');
    const summarizer = await createAgent({ issuer: w.issuer, clientId: 'summarizer', clientSecret: w.creds.summarizer!.clientSecret, http: { allowInsecure: true } });
    try {
      await summarizer.exchange({ subjectToken: aliceToken, resource: w.mcp.resource, scope: 'expenses:read', intent: 'List the expenses', authorizationDetails: [{ type: 'tool_call', action: 'list', object: { type: 'Expense' } }] });
      claim(false, 'the summarizer may not take tool-call tokens outside a task');
    } catch (err) {
      claim(err instanceof ExchangeDenied && err.reasons.includes('task_required'), `a tool call outside a task is refused with task_required (got ${String(err)})`);
      step(`summarizer, no task           → refused: ${JSON.stringify(err.reasons)} (policy: this agent works in tasks)`);
    }
    const task = await summarizer.startTask({
      subjectToken: aliceToken, intent: "Summarise this week's expenses for Alice", resources: w.mcp.resource, scope: 'expenses:read',
      authorizationDetails: [{ type: 'tool_call', tool: 'list_expenses', action: 'list', object: { type: 'Expense' } }], purpose: 'summarize',
    });
    const taskClaims = decodeJwt(await task.taskToken()) as { exp: number; iat: number; aud: string };
    step(`start the task                → task ${task.id}: a task token (token_type N_A, ${taskClaims.exp - taskClaims.iat} s, aud ${taskClaims.aud}: no resource server takes it); ceiling expenses:read, list_expenses, purpose summarize`);
    const summarizing = new ExpenseAgent(summarizer, task.tools<ExpenseTools>({ tools: expenseToolSpecs('summarize') }), w.mcp.resource);
    const listed = await summarizing.call('list_expenses', {}, 'Read the expenses to summarise');
    claim(listed.ok, `list_expenses succeeds (${listed.text})`);
    step(`tool call 1: list_expenses    → ${(JSON.parse(listed.text) as unknown[]).length} expenses; ${describeToken(listed.token)}`);
    const counted = await summarizing.call('list_expenses', {}, "Count this week's claims for the summary");
    claim(counted.ok && decodeJwt(counted.token.accessToken).task === task.id, 'the second tool call is in the same task');
    step(`tool call 2: list_expenses    → a token of its own, same task ${task.id}`);
    try {
      await task.exchange({ resource: HR, scope: 'hr:read', intent: 'Look up salary records for more context', authorizationDetails: [{ type: 'tool_call', action: 'read' }] });
      claim(false, 'a summary reaching for restricted HR data is refused');
    } catch (err) {
      claim(err instanceof ExchangeDenied && err.reasons.includes('task_suspended'), `the task is suspended (got ${String(err)})`);
      step(`tool call 3: HR salary data   → refused: ${JSON.stringify(err.reasons)}; review ${err.reviewId}`);
      const view = await (await w.admin('GET', `/admin/api/tasks/${task.id}`)).json() as { status: string; tokens: Array<{ kind: string; status: string }> };
      claim(view.status === 'suspended' && view.tokens.every((t) => (t.kind === 'task' ? t.status === 'suspended' : t.status === 'revoked')), 'the task is suspended, its tool-call tokens revoked, its task token held');
      step(`the task                      → ${view.status}: both tool-call tokens revoked, the task token held`);
      let refused = '';
      try {
        const again = await callMcpTool(summarizer, listed.token, w.mcp.resource, 'list_expenses', {});
        claim(!again.ok, 'the MCP server refuses the revoked token');
      } catch (e) {
        refused = (e as Error).message;
      }
      claim(refused, 'the MCP server refuses the earlier, revoked token');
      step(`MCP list_expenses, token 1    → refused by the MCP server: 401 ${refusal(refused)}`);
      const held = await task.exchange({ intent: 'Carry on listing', scope: 'expenses:read' }).catch((e: unknown) => e);
      claim(held instanceof ExchangeDenied && held.reasons.includes('task_suspended'), 'the task token is refused while the task is suspended');
      step(`another tool call             → refused: ${JSON.stringify(held.reasons)}`);
      const lift = await w.admin('POST', `/admin/api/reviews/${err.reviewId}/approve`, { comment: 'looked at it: no harm done' }, w.reviewerToken);
      claim(lift.status === 200, 'the reviewer can lift the suspension');
      const resumed = await summarizing.call('list_expenses', {}, 'Finish the summary');
      claim(resumed.ok && decodeJwt(resumed.token.accessToken).task === task.id, 'the task goes on after the review');
      const after = await (await w.admin('GET', `/admin/api/tasks/${task.id}`)).json() as { status: string };
      step(`reviewer carol approves       → task ${after.status} again, its task token live; tool call 4 works; revoked tokens stay revoked`);
    }

    out();
    out('4. The ledger');
    const made = await w.admin('POST', '/admin/api/ledger/checkpoint');
    claim(made.status === 201 || made.status === 200, `a checkpoint is signed (${made.status})`);
    const checkpoint = await (await fetch(`${w.issuer}/.well-known/ledger-checkpoint`)).json() as { tree_size: number; root_hash: string; public_key: unknown };
    const report = await verifyLedger(w.intentgate.db, await publicKeyFrom(JSON.stringify(checkpoint.public_key)), w.config.ledger.anchorDir);
    claim(report.ok, `the ledger verifies (${JSON.stringify(report.problem)})`);
    const { items } = await (await w.admin('GET', '/admin/api/ledger?limit=200')).json() as { items: Array<{ seq: number; kind: string; payload: Record<string, unknown> }> };
    for (const e of [...items].reverse()) {
      const line = ledgerLine(e.kind, e.payload);
      if (line) step(`#${String(e.seq).padStart(3)} ${e.kind.padEnd(17)} ${line}`);
    }
    step(`verify: ${report.entries} entries, chain and signed checkpoint (tree size ${checkpoint.tree_size}) OK, head ${report.head_hash.slice(0, 16)}…`);
    out();
    out('demo complete: every step above is recorded, and the record verifies.');
  } finally {
    await w.close();
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
