import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { COMMON_OPTIONS } from '../../cli/options';
import { InvalidArgumentError } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import {
  COMPONENTS,
  parseSetting,
  parseSettings,
  SETTINGS,
  SettingError,
  settingNames,
  type SettingSpec,
} from '../../shared/settings';

describe('the settings table and its one parser', () => {
  it('defines each variable once per part, and each flag once per part', () => {
    for (const component of COMPONENTS) {
      const specs = settingNames(component).map((name) => SETTINGS[name] as SettingSpec<unknown>);
      const variables = specs.map((spec) => spec.variable);
      const flags = specs.flatMap((spec) => (spec.flag ? [spec.flag] : []));
      expect(new Set(variables).size).toBe(variables.length);
      expect(new Set(flags).size).toBe(flags.length);
      for (const spec of specs) expect(spec.description.length).toBeGreaterThan(10);
    }
  });

  it('reads a flag over its variable over its default, from argv and env alone', () => {
    expect(
      parseSettings('tasks-emulator', {
        argv: ['--port', '9000'],
        env: { CLOUD_TASKS_EMULATOR_PORT: '8123', CLOUD_TASKS_EMULATOR_LISTEN_HOST: '0.0.0.0' },
      }),
    ).toEqual({
      tasksEmulatorListenHost: '0.0.0.0',
      tasksEmulatorPort: 9000,
    });
    expect(parseSettings('gateway', { env: {} }).gatewayPort).toBe(8080);
    expect(parseSetting('dataDir', { env: { SPINE_DATA_DIR: '' } })).toBe('.spine');
    expect(parseSetting('dataDir', { flags: { 'data-dir': '/x' }, env: { SPINE_DATA_DIR: '/y' } })).toBe('/x');
  });

  it('refuses a bad value with one error type naming the variable, the flag on a command line, and the value', () => {
    const fromEnv = (() => {
      try {
        parseSettings('health', { env: { SPINE_HEALTH_MAX_BATCH_AGE_MS: 'soon' } });
      } catch (error) {
        return error;
      }
    })() as SettingError;
    expect(fromEnv).toBeInstanceOf(SettingError);
    expect(fromEnv).toBeInstanceOf(InvalidArgumentError);
    expect(fromEnv.code).toBe('INVALID_ARGUMENT');
    expect(fromEnv).toMatchObject({ setting: 'SPINE_HEALTH_MAX_BATCH_AGE_MS', value: 'soon' });
    expect(fromEnv.message).toBe(
      'setting SPINE_HEALTH_MAX_BATCH_AGE_MS="soon" is invalid: expected a whole number from 1',
    );

    expect(() => parseSettings('emulators', { argv: ['--tasks-port=-1'], env: {} })).toThrow(
      'invalid --tasks-port "-1" (setting SPINE_TASKS_PORT): expected a port number',
    );
    expect(() => parseSettings('storage-emulator', { argv: ['--nope'], env: {} })).toThrow(SettingError);
    expect(() => parseSettings('emulators', { argv: ['--tasks-port', '-1'], env: {} })).toThrow(
      '--tasks-port needs a value (write --tasks-port=<value>',
    );
    expect(() => parseSettings('library', { env: { SPINE_POSTGRES_URL: 'mysql://u:secret@h/db' } })).toThrow(
      'setting SPINE_POSTGRES_URL="(not shown: may hold a password)"',
    );
    expect(() => parseSettings('library', { env: { SPINE_POSTGRES_URL: 'mysql://u:secret@h/db' } })).not.toThrow(
      /secret/,
    );
    expect(() => parseSettings('functions', { env: { SPINE_FUNCTION_PORTS: '{"materialise":8090}' } })).toThrow(
      /SPINE_FUNCTION_PORTS.*not materialise/,
    );
    expect(parseSettings('functions', { env: { SPINE_FUNCTION_PORTS: '{"materialize":8090}' } }).functionPorts).toEqual(
      { materialize: 8090 },
    );
  });

  it("the CLI's common flags are the table's CLI flags", () => {
    const tableFlags = settingNames('cli').flatMap((name) =>
      (SETTINGS[name] as SettingSpec<unknown>).flag ? [(SETTINGS[name] as SettingSpec<unknown>).flag] : [],
    );
    expect(
      Object.keys(COMMON_OPTIONS)
        .filter((flag) => flag !== 'json' && flag !== 'help')
        .sort(),
    ).toEqual(tableFlags.sort());
  });
});

