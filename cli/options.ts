/** Command-line parsing shared by every command: the common options, then the command's own. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SETTINGS, settingNames, type SettingSpec } from '../shared/settings';
import { UsageError } from './errors';

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes (flag wins over environment, which wins over the default). */
export const COMMON_OPTIONS = {
  'data-dir': { type: 'string' },
  project: { type: 'string' },
  prefix: { type: 'string' },
  bucket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

/** The settings the CLI takes as flags, from the settings table, in its order. */
const FLAGGED_SETTINGS = settingNames('cli')
  .map((name) => SETTINGS[name] as SettingSpec<unknown>)
  .filter((setting) => setting.flag);

export const COMMON_USAGE = `common options (flag, then environment variable, then <data-dir>/mesh.env, then default):
${FLAGGED_SETTINGS.map(({ flag, flagArgument, variable, description }) => `  ${`--${flag} ${flagArgument ?? ''}`.padEnd(16)} ${variable.padEnd(22)} ${description}`).join('\n')}
  --json           machine-readable output (one JSON document, or one per line for watch)
  -h, --help       this help`;

export interface CommonFlags {
  dataDir?: string;
  project?: string;
  prefix?: string;
  bucket?: string;
  json: boolean;
}

export interface CommandSpec<O extends OptionSpecs> {
  usage: string;
  options?: O;
  /** Names of the positional arguments, `?` marking optional ones (`group?`), `...` a list. */
  positionals: readonly string[];
}

type ParsedValues<O extends OptionSpecs> = ReturnType<
  typeof parseArgs<{ options: O & typeof COMMON_OPTIONS; allowPositionals: true; strict: true }>
>['values'];

export interface ParsedCommand<O extends OptionSpecs> {
  values: ParsedValues<O>;
  positionals: string[];
  common: CommonFlags;
  /** True when --help was given: the command prints its usage and does nothing else. */
  help: boolean;
}

/**
 * Parses argv for one command; a wrong number of positionals or an unknown option is a
 * `UsageError` that quotes the command's usage line.
 */
export function parseCommand<O extends OptionSpecs>(argv: readonly string[], spec: CommandSpec<O>): ParsedCommand<O> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...spec.options } as O & typeof COMMON_OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (${firstLine(spec.usage)})`);
  }
  const values = parsed.values as Record<string, unknown>;
  const common: CommonFlags = {
    json: values.json === true,
    ...(typeof values['data-dir'] === 'string' ? { dataDir: values['data-dir'] } : {}),
    ...(typeof values.project === 'string' ? { project: values.project } : {}),
    ...(typeof values.prefix === 'string' ? { prefix: values.prefix } : {}),
    ...(typeof values.bucket === 'string' ? { bucket: values.bucket } : {}),
  };
  const help = values.help === true;
  if (!help) {
    const required = spec.positionals.filter((name) => !name.endsWith('?') && !name.endsWith('...')).length;
    const unbounded = spec.positionals.some((name) => name.endsWith('...'));
    const count = parsed.positionals.length;
    if (count < required) {
      const missing = spec.positionals.slice(count).filter((name) => !name.endsWith('?'));
      throw new UsageError(`missing ${missing.map((m) => `<${m}>`).join(' ')} (${firstLine(spec.usage)})`);
    }
    if (!unbounded && count > spec.positionals.length) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(parsed.positionals[spec.positionals.length])} (${firstLine(spec.usage)})`,
      );
    }
  }
  return { values: parsed.values as ParsedValues<O>, positionals: parsed.positionals, common, help };
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}

/** `--timeout MS`: a positive whole number of milliseconds, or undefined when not given. */
export function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0)
    throw new UsageError(`--timeout must be a positive whole number of milliseconds, not ${JSON.stringify(raw)}`);
  return value;
}
