import { COMMON_OPTIONS } from '../../cli/options';
import { InvalidArgumentError } from '../../shared/errors';
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
