import type { CryptoKeyPair } from 'oauth4webapi';
import { abortable } from './abort.ts';
import { canonicalArgs } from './canonical_args.ts';
import { assertDpopKeyPair } from './dpop_key.ts';
import { AgentInputError } from './errors.ts';
import type { ExchangeRequest } from './exchange_request.ts';
import type { ExchangedToken } from './token.ts';

/** How one tool's calls map to a token: the scope it needs and the `tool_call` details it declares. */
export interface ToolSpec<Args = Record<string, unknown>> {
  scope: string | readonly string[];
  /** The `tool_call` action policies match on, e.g. `approve`. */
  action: string;
  /** The object the call acts on, from its arguments, e.g. `{ type: 'Expense', id: args.id }`. */
  object?: (args: Args) => Record<string, unknown>;
  purpose?: string;
  /** The intent for a call, when the caller does not give one. */
  intent?: (args: Args) => string;
  /**
   * In a task tools() starts: the object fields the task's ceiling names for this tool (e.g.
   * `{ type: 'Expense', amount: 1000 }`: any expense up to 1000). Default: none, any object.
   */
  taskObject?: Record<string, unknown>;
}

export interface ToolsOptions<Tools> {
  subjectToken: string | (() => string | Promise<string>);
  subjectTokenType?: string;
  resource?: string | URL;
  audience?: string;
  /** The intent of calls whose tool and caller give none, e.g. the agent's current task. */
  intent?: string;
  tools: { [Name in keyof Tools]: ToolSpec<Tools[Name]> };
  /** A cached token is exchanged again this many seconds before it expires. Default 30. */
  refreshBeforeExpirySeconds?: number;
  dpop?: CryptoKeyPair | boolean;
  actorToken?: string;
  actorTokenType?: string;
  /** Most cached tokens kept; the oldest go first. Default 1000. */
  maxCachedTokens?: number;
  /**
   * Default: from a user's token, the tool calls run in one task, started on the first call (its intent the
   * `intent` here, or the first call's; its ceiling the tools' scopes and one detail per tool). `false`:
   * every call exchanges the subject token directly (no task). A subject token intentgate issued (a
   * delegation token) is already in a task: its calls exchange it directly.
   */
  task?: false;
}

export interface ToolTokens<Tools> {
  /**
   * A token for exactly this call: the same tool, arguments, intent, subject, target, scope and key
   * reuse one live token; concurrent identical calls share one exchange. Refusals are never cached.
   *
   * The intent is part of the cache key: the ledger records, for each token, the intent it was
   * exchanged with, and reviewers read it as why the call was made. Reusing a token across intents
   * would make that record false for every later use, so another intent means another exchange (and
   * another ledger entry), even for the same arguments. Intents derived from the arguments, or a fixed
   * task intent, keep the reuse.
   */
  tokenFor<Name extends keyof Tools & string>(tool: Name, args: Tools[Name], options?: { intent?: string; signal?: AbortSignal }): Promise<ExchangedToken>;
  /** Forgets every cached token. */
  clear(): void;
}

const DEFAULT_REFRESH_SECONDS = 30;
const DEFAULT_MAX_CACHED = 1000;

type Exchange = (req: ExchangeRequest, signal?: AbortSignal) => Promise<ExchangedToken>;

function checkSpec(name: string, spec: ToolSpec<never>): void {
  const at = `tools.${name}`;
  if (typeof spec !== 'object' || spec === null) throw new AgentInputError(at, 'must be a tool spec object');
  const scope = typeof spec.scope === 'string' ? [spec.scope] : spec.scope;
  if (!Array.isArray(scope) || scope.length === 0 || scope.some((s) => typeof s !== 'string' || s.trim() === '')) throw new AgentInputError(`${at}.scope`, 'must name at least one scope');
  if (typeof spec.action !== 'string' || spec.action === '') throw new AgentInputError(`${at}.action`, 'must be a non-empty string');
  if (spec.object !== undefined && typeof spec.object !== 'function') throw new AgentInputError(`${at}.object`, 'must be a function of the arguments');
  if (spec.intent !== undefined && typeof spec.intent !== 'function') throw new AgentInputError(`${at}.intent`, 'must be a function of the arguments');
  if (spec.purpose !== undefined && (typeof spec.purpose !== 'string' || spec.purpose === '')) throw new AgentInputError(`${at}.purpose`, 'must be a non-empty string');
  if (spec.taskObject !== undefined && (typeof spec.taskObject !== 'object' || spec.taskObject === null || Array.isArray(spec.taskObject))) throw new AgentInputError(`${at}.taskObject`, 'must be an object');
}

/** Small stable ids for key pairs, so a cache key can name the key without holding its material. */
const keyIds = new WeakMap<CryptoKeyPair, number>();
let nextKeyId = 1;
function keyId(pair: CryptoKeyPair): number {
  let id = keyIds.get(pair);
  if (id === undefined) keyIds.set(pair, (id = nextKeyId++));
  return id;
}

