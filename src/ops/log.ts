import type { LogLevel } from '../config/index.ts';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// Field names whose values are credentials; they are replaced wherever they appear in a log line.
const SECRET_KEYS = /^(authorization|access_token|refresh_token|subject_token|actor_token|client_secret|client_assertion|token|secret|password|admin_token|private_jwk|dpop)$/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  /** Where each line goes (default: stdout). */
  write?: (line: string) => void;
  /**
   * Warnings and errors with the same message (the same kind of failure) are written at most once per this
   * many milliseconds; the next line of that kind, or a closing line at the end of the interval, says how
   * many were suppressed. During an outage every request fails the same way: one line per kind per interval
   * says as much as thousands. 0 turns this off.
   */
  repeatIntervalMs?: number;
}

const REPEAT_INTERVAL_MS = 10_000;

/** JSON lines on stdout; one object per event. */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const min = ORDER[level];
  const write = options.write ?? ((l: string) => process.stdout.write(l));
  const interval = options.repeatIntervalMs ?? REPEAT_INTERVAL_MS;
  const line = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) =>
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...(redact(fields ?? {}) as object), ...extra })}\n`);

  // Per level and message: when the current interval began, and how many lines it has suppressed so far.
  const repeats = new Map<string, { since: number; suppressed: number; timer?: NodeJS.Timeout }>();
  const limited = (lvl: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => {
    const key = `${lvl}\u0000${msg}`;
    const now = Date.now();
    const seen = repeats.get(key);
    if (seen && now - seen.since < interval) {
      seen.suppressed++;
      // The interval's closing line, so that the count is told even when no further line of this kind comes.
      seen.timer ??= setTimeout(() => {
        const current = repeats.get(key);
        if (current === seen && seen.suppressed > 0) {
          line(lvl, msg, undefined, { repeated: seen.suppressed, repeated_over_ms: interval });
          repeats.set(key, { since: Date.now(), suppressed: 0 });
        }
      }, seen.since + interval - now).unref();
      return;
    }
    if (seen?.timer) clearTimeout(seen.timer);
    repeats.set(key, { since: now, suppressed: 0 });
    line(lvl, msg, fields, seen && seen.suppressed > 0 ? { repeated: seen.suppressed, repeated_over_ms: now - seen.since } : {});
    // Bounded: messages are fixed strings in the code, but drop stale kinds anyway.
    if (repeats.size > 1000) for (const [k, v] of repeats) if (now - v.since >= interval && !v.timer) repeats.delete(k);
  };
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    if (interval > 0 && (lvl === 'warn' || lvl === 'error')) limited(lvl, msg, fields);
    else line(lvl, msg, fields);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
