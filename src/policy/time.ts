import { ValidationError } from '../validate/schema.ts';
import { DAYS } from './schema.ts';

/** A compiled `when.time`: local weekday set and [start, end) minutes of the day in `tz`. */
export interface TimeWindow {
  readonly days: ReadonlySet<number> | null;
  readonly start: number | null;
  readonly end: number | null;
  readonly format: Intl.DateTimeFormat;
}
export interface TimeSpec { days?: string | string[]; hours?: string; tz?: string }

const HOURS = /^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/;
const WEEKDAY: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function formatter(tz: string, field: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-US', {
      timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    });
  } catch {
    throw new ValidationError(`${field} is not a known IANA time zone`, field);
  }
}

/** Validates and compiles a time condition; the formatter is built once here, not per request. */
export function compileTimeWindow(spec: TimeSpec, field: string): TimeWindow {
  if (spec.days === undefined && spec.hours === undefined) {
    throw new ValidationError(`${field} needs days or hours`, field);
  }
  let start: number | null = null;
  let end: number | null = null;
  if (spec.hours !== undefined) {
    const m = HOURS.exec(spec.hours);
    if (!m) throw new ValidationError(`${field}.hours must look like HH:MM-HH:MM`, `${field}.hours`);
    start = Number(m[1]) * 60 + Number(m[2]);
    end = Number(m[3] ?? m[5]) * 60 + Number(m[4] ?? m[6]);
    if (start === end) throw new ValidationError(`${field}.hours must not start and end at the same minute`, `${field}.hours`);
  }
  const days = spec.days === undefined ? null
    : new Set((Array.isArray(spec.days) ? spec.days : [spec.days]).map((d) => (DAYS as readonly string[]).indexOf(d)));
  return { days, start, end, format: formatter(spec.tz ?? 'UTC', `${field}.tz`) };
}

/**
 * Whether `now` falls inside the window, read as wall-clock time in the window's zone. A window
 * whose end is before its start runs over midnight (22:00-06:00); its days are the local day of `now`.
 */
export function inTimeWindow(w: TimeWindow, now: Date): boolean {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) return false;
  let day = -1;
  let minutes = 0;
  for (const p of w.format.formatToParts(now)) {
    if (p.type === 'weekday') day = WEEKDAY[p.value] ?? -1;
    else if (p.type === 'hour') minutes += Number(p.value) * 60;
    else if (p.type === 'minute') minutes += Number(p.value);
  }
  if (w.days && !w.days.has(day)) return false;
  if (w.start === null || w.end === null) return true;
  return w.start < w.end ? minutes >= w.start && minutes < w.end : minutes >= w.start || minutes < w.end;
}
