/** The `spine` command line as a real process (bin/spine.js, as `npx spine` runs it), for the CLI tests. */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SPINE = path.resolve(__dirname, '../../bin/spine.js');

const MESH_VARIABLES = /^(PUBSUB_|STORAGE_EMULATOR|CLOUD_TASKS_EMULATOR|GOOGLE_CLOUD_PROJECT|GCLOUD_PROJECT|SPINE_)/;

/** The user's environment without any mesh settings, so the CLI must find them in `dataDir`'s mesh.env. */
export function cliEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (MESH_VARIABLES.test(key)) delete env[key];
  return { ...env, SPINE_DATA_DIR: dataDir, ...extra };
}

/** Writes a mesh's variables to `<dataDir>/mesh.env`, as `spine dev` does. */
export async function writeMeshEnv(dataDir: string, env: Readonly<Record<string, string>>): Promise<void> {
  const lines = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  await writeFile(path.join(dataDir, 'mesh.env'), lines.join('\n') + '\n');
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runSpine(args: string[], options: { env: NodeJS.ProcessEnv; input?: string }): Promise<CliResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [SPINE, ...args], { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - started }));
  });
}
