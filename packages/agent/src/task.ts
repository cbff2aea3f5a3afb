import type { CryptoKeyPair, TokenEndpointResponse } from 'oauth4webapi';
import { abortable } from './abort.ts';
import type { AgentKey } from './dpop_key.ts';
import { assertDpopKeyPair } from './dpop_key.ts';
import { AgentInputError, UnexpectedResponse } from './errors.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, validateExchange, type AuthorizationDetail, type ExchangeRequest } from './exchange_request.ts';
import { fromOAuthError } from './server_errors.ts';
import type { ExchangedToken } from './token.ts';
import { toolTokens, type ToolSpec, type ToolsOptions, type ToolTokens } from './tools.ts';
import type { GrantTransport } from './transport.ts';

/** RFC 8693 token type of intentgate's task tokens. */
export const TASK_TOKEN_TYPE = 'urn:intentgate:token-type:task';

/** What an agent asks for when it starts a task: the whole task's intent and ceiling. */
export interface StartTaskRequest {
  /** The user's token (a task starts from it, never from a token intentgate issued). */
  subjectToken: string;
  /** Default `urn:ietf:params:oauth:token-type:access_token`. */
  subjectTokenType?: string;
  /** What the task is for; recorded and shown to reviewers. */
  intent: string;
  /** The resources the task may reach: one or more absolute URIs. */
  resources: string | URL | ReadonlyArray<string | URL>;
  /** The most any tool call of the task may ask for; omitted: the policy's default. */
  scope?: string | readonly string[];
  /** The most any tool call may do: each tool call's details must be covered by one of these. */
  authorizationDetails?: readonly AuthorizationDetail[];
  /** Given to every authorization detail that names no purpose of its own. */
  purpose?: string;
  /** `true`: bind the task (and every tool-call token of it) to the agent's own DPoP key; or that key pair. */
  dpop?: CryptoKeyPair | boolean;
  /** The task token is renewed this many seconds before it expires. Default 60. */
  renewBeforeExpirySeconds?: number;
}

/** A tool call's request within a task: as an exchange, but the subject (and its key) is the task's. */
export type TaskExchangeRequest = Omit<ExchangeRequest, 'subjectToken' | 'subjectTokenType' | 'dpop' | 'actorToken' | 'actorTokenType'>;
/** tools() within a task: as agent.tools(), the subject is the task; the resource defaults to the task's only one. */
export type TaskToolsOptions<Tools> = Omit<ToolsOptions<Tools>, 'subjectToken' | 'subjectTokenType' | 'dpop' | 'actorToken' | 'actorTokenType' | 'task'>;

/** A started task: tool-call tokens are drawn from it, and its task token is renewed before it expires. */
export interface AgentTask {
  /** The task id every token of the task carries (`task` claim). */
  readonly id: string;
  readonly intent: string;
  readonly resources: readonly string[];
  /** The scope the task was granted: the most any of its tool calls gets. */
  readonly scope: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  /** The current task token (renewed when it is about to expire). Presentable only by this agent, only at intentgate. */
  taskToken(options?: { signal?: AbortSignal }): Promise<string>;
  /** A tool-call token from the task; refusals are typed as for agent.exchange (ExchangeDenied with `task_suspended`, …). */
  exchange(request: TaskExchangeRequest, options?: { signal?: AbortSignal }): Promise<ExchangedToken>;
  /** Tokens per tool call, drawn from the task (see agent.tools). */
  tools<Tools>(options: TaskToolsOptions<Tools>): ToolTokens<Tools>;
}

interface Current { token: string; expiresAt: number }

export interface TaskDeps {
  transport: GrantTransport;
  agentKey: AgentKey;
  exchange: (request: ExchangeRequest, signal?: AbortSignal) => Promise<ExchangedToken>;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || !value.isWellFormed()) throw new AgentInputError(field, 'must be a non-empty string');
  return value;
}

function resourceList(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new AgentInputError('resources', 'must name at least one resource');
  const out = list.map((r: unknown) => {
    const raw = r instanceof URL ? r.href : r;
    if (typeof raw !== 'string' || !URL.canParse(raw) || raw.includes('#')) throw new AgentInputError('resources', 'each must be an absolute URI without a fragment');
    return raw;
  });
  return [...new Set(out)];
}

