/**
 * Parsers of setting values: each takes the text given and returns the value, or throws
 * `expected(...)` saying what it should have been. Shared by every entry of the table.
 */
import { everyMinutesCron } from '../interval-schedule';
import { expected } from './error';

export type ValueParser<T> = (raw: string) => T;

/** Any text. */
export const text: ValueParser<string> = (raw) => raw;

/** A whole number within [min, max]; `unit` names what it counts ("bytes"). */
export function wholeNumber(min: number, max: number, unit = ''): ValueParser<number> {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min || value > max)
      expected(`a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}`);
    return value;
  };
}

/** A whole number written as digits only (no sign, exponent or fraction), from `min` (to `max`). */
export function digits(min: number, max?: number): ValueParser<number> {
  return (raw) => {
    const value = Number(raw);
    if (
      !/^\d+$/.test(raw.trim()) ||
      !Number.isSafeInteger(value) ||
      value < min ||
      (max !== undefined && value > max)
    ) {
      expected(`a whole number from ${min}${max === undefined ? '' : ` to ${max}`}`);
    }
    return value;
  };
}

/** A positive whole number; `description` is what the error says it should be. */
export function positive(description = 'a positive whole number of milliseconds'): ValueParser<number> {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value <= 0) expected(description);
    return value;
  };
}

/** A TCP port, 0 meaning any free one. */
export function port(description = 'a port number from 0 (any free port) to 65535'): ValueParser<number> {
  return (raw) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value > 65_535) expected(description);
    return value;
  };
}

/** The interval flush is a Cloud Scheduler job: whole minutes that divide an hour or a day. */
export const wholeMinutesMs: ValueParser<number> = (raw) => {
  const value = positive()(raw);
  if (everyMinutesCron(value / 60_000) === undefined)
    expected("whole minutes dividing an hour or a day (60000, 120000, …, 3600000, …), the scheduler's granularity");
  return value;
};

/** `true` or `false`. */
export const trueOrFalse: ValueParser<boolean> = (raw) => {
  if (raw !== 'true' && raw !== 'false') expected('true | false');
  return raw === 'true';
};

/** `1`, `true`, `yes`, `on` (any case) are true; anything else false. */
export const truthy: ValueParser<boolean> = (raw) => ['1', 'true', 'yes', 'on'].includes(raw.toLowerCase());

/** `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off` (any case); anything else is refused. */
export const onOrOff: ValueParser<boolean> = (raw) => {
  const word = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(word)) return true;
  if (['0', 'false', 'no', 'off'].includes(word)) return false;
  return expected('1, true, yes, on or 0, false, no, off');
};

/** One of the given words. */
export function oneOf<const T extends string>(choices: readonly T[]): ValueParser<T> {
  return (raw) => {
    if (!choices.includes(raw as T)) expected(choices.join(' | '));
    return raw as T;
  };
}

/** Text matching a pattern. */
export function matching(pattern: RegExp, description: string): ValueParser<string> {
  return (raw) => {
    if (!pattern.test(raw)) expected(description);
    return raw;
  };
}

/** A JSON object whose values each pass `value` (which throws `expected` naming the key). */
export function jsonObject<T>(
  description: string,
  value: (item: unknown, key: string) => T = (item) => item as T,
): ValueParser<Record<string, T>> {
  return (raw) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      expected(description);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) expected(description);
    const result: Record<string, T> = {};
    for (const [key, item] of Object.entries(parsed as Record<string, unknown>)) result[key] = value(item, key);
    return result;
  };
}

/** Comma-separated items, trimmed, empty ones dropped, each checked by `item`. */
export function commaList(item: (entry: string) => boolean, description: string): ValueParser<string[]> {
  return (raw) => {
    const entries = raw
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    if (!entries.every(item)) expected(description);
    return entries;
  };
}
