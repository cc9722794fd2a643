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

/** Imports `specifier` in a fresh Node process and lists the npm packages that pulled in. */
async function packagesLoadedBy(specifier: string): Promise<string[]> {
  const run = await runNodeWithTsx(['test/helpers/print-loaded-packages.ts', specifier]);
  if (run.code !== 0) throw new Error(`importing ${specifier} failed (exit ${run.code}):\n${run.stderr}`);
  return (JSON.parse(run.stdout) as { packages: string[] }).packages;
}

const cloudPackagesIn = (packages: string[]) => CLOUD_PACKAGES.filter((name) => packages.includes(name));

describe('embedded entries load no cloud SDK', () => {
  it.each(['super-spine/memory', 'super-spine/filesystem', 'super-spine/remote'])(
    '%s loads none of the cloud SDKs',
    async (specifier) => {
      expect(cloudPackagesIn(await packagesLoadedBy(specifier))).toEqual([]);
    },
  );

  // The check above is only worth something if the same probe sees the SDKs the root entry loads.
  it('the root entry super-spine does load them', async () => {
    expect(cloudPackagesIn(await packagesLoadedBy('super-spine'))).toEqual(
      expect.arrayContaining(['@google-cloud/pubsub', '@google-cloud/storage', 'pg']),
    );
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