export function toolTokens<Tools>(exchange: Exchange, options: ToolsOptions<Tools>): ToolTokens<Tools> {
  if (typeof options !== 'object' || options === null) throw new AgentInputError('options', 'must be an object');
  const { tools, subjectToken } = options;
  if (typeof tools !== 'object' || tools === null || Object.keys(tools).length === 0) throw new AgentInputError('tools', 'must declare at least one tool');
  for (const [name, spec] of Object.entries(tools)) checkSpec(name, spec as ToolSpec<never>);
  if (typeof subjectToken !== 'function' && (typeof subjectToken !== 'string' || subjectToken === '')) throw new AgentInputError('subjectToken', 'must be a token or a function returning one');
  if (options.resource === undefined && options.audience === undefined) throw new AgentInputError('resource', 'a resource or an audience is required');
  const refreshMs = (options.refreshBeforeExpirySeconds ?? DEFAULT_REFRESH_SECONDS) * 1000;
  if (!Number.isFinite(refreshMs) || refreshMs < 0) throw new AgentInputError('refreshBeforeExpirySeconds', 'must be a number of seconds, at least 0');
  const maxCached = options.maxCachedTokens ?? DEFAULT_MAX_CACHED;
  if (!Number.isInteger(maxCached) || maxCached < 1) throw new AgentInputError('maxCachedTokens', 'must be a positive integer');
  if (options.dpop !== undefined && typeof options.dpop !== 'boolean') assertDpopKeyPair(options.dpop, 'dpop');
  if (options.task !== undefined && options.task !== false) throw new AgentInputError('task', 'must be false (no task) or left out (a task per tools())');
  const dpopId = options.dpop === true ? 'agent' : options.dpop ? keyId(options.dpop) : 'none';
  const resource = options.resource instanceof URL ? options.resource.href : options.resource;

  const cached = new Map<string, ExchangedToken>();
  const inFlight = new Map<string, Promise<ExchangedToken>>();

  const remember = (key: string, token: ExchangedToken) => {
    cached.delete(key);
    if (cached.size >= maxCached) {
      const now = Date.now();
      for (const [k, t] of cached) if (t.expiresAt - refreshMs <= now) cached.delete(k);
      while (cached.size >= maxCached) cached.delete(cached.keys().next().value!);
    }
    cached.set(key, token);
  };

  return {
    async tokenFor(tool, args, call = {}) {
      if (!Object.hasOwn(tools, tool)) throw new AgentInputError('tool', `unknown tool ${JSON.stringify(tool)}; declared: ${Object.keys(tools).join(', ')}`);
      const spec = (tools as Record<string, ToolSpec<unknown>>)[tool]!;
      const argsJson = canonicalArgs(args);
      const scope = typeof spec.scope === 'string' ? spec.scope.split(' ') : [...spec.scope];
      const object = spec.object?.(args);
      if (object !== undefined && (typeof object !== 'object' || object === null || Array.isArray(object))) throw new AgentInputError(`tools.${tool}.object`, 'must return an object');
      // `tool` names the call for reviewers and the ledger; policies match on action and object.
      const detail = { type: 'tool_call', tool, action: spec.action, ...(object !== undefined ? { object } : {}), ...(spec.purpose ? { purpose: spec.purpose } : {}) };
      const intent = call.intent ?? spec.intent?.(args) ?? options.intent;
      if (intent === undefined) throw new AgentInputError('intent', `say what the call to ${tool} is for: pass { intent }, or declare tools.${tool}.intent or a default intent`);
      call.signal?.throwIfAborted();
      const subject = typeof subjectToken === 'function' ? await subjectToken() : subjectToken;

      // The call signature: what makes two calls interchangeable, the stated intent included (see tokenFor).
      const key = JSON.stringify([tool, argsJson, intent, subject, resource ?? null, options.audience ?? null, [...scope].sort(), dpopId]);
      const hit = cached.get(key);
      if (hit && Date.now() < hit.expiresAt - refreshMs) return hit;
      if (hit) cached.delete(key);
      // Each caller's signal only stops its own wait: the shared exchange serves the others.
      const running = inFlight.get(key);
      if (running) return abortable(running, call.signal);

      const request: ExchangeRequest = {
        subjectToken: subject, intent, scope, authorizationDetails: [detail],
        ...(options.subjectTokenType !== undefined ? { subjectTokenType: options.subjectTokenType } : {}),
        ...(resource !== undefined ? { resource } : {}),
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
        ...(options.actorToken !== undefined ? { actorToken: options.actorToken } : {}),
        ...(options.actorTokenType !== undefined ? { actorTokenType: options.actorTokenType } : {}),
        ...(options.dpop !== undefined ? { dpop: options.dpop } : {}),
      };
      const work = exchange(request)
        .then((token) => {
          remember(key, token);
          return token;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, work);
      return abortable(work, call.signal);
    },
    clear() {
      cached.clear();
    },
  };
}
