/**
 * `npm run api:check` / `npm run api:update`: the public API of each package entry point, as API
 * Extractor reports it, kept in `etc/<entry>.api.md` so a change to what users can import is a
 * reviewed diff. Builds the declarations (tsconfig.build.json, declarations only) into
 * `dist/api-declarations`, then reports every entry from one TypeScript program. `--update`
 * rewrites the reports; without it a report that differs fails the run (and `npm run lint`).
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  CompilerState,
  Extractor,
  ExtractorConfig,
  ExtractorLogLevel,
  type ExtractorMessage,
  type IConfigFile,
} from '@microsoft/api-extractor';

const repoRoot = path.resolve(__dirname, '..');
const declarations = path.join(repoRoot, 'dist', 'api-declarations');
const reportFolder = path.join(repoRoot, 'etc');
const update = process.argv.includes('--update');

/** Report name → the entry's declaration file, from package.json `exports` (one source for both). */
async function entryPoints(): Promise<Array<{ name: string; declaration: string }>> {
  const { exports } = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
    exports: Record<string, { types: string }>;
  };
  return Object.entries(exports).map(([subpath, { types }]) => ({
    name: subpath === '.' ? 'super-spine' : `super-spine-${subpath.slice(2)}`,
    declaration: path.join(declarations, path.relative('dist', types)),
  }));
}

function configFor(name: string, declaration: string): IConfigFile {
  return {
    projectFolder: repoRoot,
    mainEntryPointFilePath: declaration,
    compiler: {
      overrideTsconfig: {
        compilerOptions: { target: 'ES2022', lib: ['ES2023'], module: 'commonjs', types: ['node'], skipLibCheck: true },
        files: [declaration],
      },
      skipLibCheck: true,
    },
    apiReport: {
      enabled: true,
      reportFileName: `${name}.api.md`,
      reportFolder,
      reportTempFolder: path.join(declarations, 'reports'),
    },
    docModel: { enabled: false },
    dtsRollup: { enabled: false },
    tsdocMetadata: { enabled: false },
    messages: {
      // Untagged exports are public; the TSDoc style of the comments is not checked here.
      extractorMessageReporting: {
        'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
        'ae-forgotten-export': { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
        'ae-internal-missing-underscore': { logLevel: ExtractorLogLevel.None },
        'ae-undocumented': { logLevel: ExtractorLogLevel.None },
        default: { logLevel: ExtractorLogLevel.Warning },
      },
      tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
    },
  };
}

async function main(): Promise<number> {
  const started = performance.now();
  rmSync(declarations, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--emitDeclarationOnly',
      '--declaration',
      '--declarationMap',
      'false',
      '--sourceMap',
      'false',
      '--outDir',
      declarations,
    ],
    { cwd: repoRoot, stdio: 'inherit' },
  );
  const entries = await entryPoints();
  const configs = entries.map(({ name, declaration }) =>
    ExtractorConfig.prepare({
      configObject: configFor(name, declaration),
      configObjectFullPath: path.join(repoRoot, 'api-extractor.json'),
      packageJsonFullPath: path.join(repoRoot, 'package.json'),
    }),
  );
  // One TypeScript program for every entry: the build of each would cost as much as the declarations.
  const compilerState = CompilerState.create(configs[0]!, {
    additionalEntryPoints: entries.map(({ declaration }) => declaration),
  });
  const changed: string[] = [];
  let problems = 0;
  for (const [index, config] of configs.entries()) {
    const result = Extractor.invoke(config, {
      localBuild: update,
      compilerState,
      messageCallback: (message: ExtractorMessage) => {
        // API Extractor's own notes (compiler version, "report changed") are said once, below, for every entry.
        if (message.messageId.startsWith('console-')) message.handled = true;
        else if (message.logLevel === ExtractorLogLevel.Error || message.logLevel === ExtractorLogLevel.Warning)
          problems += 1;
      },
    });
    if (result.apiReportChanged) changed.push(entries[index]!.name);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (problems > 0) {
    process.stderr.write(`api: ${problems} errors or warnings from API Extractor (above)\n`);
    return 1;
  }
  if (changed.length === 0) {
    process.stdout.write(`api: the ${entries.length} reports in etc/ match the public API (${seconds} s)\n`);
    return 0;
  }
  if (update) {
    process.stdout.write(`api: rewrote etc/ reports for ${changed.join(', ')} (${seconds} s)\n`);
    return 0;
  }
  process.stderr.write(
    `api: the public API of ${changed.join(', ')} differs from its report in etc/; review the change and run \`npm run api:update\`\n`,
  );
  return 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`api: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