function readTask(body: TokenEndpointResponse, receivedAt: number): { token: string; expiresAt: number; id: string; scope: string[]; details: AuthorizationDetail[] } {
  if (body.issued_token_type !== TASK_TOKEN_TYPE) throw new UnexpectedResponse(`issued_token_type is ${JSON.stringify(body.issued_token_type)}, not the task token type`);
  if (String(body.token_type).toLowerCase() !== 'n_a') throw new UnexpectedResponse('a task token\'s token_type must be N_A (RFC 8693 §2.2.1)');
  const expiresIn = body.expires_in;
  if (typeof expiresIn !== 'number' || !(expiresIn > 0)) throw new UnexpectedResponse('expires_in is missing or not positive');
  if (typeof body.task !== 'string' || body.task === '') throw new UnexpectedResponse('task is missing from the answer');
  const details = body.authorization_details;
  if (details !== undefined && (!Array.isArray(details) || details.some((d) => typeof d !== 'object' || d === null || typeof d.type !== 'string'))) {
    throw new UnexpectedResponse('authorization_details is not an array of typed objects');
  }
  return {
    token: body.access_token, expiresAt: receivedAt + expiresIn * 1000, id: body.task,
    scope: typeof body.scope === 'string' ? body.scope.split(' ').filter(Boolean) : [], details: (details ?? []) as AuthorizationDetail[],
  };
}

/**
 * Starts a task (README, Tasks): one exchange of the user's token for a task token, then every tool call
 * exchanges the task token. The task token is renewed (same task) before it expires; concurrent callers
 * share one renewal.
 */
export async function startTask(deps: TaskDeps, req: StartTaskRequest, signal?: AbortSignal): Promise<AgentTask> {
  if (typeof req !== 'object' || req === null) throw new AgentInputError('request', 'must be an object');
  const intent = text('intent', req.intent);
  const resources = resourceList(req.resources);
  const purpose = req.purpose === undefined ? undefined : text('purpose', req.purpose);
  const details = req.authorizationDetails?.map((d) => (purpose !== undefined && typeof d === 'object' && d !== null && d.purpose === undefined ? { ...d, purpose } : d));
  const renewMs = (req.renewBeforeExpirySeconds ?? 60) * 1000;
  if (!Number.isFinite(renewMs) || renewMs < 0) throw new AgentInputError('renewBeforeExpirySeconds', 'must be a number of seconds, at least 0');
  if (req.dpop !== undefined && typeof req.dpop !== 'boolean') assertDpopKeyPair(req.dpop, 'dpop');
  // The shared checks of an exchange (subject, scope, details), with the first resource as its target.
  const valid = validateExchange({
    subjectToken: req.subjectToken, intent, resource: resources[0]!, ...(req.subjectTokenType !== undefined ? { subjectTokenType: req.subjectTokenType } : {}),
    ...(req.scope !== undefined ? { scope: req.scope } : {}), ...(details !== undefined ? { authorizationDetails: details } : {}), ...(req.dpop !== undefined ? { dpop: req.dpop } : {}),
  });
  const params = valid.params;
  params.delete('resource');
  for (const r of resources) params.append('resource', r);
  params.set('requested_token_type', TASK_TOKEN_TYPE);
  const dpopKey = valid.dpop === 'agent' ? await deps.agentKey.get() : valid.dpop;

  const grant = async (form: URLSearchParams, request: ExchangeRequest, sig?: AbortSignal) => {
    sig?.throwIfAborted();
    try {
      return await abortable(deps.transport.grant(TOKEN_EXCHANGE_GRANT, form, { dpop: dpopKey, signal: sig }), sig);
    } catch (err) {
      throw await fromOAuthError(err, request);
    }
  };
  const startRequest: ExchangeRequest = { subjectToken: req.subjectToken, intent, resource: resources[0]!, subjectTokenType: req.subjectTokenType ?? ACCESS_TOKEN_TYPE };
  const started = readTask(await grant(params, startRequest, signal), Date.now());
  let current: Current = { token: started.token, expiresAt: started.expiresAt };
  let renewing: Promise<Current> | undefined;

  const renew = async (): Promise<Current> => {
    const form = new URLSearchParams({
      subject_token: current.token, subject_token_type: TASK_TOKEN_TYPE, requested_token_type: TASK_TOKEN_TYPE, intent: `Renew the task token: ${intent}`.slice(0, 1000),
    });
    const body = await grant(form, { subjectToken: current.token, subjectTokenType: TASK_TOKEN_TYPE, intent, resource: resources[0]! });
    const r = readTask(body, Date.now());
    if (r.id !== started.id) throw new UnexpectedResponse('a renewed task token names another task');
    return { token: r.token, expiresAt: r.expiresAt };
  };
  const taskToken = async (sig?: AbortSignal): Promise<string> => {
    if (Date.now() < current.expiresAt - renewMs) return current.token;
    renewing ??= renew().then((c) => (current = c)).finally(() => { renewing = undefined; });
    return (await abortable(renewing, sig)).token;
  };
  const inTask = (request: TaskExchangeRequest, token: string): ExchangeRequest => ({
    ...request, subjectToken: token, subjectTokenType: TASK_TOKEN_TYPE, ...(dpopKey ? { dpop: dpopKey } : {}),
  });

  return Object.freeze({
    id: started.id,
    intent,
    resources: Object.freeze([...resources]),
    scope: Object.freeze(started.scope),
    authorizationDetails: Object.freeze(started.details),
    taskToken: (opts?: { signal?: AbortSignal }) => taskToken(opts?.signal),
    exchange: async (request: TaskExchangeRequest, opts?: { signal?: AbortSignal }) => {
      if (typeof request !== 'object' || request === null) throw new AgentInputError('request', 'must be an object');
      const resource = request.resource ?? (request.audience === undefined && resources.length === 1 ? resources[0] : undefined);
      return deps.exchange(inTask({ ...request, ...(resource !== undefined ? { resource } : {}) }, await taskToken(opts?.signal)), opts?.signal);
    },
    tools: <Tools>(options: TaskToolsOptions<Tools>) => {
      if (typeof options !== 'object' || options === null) throw new AgentInputError('options', 'must be an object');
      const resource = options.resource ?? (options.audience === undefined && resources.length === 1 ? resources[0] : undefined);
      return toolTokens<Tools>(deps.exchange, {
        ...options, intent: options.intent ?? intent, task: false,
        ...(resource !== undefined ? { resource } : {}),
        subjectToken: () => taskToken(), subjectTokenType: TASK_TOKEN_TYPE, ...(dpopKey ? { dpop: dpopKey } : {}),
      });
    },
  } satisfies AgentTask);
}

