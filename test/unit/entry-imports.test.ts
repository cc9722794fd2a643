import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runNodeWithTsx } from '../helpers/node-process';

const CLOUD_PACKAGES = [
  '@google-cloud/pubsub',
  '@google-cloud/storage',
  '@google-cloud/tasks',
  'pg',
  '@grpc/grpc-js',
  'google-auth-library',
];
const SUBPATHS = ['memory', 'filesystem', 'gcs', 'postgres', 'mesh', 'remote'];

interface Loaded {
  packages: string[];
  modules: number;
}

/** Imports `specifier` in a fresh Node process and lists the npm packages that pulled in, and how many modules. */
async function load(specifier: string): Promise<Loaded> {
  const run = await runNodeWithTsx(['test/helpers/print-loaded-packages.ts', specifier]);
  if (run.code !== 0) throw new Error(`importing ${specifier} failed (exit ${run.code}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as Loaded;
}

const packagesLoadedBy = async (specifier: string) => (await load(specifier)).packages;

const cloudPackagesIn = (packages: string[]) => CLOUD_PACKAGES.filter((name) => packages.includes(name));

/**
 * The root entry loaded 700 modules (every SDK) before it was narrowed to the contract, the
 * embedded backends and createStorage; it loads about 140 now (most of them zod's).
 */
const ROOT_MODULE_BOUND = 200;

describe('the root and the embedded entries load no cloud SDK', () => {
  it.each(['super-spine', 'super-spine/memory', 'super-spine/filesystem', 'super-spine/remote'])(
    '%s loads none of the cloud SDKs',
    async (specifier) => {
      expect(cloudPackagesIn(await packagesLoadedBy(specifier))).toEqual([]);
    },
  );

  it(`the root entry super-spine loads at most ${ROOT_MODULE_BOUND} modules`, async () => {
    const { modules } = await load('super-spine');
    expect(modules).toBeGreaterThan(20);
    expect(modules).toBeLessThanOrEqual(ROOT_MODULE_BOUND);
  });

  // The checks above are only worth something if the same probe sees the SDKs the cloud entries load.
  it('the cloud entries super-spine/mesh and super-spine/postgres do load them', async () => {
    expect(cloudPackagesIn(await packagesLoadedBy('super-spine/mesh'))).toEqual(
      expect.arrayContaining(['@google-cloud/pubsub', '@google-cloud/storage']),
    );
    expect(cloudPackagesIn(await packagesLoadedBy('super-spine/postgres'))).toEqual(['pg']);
  });

  it('createStorage from the root loads the SDK of the backend it is asked for, and only then', async () => {
    const probe = [
      "const { createStorage } = require('super-spine');",
      "const before = Object.keys(require.cache).some((file) => file.includes('/node_modules/pg/'));",
      "createStorage({ type: 'postgres', options: { connectionString: 'postgresql://u@127.0.0.1:1/db' } });",
      "const after = Object.keys(require.cache).some((file) => file.includes('/node_modules/pg/'));",
      'process.stdout.write(JSON.stringify({ before, after }));',
    ].join('\n');
    const run = await runNodeWithTsx(['-e', probe]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ before: false, after: true });
  });

  it('the embedded entries export their backends and the contract they need', async () => {
    const memory = await import('super-spine/memory');
    const filesystem = await import('super-spine/filesystem');
    expect(new memory.MemoryStorage()).toBeInstanceOf(memory.DocumentStorage);
    expect(typeof filesystem.FileSystemStorage).toBe('function');
    expect(memory.InvalidIdError).toBe((await import('super-spine')).InvalidIdError);
    expect(memory.growSet([1]).values).toEqual(new Set([1]));
  });

  it('the cloud entries export their backends', async () => {
    expect(typeof (await import('super-spine/gcs')).GcsStorage).toBe('function');
    expect(typeof (await import('super-spine/postgres')).PostgresStorage).toBe('function');
    expect(typeof (await import('super-spine/mesh')).SpineStorage).toBe('function');
    expect(typeof (await import('super-spine/remote')).RemoteStorage).toBe('function');
  });
});

describe('the package subpaths', () => {
  const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, { types: string; default: string }>;
  };
  const tsconfig = JSON.parse(readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { paths: Record<string, string[]> };
  };
  const jestConfig = require(path.join(REPO_ROOT, 'jest.config.js')) as { moduleNameMapper: Record<string, string> };

  // One source per subpath: the built file in package.json, the source in tsconfig and jest.
  it.each(SUBPATHS)('./%s points at the same module in package.json, tsconfig.json and jest.config.js', (subpath) => {
    const source = `shared/entry/${subpath}.ts`;
    expect(packageJson.exports[`./${subpath}`]).toEqual({
      types: `./dist/shared/entry/${subpath}.d.ts`,
      default: `./dist/shared/entry/${subpath}.js`,
    });
    expect(tsconfig.compilerOptions.paths[`super-spine/${subpath}`]).toEqual([source]);
    expect(jestConfig.moduleNameMapper[`^super-spine/${subpath}$`]).toBe(`<rootDir>/${source}`);
  });
});
