import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yauzl from 'yauzl';
import { FUNCTION_TARGETS } from '../../functions/targets';
import { buildFunctions } from '../../scripts/build-functions';

const ROOT = path.resolve(__dirname, '../..');

async function readArchive(archive: string): Promise<Map<string, Buffer>> {
  const zip = await promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)(archive, { lazyEntries: true });
  const files = new Map<string, Buffer>();
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      zip.openReadStream(entry, (error, stream) => {
        if (error) return reject(error);
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          files.set(entry.fileName, Buffer.concat(chunks));
          zip.readEntry();
        });
        stream.on('error', reject);
      });
    });
    zip.on('end', resolve);
    zip.on('error', reject);
    zip.readEntry();
  });
  return files;
}

describe('npm run build:functions', () => {
  let dir: string;
  let files: Map<string, Buffer>;
  let manifest: { main: string; dependencies: Record<string, string> };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spine-functions-'));
    const built = await buildFunctions({ outDir: path.join(dir, 'out'), archive: path.join(dir, 'functions.zip') });
    files = await readArchive(built.archive);
    manifest = JSON.parse(files.get('package.json')!.toString('utf8'));
  }, 30_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the archive holds the bundle and a manifest whose dependencies are only the external packages', () => {
    expect([...files.keys()].sort()).toEqual(['index.js', 'index.js.LEGAL.txt', 'package.json']);
    expect(manifest.main).toBe('index.js');
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@google-cloud/functions-framework',
      '@google-cloud/tasks',
    ]);
  });

  test('nothing from test/ or bench/ is in it', () => {
    const bundle = files.get('index.js')!.toString('utf8');
    // esbuild marks every bundled module with its source path.
    const sources = [...bundle.matchAll(/^\/\/ ((?:[\w@.-]+\/)*[\w@.-]+\.[cm]?[jt]s)$/gm)].map((match) => match[1]!);
    expect(sources.length).toBeGreaterThan(50);
    expect(
      sources.filter(
        (source) =>
          /^(test|bench)\//.test(source) || /\.test\.[jt]s$/.test(source) || /(^|\/)jest[\w-]*\//.test(source),
      ),
    ).toEqual([]);
    expect(sources).toEqual(
      expect.arrayContaining(['functions/index.ts', 'functions/runtime.ts', 'shared/topology.ts']),
    );
  });

  test('unpacked with only its external packages installed, it registers every target and builds its clients', async () => {
    const unpacked = path.join(dir, 'unpacked');
    await mkdir(path.join(unpacked, 'node_modules', '@google-cloud'), { recursive: true });
    for (const [name, data] of files) await writeFile(path.join(unpacked, name), data);
    // What the buildpack would install from package.json, and nothing else.
    for (const name of Object.keys(manifest.dependencies))
      await symlink(path.join(ROOT, 'node_modules', name), path.join(unpacked, 'node_modules', name), 'dir');
    const probe = `
      const { getFunction } = require('@google-cloud/functions-framework/testing');
      require('./index.js');
      const registered = ${JSON.stringify(FUNCTION_TARGETS)}.filter((name) => typeof getFunction(name) === 'function');
      // A bad flush request is refused after the runtime (Pub/Sub, Storage, Tasks clients) is built.
      const res = { status(code) { this.code = code; return this; }, json(body) { console.log(JSON.stringify({ registered, status: this.code, body })); process.exit(0); } };
      getFunction('persist')({ body: { window: 'soon' }, get: () => undefined }, res);
    `;
    await writeFile(path.join(unpacked, 'probe.js'), probe);
    const { stdout } = await promisify(execFile)(process.execPath, ['probe.js'], {
      cwd: unpacked,
      env: {
        PATH: process.env.PATH ?? '',
        METADATA_SERVER_DETECTION: 'none',
        SPINE_LOG_LEVEL: 'SILENT',
        GOOGLE_CLOUD_PROJECT: 'spine-archive-test',
        PUBSUB_EMULATOR_HOST: '127.0.0.1:9',
        STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9',
        CLOUD_TASKS_EMULATOR_HOST: '127.0.0.1:9',
        SPINE_FUNCTION_URLS: JSON.stringify({
          persist: 'http://127.0.0.1:9/persist',
          snapshot: 'http://127.0.0.1:9/snapshot',
        }),
      },
      timeout: 20_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result).toEqual({
      registered: [...FUNCTION_TARGETS],
      status: 400,
      body: { error: 'flush window must be a whole number' },
    });
  });

  test('the same sources give the same archive, so Terraform redeploys only on change', async () => {
    const again = await buildFunctions({ outDir: path.join(dir, 'again'), archive: path.join(dir, 'again.zip') });
    const second = await readArchive(again.archive);
    expect([...second.keys()]).toEqual([...files.keys()]);
    for (const [name, data] of files) expect(second.get(name)!.equals(data)).toBe(true);
  }, 30_000);
});