/** The `iss` of a JWT, unverified (only to tell a token intentgate issued from a user's). */
function issuerOf(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * agent.tools(): in a task by default. From a user's token, the first call starts a task whose ceiling is
 * the tools' scopes and one detail per tool (`type`, `tool`, `action`, `purpose`, and the tool's
 * `taskObject`), and every call draws its token from that task. `task: false`, an audience or actor token,
 * or a subject token intentgate issued (already in a task): direct exchanges, as before.
 */
export function taskTools<Tools>(issuer: string, start: (req: StartTaskRequest) => Promise<AgentTask>, exchange: TaskDeps['exchange'], options: ToolsOptions<Tools>): ToolTokens<Tools> {
  const direct = toolTokens(exchange, options);
  if (options.task === false || options.audience !== undefined || options.actorToken !== undefined || options.subjectTokenType === TASK_TOKEN_TYPE) return direct;
  const tools = options.tools as Record<string, ToolSpec<unknown>>;
  let inner: Promise<ToolTokens<Tools>> | undefined;
  const inTask = (intent: string) => {
    inner ??= (async () => {
      const subject = typeof options.subjectToken === 'function' ? await options.subjectToken() : options.subjectToken;
      if (issuerOf(subject) === issuer) return direct;
      const scope = [...new Set(Object.values(tools).flatMap((t) => (typeof t.scope === 'string' ? t.scope.split(' ') : [...t.scope])))];
      const authorizationDetails = Object.entries(tools).map(([name, t]) => ({
        type: 'tool_call', tool: name, action: t.action, ...(t.purpose ? { purpose: t.purpose } : {}), ...(t.taskObject ? { object: t.taskObject } : {}),
      }));
      const resource = options.resource instanceof URL ? options.resource.href : options.resource!;
      const task = await start({
        subjectToken: subject, intent: options.intent ?? intent, resources: [resource], scope, authorizationDetails,
        ...(options.subjectTokenType !== undefined ? { subjectTokenType: options.subjectTokenType } : {}),
        ...(options.dpop !== undefined ? { dpop: options.dpop } : {}),
      });
      const { subjectToken: _s, subjectTokenType: _t, dpop: _d, actorToken: _a, actorTokenType: _at, task: _k, ...rest } = options;
      return task.tools<Tools>(rest);
    })();
    // A refused start is not remembered: the next call tries again (e.g. after a fresh user token).
    inner.catch(() => { inner = undefined; });
    return inner;
  };
  return {
    async tokenFor(tool, args, call = {}) {
      const spec = Object.hasOwn(tools, tool) ? tools[tool] : undefined;
      const intent = call.intent ?? spec?.intent?.(args) ?? options.intent;
      // Unknown tools and calls without an intent are refused as before, before any request.
      if (!spec || intent === undefined) return direct.tokenFor(tool, args, call);
      return (await abortable(inTask(intent), call.signal)).tokenFor(tool, args, call);
    },
    clear() {
      direct.clear();
      void inner?.then((t) => t.clear(), () => undefined);
    },
  };
}
