import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ApprovalPending, type Agent, type ExchangedToken, type ToolSpec, type ToolTokens } from '@intentgate/agent';

/** The expenses MCP server's tools and their arguments. */
export interface ExpenseTools {
  list_expenses: Record<string, never>;
  submit_expense: { amount: number; currency: string; description: string };
  approve_expense: { id: string; amount: number };
  [name: string]: object;
}

/** How each tool call maps to the one narrow token it needs: scope, action and the object it touches. */
export function expenseToolSpecs(purpose?: string): { [Name in keyof ExpenseTools]: ToolSpec<ExpenseTools[Name]> } {
  const p = purpose ? { purpose } : {};
  return {
    list_expenses: { scope: 'expenses:read', action: 'list', object: () => ({ type: 'Expense' }), ...p },
    submit_expense: { scope: 'expenses:submit', action: 'submit', object: (a) => ({ type: 'Expense', amount: a.amount, currency: a.currency }), ...p },
    // The amount is part of what is decided (large approvals wait for a person); the server checks it is the real one.
    approve_expense: { scope: 'expenses:approve', action: 'approve', object: (a) => ({ type: 'Expense', id: a.id, amount: a.amount }), ...p },
  } as { [Name in keyof ExpenseTools]: ToolSpec<ExpenseTools[Name]> };
}

export interface ToolOutcome { ok: boolean; text: string; token: ExchangedToken }

/** One MCP tool call over Streamable HTTP, presenting `token` (with a fresh DPoP proof per request when bound). */
export async function callMcpTool(agent: Agent, token: ExchangedToken, mcpUrl: string, name: string, args: object): Promise<{ ok: boolean; text: string }> {
  const client = new Client({ name: 'intentgate-example-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: agent.authorizedFetch(token) }));
  try {
    const result = await client.callTool({ name, arguments: args as Record<string, unknown> });
    const content = (result.content as Array<{ type: string; text?: string }> | undefined) ?? [];
    return { ok: result.isError !== true, text: content.map((c) => c.text ?? '').join('\n') };
  } finally {
    await client.close();
  }
}

/**
 * An agent holding a user's token: for each tool call it exchanges that token for one narrow token (the
 * intent and the call's details), waits for a person when policy asks for one, then calls the tool with it.
 */
export class ExpenseAgent {
  readonly #agent: Agent;
  readonly #tools: ToolTokens<ExpenseTools>;
  readonly #mcpUrl: string;

  constructor(agent: Agent, tools: ToolTokens<ExpenseTools>, mcpUrl: string) {
    this.#agent = agent;
    this.#tools = tools;
    this.#mcpUrl = mcpUrl;
  }

  /** The token for exactly this call; `onPending` hears of a review before the agent waits for it. */
  async tokenFor<N extends keyof ExpenseTools & string>(name: N, args: ExpenseTools[N], intent: string, onPending?: (p: ApprovalPending) => void | Promise<void>): Promise<ExchangedToken> {
    try {
      return await this.#tools.tokenFor(name, args, { intent });
    } catch (err) {
      if (!(err instanceof ApprovalPending)) throw err;
      await onPending?.(err);
      return this.#agent.waitForApproval(err, { timeoutMs: 120_000 });
    }
  }

  async call<N extends keyof ExpenseTools & string>(name: N, args: ExpenseTools[N], intent: string, onPending?: (p: ApprovalPending) => void | Promise<void>): Promise<ToolOutcome> {
    const token = await this.tokenFor(name, args, intent, onPending);
    return { ...(await callMcpTool(this.#agent, token, this.#mcpUrl, name, args)), token };
  }
}