/** The `SPINE_*` variables a source reads: `env.X`, `env['X']`, and a variable name held in a string to look up later. */
function spineVariablesRead(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = new Set<string>();
  for (const match of code.matchAll(/\benv\s*(?:\.|\[\s*['"`])(SPINE_[A-Z0-9_]*[A-Z0-9])\b/g)) found.add(match[1]!);
  for (const match of code.matchAll(/['"`](SPINE_[A-Z0-9_]*[A-Z0-9])['"`]/g)) found.add(match[1]!);
  return [...found];
}

function sourcesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(folder, file));
}

describe('every setting a user may give is in the table', () => {
  const repoRoot = path.resolve(__dirname, '../..');
  const programFolders = ['shared', 'functions', 'cli', 'gateway', 'dashboard', 'emulators', 'scheduler'];
  const inTable = new Set(
    Object.values(SETTINGS).flatMap((spec: SettingSpec<unknown>) => [spec.variable, ...(spec.alsoFrom ?? [])]),
  );

  it('the scan finds a variable read as env.X, env["X"] or held in a string, and skips comments', () => {
    expect(
      spineVariablesRead(
        [
          'const a = process.env.SPINE_ONE;',
          "const b = env['SPINE_TWO'];",
          "const NAME = 'SPINE_THREE';",
          '// process.env.SPINE_IN_A_COMMENT',
          '/** SPINE_IN_A_DOC */',
          'const c = `setting SPINE_IN_A_MESSAGE is bad`;',
        ].join('\n'),
      ).sort(),
    ).toEqual(['SPINE_ONE', 'SPINE_THREE', 'SPINE_TWO']);
  });

  it('no program reads a SPINE_* variable the table does not define', () => {
    const outside = programFolders.flatMap((folder) =>
      sourcesUnder(path.join(repoRoot, folder)).flatMap((file) =>
        spineVariablesRead(readFileSync(file, 'utf8'))
          .filter((variable) => !inTable.has(variable))
          .map((variable) => `${path.relative(repoRoot, file)}: ${variable}`),
      ),
    );
    expect(outside).toEqual([]);
  });

  it('the settings that were read on the side are in the table, each refusing a bad value by name', () => {
    const refusal = (read: () => unknown) => {
      try {
        read();
      } catch (error) {
        return error as SettingError;
      }
      throw new Error('no error');
    };
    expect(refusal(() => parseSetting('logLevel', { env: { SPINE_LOG_LEVEL: 'loud' } }))).toMatchObject({
      setting: 'SPINE_LOG_LEVEL',
      value: 'loud',
      code: 'INVALID_ARGUMENT',
    });
    expect(parseSetting('logLevel', { env: { SPINE_LOG_LEVEL: 'warning' } })).toBe('WARNING');
    expect(refusal(() => parseSetting('debug', { env: { SPINE_DEBUG: 'maybe' } }))).toBeInstanceOf(SettingError);
    expect(parseSetting('debug', { env: { SPINE_DEBUG: '1' } })).toBe(true);
    expect(parseSetting('debug', { env: {} })).toBe(false);

    const portBase = refusal(() => parseSettings('dev', { argv: ['--port-base', '80'], env: {} }));
    expect(portBase.message).toBe(
      'invalid --port-base "80" (setting SPINE_PORT_BASE): expected 0 (any free ports) or a whole number from 1024 to 65525',
    );
    expect(refusal(() => parseSettings('dev', { env: { SPINE_PORT_BASE: '8085.5' } }))).toMatchObject({
      setting: 'SPINE_PORT_BASE',
      value: '8085.5',
    });
    expect(
      parseSettings('dev', {
        argv: ['--postgres-url', 'postgresql://u@h/db', '--project', 'my-project'],
        env: { SPINE_PORT_BASE: '0', SPINE_DATA_DIR: '/tmp/x', SPINE_TOPIC_PREFIX: '' },
      }),
    ).toEqual({
      projectId: 'my-project',
      topicPrefix: '',
      postgresUrl: 'postgresql://u@h/db',
      dataDir: '/tmp/x',
      portBase: 0,
      dashboardToken: undefined,
      pubsubEmulatorLauncher: undefined,
    });
    expect(parseSettings('dev', { env: {} }).portBase).toBe(8085);

    // A token is a credential: the error names the variable but not the value.
    const token = refusal(() => parseSetting('dashboardToken', { env: { SPINE_DASHBOARD_TOKEN: 'short' } }));
    expect(token).toMatchObject({ setting: 'SPINE_DASHBOARD_TOKEN' });
    expect(token.message).not.toContain('short');
  });

  it('a bad SPINE_LOG_LEVEL stops a program where its logger is made', () => {
    const before = process.env.SPINE_LOG_LEVEL;
    process.env.SPINE_LOG_LEVEL = 'chatty';
    try {
      expect(() => createLogger('test')).toThrow('setting SPINE_LOG_LEVEL="chatty" is invalid');
    } finally {
      if (before === undefined) delete process.env.SPINE_LOG_LEVEL;
      else process.env.SPINE_LOG_LEVEL = before;
    }
    expect(() => createLogger('test')).not.toThrow();
  });
});
