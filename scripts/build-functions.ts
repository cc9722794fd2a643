/**
 * Packages the mesh's functions for Cloud Functions (2nd gen, Node runtime): one esbuild bundle of
 * `functions/index.ts`, which registers every target, so each deployed function picks its own
 * with `entry_point`. The Functions Framework stays external: the runtime's launcher serves the
 * functions registered with its own copy, so the bundle must register with that same copy.
 *
 *   npm run build:functions [-- --out-dir DIR] [--archive FILE]
 *
 * Writes DIR (default dist/functions) with index.js and package.json, and FILE (default
 * dist/functions.zip), the archive Terraform uploads. The archive is byte-for-byte the same for the
 * same sources, so its MD5 (part of the uploaded object's name) changes only when the code does.
 */
import { build } from 'esbuild';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ZipFile } from 'yazl';

const ROOT = path.resolve(__dirname, '..');
const ENTRY = path.join(ROOT, 'functions', 'index.ts');
/** Loaded from the deployment's node_modules, installed by the buildpack from package.json. */
const EXTERNAL_PACKAGES = ['@google-cloud/functions-framework', '@google-cloud/tasks'];
/** The oldest Node the bundle runs on: Cloud Functions' nodejs22 runtime. */
const NODE_TARGET = 'node22';
/** Fixed timestamp of every archive entry, so equal contents give an equal archive. */
const ARCHIVE_MTIME = new Date('2000-01-01T00:00:00Z');

export interface BuildFunctionsOptions {
  outDir?: string;
  archive?: string;
}

export interface BuildFunctionsResult {
  outDir: string;
  archive: string;
  /** Names of the files in the archive. */
  files: string[];
  bytes: number;
}

async function installedVersion(packageName: string): Promise<string> {
  // Read from node_modules directly: packages' `exports` may not expose their package.json.
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'node_modules', packageName, 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

async function deploymentManifest(): Promise<string> {
  const project = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    license?: string;
  };
  const dependencies: Record<string, string> = {};
  // Exact versions: the deployment runs what the tests ran.
  for (const name of EXTERNAL_PACKAGES) dependencies[name] = await installedVersion(name);
  const manifest = {
    name: 'super-spine-functions',
    version: project.version,
    private: true,
    ...(project.license ? { license: project.license } : {}),
    main: 'index.js',
    engines: { node: '>=22' },
    dependencies,
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

function writeArchive(archive: string, entries: Array<{ name: string; data: Buffer }>): Promise<number> {
  return new Promise((resolve, reject) => {
    const zip = new ZipFile();
    for (const { name, data } of entries) zip.addBuffer(data, name, { mtime: ARCHIVE_MTIME, mode: 0o100644 });
    const out = createWriteStream(archive);
    let bytes = 0;
    zip.outputStream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    zip.outputStream.on('error', reject);
    out.on('error', reject);
    out.on('close', () => resolve(bytes));
    zip.outputStream.pipe(out);
    zip.end();
  });
}

export async function buildFunctions(options: BuildFunctionsOptions = {}): Promise<BuildFunctionsResult> {
  const outDir = path.resolve(options.outDir ?? path.join(ROOT, 'dist', 'functions'));
  const archive = path.resolve(options.archive ?? `${outDir}.zip`);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await mkdir(path.dirname(archive), { recursive: true });

  const result = await build({
    entryPoints: [ENTRY],
    outfile: path.join(outDir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: NODE_TARGET,
    format: 'cjs',
    external: EXTERNAL_PACKAGES,
    tsconfig: path.join(ROOT, 'tsconfig.json'),
    // Class and function names stay readable in stack traces and logs.
    keepNames: true,
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  const bundled = Object.keys(result.metafile.outputs).map((output) =>
    path.relative(outDir, path.resolve(ROOT, output)),
  );
  const manifest = await deploymentManifest();
  await writeFile(path.join(outDir, 'package.json'), manifest);

  const names = [...bundled, 'package.json'].sort();
  const entries = await Promise.all(
    names.map(async (name) => ({ name, data: await readFile(path.join(outDir, name)) })),
  );
  const bytes = await writeArchive(archive, entries);
  return { outDir, archive, files: names, bytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'out-dir': { type: 'string' }, archive: { type: 'string' } } });
  const started = Date.now();
  const built = await buildFunctions({
    ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}),
    ...(values.archive ? { archive: values.archive } : {}),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `functions packaged in ${seconds} s: ${path.relative(process.cwd(), built.archive)} (${(built.bytes / 1024).toFixed(0)} KiB; ${built.files.join(', ')})\n`,
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`build:functions failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
