/** `spine health`: a fresh health report from the mesh's health function, or the latest stored one. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GoogleAuth } from 'google-auth-library';
import { PROCESSES_FILE, type SupervisionStatus } from '../functions-supervisor';
import { LATEST_HEALTH_REPORT, readHealthAnswer, type HealthCheckName, type HealthReport } from '../../shared/health';
import {
  emulatorEndpoints,
  probeEndpoints,
  resolveConnection,
  storageClient,
  urlEndpoint,
  type MeshConnection,
} from '../connection';
import { CliError, ExitCode, MeshUnreachableError, NotFoundError } from '../errors';
import { printJson, printTable } from '../output';
import { parseCommand, parseTimeout } from '../options';

export const HEALTH_USAGE = `usage: spine health [--stored] [--timeout MS]

  Runs the mesh's health function (SPINE_FUNCTION_URLS in mesh.env) for a fresh report: a
  canary write end to end, dead letters, pending batches, snapshot ages, agents. Without a
  function URL (or with --stored) it reads the latest stored report (${LATEST_HEALTH_REPORT} in the bucket).
  Exit code 0 when healthy, ${ExitCode.unhealthy} when not.`;

const DEFAULT_TIMEOUT_MS = 130_000;

export async function health(argv: string[]): Promise<number> {
  const { values, common, help } = parseCommand(argv, {
    usage: HEALTH_USAGE,
    positionals: [],
    options: { stored: { type: 'boolean' }, timeout: { type: 'string' } },
  });
  if (help) {
    console.log(HEALTH_USAGE);
    return ExitCode.ok;
  }
  const timeoutMs = parseTimeout(values.timeout) ?? DEFAULT_TIMEOUT_MS;
  const connection = await resolveConnection(common);
  const url = connection.settings.functionUrls.health;
  const fresh = url !== undefined && !values.stored;
  const report = fresh ? await runHealthFunction(url, connection, timeoutMs) : await readStoredReport(connection);
  const processes = connection.meshEnvFile
    ? await supervisedProcesses(path.dirname(connection.meshEnvFile))
    : undefined;
  if (common.json) printJson(processes ? { ...report, processes } : report);
  else {
    printReport(report, fresh);
    if (processes) console.log(`\n${describeSupervision(processes.functions)}`);
  }
  return report.status === 'healthy' ? ExitCode.ok : ExitCode.unhealthy;
}

/** What the running `spine dev` of this data dir supervises; undefined when no mesh runs there. */
async function supervisedProcesses(dataDir: string): Promise<{ functions: SupervisionStatus } | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dataDir, PROCESSES_FILE), 'utf8')) as { functions: SupervisionStatus };
  } catch {
    return undefined;
  }
}

export function describeSupervision(status: SupervisionStatus): string {
  const exit = status.lastExit
    ? `; last exit ${status.lastExit.signal ?? `code ${status.lastExit.exitCode}`} at ${status.lastExit.at}`
    : '';
  return `functions process: ${status.state} (pid ${status.pid}), restarted ${status.restarts} time${status.restarts === 1 ? '' : 's'}${exit}`;
}

async function runHealthFunction(url: string, connection: MeshConnection, timeoutMs: number): Promise<HealthReport> {
  await probeEndpoints([urlEndpoint('the health function', url)], connection.origin);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'GET',
      headers: await identityHeaders(url),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new MeshUnreachableError(`the health function at ${url} did not answer: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const answer = readHealthAnswer(response.status, await response.text());
  if (answer.report) return answer.report;
  throw new CliError(`the health function at ${url} ${answer.error}`, ExitCode.failed);
}

/**
 * A deployed function takes only callers with an ID token for its URL (no function is public):
 * one from Application Default Credentials. The local mesh's plain-HTTP functions need none.
 */
async function identityHeaders(url: string): Promise<Record<string, string>> {
  if (new URL(url).protocol !== 'https:') return {};
  try {
    const client = await new GoogleAuth().getIdTokenClient(url);
    const headers = await client.getRequestHeaders(url);
    const authorization = headers.get('authorization');
    return authorization ? { authorization } : {};
  } catch (error) {
    throw new CliError(
      `no ID token for the health function at ${url} (Application Default Credentials: gcloud auth application-default login, or a service account): ${(error as Error).message}`,
      ExitCode.failed,
      { cause: error },
    );
  }
}

async function readStoredReport(connection: MeshConnection): Promise<HealthReport> {
  await probeEndpoints(
    emulatorEndpoints(connection.settings).filter((e) => e.part === 'storage'),
    connection.origin,
  );
  const storage = storageClient(connection.settings);
  try {
    const [bytes] = await storage.bucket(connection.settings.bucket).file(LATEST_HEALTH_REPORT).download();
    return JSON.parse(bytes.toString('utf8')) as HealthReport;
  } catch (error) {
    if ((error as { code?: number }).code === 404)
      throw new NotFoundError(
        `no stored health report in bucket ${connection.settings.bucket} (${LATEST_HEALTH_REPORT}): the health job has not run yet`,
      );
    throw error;
  }
}

function printReport(report: HealthReport, fresh: boolean): void {
  const age = fresh ? '' : `, ${Math.round((Date.now() - Date.parse(report.checkedAt)) / 1000)} s ago (stored report)`;
  console.log(`mesh ${report.status} (checked ${report.checkedAt} in ${report.durationMs} ms${age})`);
  const { canary, deadLetters, pendingBatches, agents, snapshots } = report.checks;
  const mark = (check: HealthCheckName, ok: boolean) => (ok ? 'ok' : report.failing.includes(check) ? 'FAIL' : 'warn');
  const online = agents.filter((a) => a.online).length;
  printTable(
    ['CHECK', 'STATE', 'DETAIL'],
    [
      [
        'canary',
        mark('canary', canary.ok),
        canary.error ??
          `materialized in ${canary.materializedMs ?? '—'} ms, announced in ${canary.announcedMs ?? '—'} ms`,
      ],
      ['dead letters', mark('deadLetters', deadLetters.ok), deadLetters.error ?? `${deadLetters.count} waiting`],
      [
        'pending batches',
        mark('pendingBatches', pendingBatches.ok),
        pendingBatches.error ??
          `${pendingBatches.count} queued${pendingBatches.oldestAgeMs === null ? '' : `, oldest ${pendingBatches.oldestAgeMs} ms`}`,
      ],
      ['agents', online === agents.length ? 'ok' : 'warn', `${online} online, ${agents.length - online} offline`],
      ['snapshots', snapshots.error ? 'warn' : 'ok', snapshots.error ?? `${snapshots.networks.length} networks`],
    ],
  );
  if (agents.length > 0) {
    console.log('');
    printTable(
      ['AGENT', 'STATUS', 'LAST HEARTBEAT', 'AGE', 'ONLINE'],
      agents.map((a) => [
        a.agentId,
        a.status,
        a.lastHeartbeat,
        `${Math.round(a.ageMs / 1000)} s`,
        a.online ? 'yes' : 'no',
      ]),
    );
  }
  if (report.problems.length > 0) console.log(`\nproblems:\n${report.problems.map((p) => `  - ${p}`).join('\n')}`);
}
