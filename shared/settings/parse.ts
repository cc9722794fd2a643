/**
 * The one settings parser: a part's settings from argv and env, each from its flag, else its
 * environment variable, else its default, checked by its parser. Pure (no process globals), so
 * tests inject both. Every bad value is a `SettingError` naming the variable (and the flag on a
 * command line) and the value.
 */
import { parseArgs } from 'node:util';
import { ExpectedValue, SettingError } from './error';
import { SETTINGS, type Component, type SettingName, type SettingSpec, type SettingsTable } from './table';

export type Env = Readonly<Record<string, string | undefined>>;

export interface SettingsSource {
  env: Env;
  /** A command line holding only this part's flags; when given, errors name the flag. */
  argv?: readonly string[];
  /** Flags a command line parser already read (name without `--` → value); when given, errors name the flag. */
  flags?: Readonly<Record<string, string | boolean | undefined>>;
}

type ValueOf<S> = S extends { parse: (raw: string) => infer T }
  ? S extends { default: unknown }
    ? T
    : T | undefined
  : never;

/** The settings of one part, by name, typed from the table. */
export type SettingsOf<C extends Component> = {
  -readonly [K in keyof SettingsTable as C extends SettingsTable[K]['components'][number] ? K : never]: ValueOf<
    SettingsTable[K]
  >;
};

/** The names of a part's settings, in the table's order (the order they are read). */
export function settingNames(component: Component): SettingName[] {
  return (Object.keys(SETTINGS) as SettingName[]).filter((name) =>
    (SETTINGS[name].components as readonly Component[]).includes(component),
  );
}

function spec(name: SettingName): SettingSpec<unknown> {
  return SETTINGS[name] as SettingSpec<unknown>;
}

/** The flags of a part, as `node:util` parseArgs options. */
export function flagOptions(component: Component): Record<string, { type: 'string' | 'boolean' }> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const name of settingNames(component)) {
    const { flag, flagIsSwitch } = spec(name);
    if (flag) options[flag] = { type: flagIsSwitch ? 'boolean' : 'string' };
  }
  return options;
}

/**
 * Reads argv against the part's flags (plus `extra` ones such as `help`); an unknown option or a
 * missing value is a SettingError that says which.
 */
export function readFlags(
  component: Component,
  argv: readonly string[],
  extra: Record<string, { type: 'string' | 'boolean'; short?: string }> = {},
): Record<string, string | boolean | undefined> {
  const options = { ...flagOptions(component), ...extra };
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const option = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? argv.join(' ');
    const known = Object.keys(options).map((flag) => `--${flag}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/does not take an argument/.test(message))
        throw new SettingError('argv', option, 'no value', option, `${option} takes no value`);
      const dash = /ambiguous/.test(message) ? ` (write ${option}=<value> for a value starting with "-")` : '';
      throw new SettingError('argv', option, 'a value', option, `${option} needs a value${dash}`);
    }
    const what = code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ? (/'([^']*)'/.exec(message)?.[1] ?? option) : option;
    throw new SettingError(
      'argv',
      what,
      known.join(', '),
      undefined,
      `unknown argument "${what}" (expected ${known.join(' or ')})`,
    );
  }
}

/** The raw text of a setting: its flag, else the first of its variables that is set (empty = unset unless `emptyIsValue`). */
function rawValue(
  setting: SettingSpec<unknown>,
  flags: SettingsSource['flags'],
  env: Env,
): { raw: string; variable: string; fromFlag: boolean } | undefined {
  const flagValue = setting.flag ? flags?.[setting.flag] : undefined;
  if (flagValue !== undefined && flagValue !== false)
    return { raw: flagValue === true ? 'true' : flagValue, variable: setting.variable, fromFlag: true };
  for (const variable of [setting.variable, ...(setting.alsoFrom ?? [])]) {
    const value = env[variable];
    if (value === undefined || (value === '' && !setting.emptyIsValue)) continue;
    return { raw: value, variable, fromFlag: false };
  }
  return undefined;
}

function read(
  name: SettingName,
  source: SettingsSource,
  flags: SettingsSource['flags'],
  earlier: Record<string, unknown>,
): unknown {
  const setting = spec(name);
  const onCommandLine = flags !== undefined;
  const given = rawValue(setting, flags, source.env);
  if (!given) {
    if (setting.requiredWhen?.test(earlier))
      throw new SettingError(
        setting.variable,
        '',
        setting.requiredWhen.expected,
        onCommandLine ? flagName(setting) : undefined,
      );
    const fallback = setting.default;
    return typeof fallback === 'function'
      ? (fallback as (earlier: Record<string, unknown>) => unknown)(earlier)
      : fallback;
  }
  try {
    return setting.parse(given.raw);
  } catch (error) {
    if (!(error instanceof ExpectedValue)) throw error;
    const shown = setting.secret ? '(not shown: may hold a password)' : given.raw;
    throw new SettingError(given.variable, shown, error.expected, onCommandLine ? flagName(setting) : undefined);
  }
}

function flagName(setting: SettingSpec<unknown>): string | undefined {
  return setting.flag ? `--${setting.flag}` : undefined;
}

/**
 * The settings of `component`, from `source`: flags (argv or already-read flags) win over the
 * environment, which wins over the defaults. Throws the first SettingError.
 */
export function parseSettings<C extends Component>(component: C, source: SettingsSource): SettingsOf<C> {
  const flags = source.argv ? readFlags(component, source.argv) : source.flags;
  const values: Record<string, unknown> = {};
  for (const name of settingNames(component)) values[name] = read(name, source, flags, values);
  return values as SettingsOf<C>;
}

/** One setting alone (for a value needed before the rest can be read, such as the CLI's data dir). */
export function parseSetting<N extends SettingName>(name: N, source: SettingsSource): ValueOf<SettingsTable[N]> {
  return read(
    name,
    source,
    source.argv ? readFlags(SETTINGS[name].components[0] as Component, source.argv) : source.flags,
    {},
  ) as ValueOf<SettingsTable[N]>;
}
