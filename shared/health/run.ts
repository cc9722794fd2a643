import { performance } from 'node:perf_hooks';
import {
  HEALTH_REPORT_VERSION,
  type HealthCheckDependencies,
  type HealthCheckName,
  type HealthReport,
  type HealthThresholds,
  validateHealthSettings,
} from './report';
import { checkPendingBatches } from './checks/pending-batches';
import { checkCanary } from './checks/canary';
import { checkDeadLetters } from './checks/dead-letters';
import { checkSnapshots } from './checks/snapshots';
import { checkAgents } from './checks/agents';

/** Runs every check (in parallel; none can make another fail) and grades the result. */
export async function runHealthChecks(deps: HealthCheckDependencies): Promise<HealthReport> {
  const settings = validateHealthSettings(deps.settings);
  const now = deps.now ?? (() => new Date());
  const checkedAt = now();
  const began = performance.now();
  const [canary, deadLetters, pendingBatches, snapshots, agentsResult] = await Promise.all([
    checkCanary(deps.canary, settings.canaryDeadlineMs),
    checkDeadLetters(deps.deadLetters),
    checkPendingBatches(deps.pendingBatches, settings.maxBatchAgeMs, checkedAt),
    checkSnapshots(deps.state, checkedAt),
    // Read after the other checks' reads start, but aged against the run's start like everything else.
    checkAgents(deps.state, settings.offlineAfterMs, checkedAt, deps.logger),
  ]);
  const report: Omit<HealthReport, 'status' | 'failing' | 'warnings' | 'problems'> = {
    version: HEALTH_REPORT_VERSION,
    checkedAt: checkedAt.toISOString(),
    durationMs: Math.round(performance.now() - began),
    checks: { canary, deadLetters, pendingBatches, snapshots, agents: agentsResult.agents },
    thresholds: { ...settings },
  };
  return { ...report, ...grade(report.checks, settings, agentsResult.error) };
}

/** Which checks fail, which only warn, and why, by the rules at the top of this file. */
export function grade(
  checks: HealthReport['checks'],
  settings: HealthThresholds,
  agentsError?: string,
): Pick<HealthReport, 'status' | 'failing' | 'warnings' | 'problems'> {
  const failing: HealthCheckName[] = [];
  const warnings: HealthCheckName[] = [];
  const problems: string[] = [];
  const { canary, deadLetters, pendingBatches, snapshots, agents } = checks;

  if (!canary.ok) {
    failing.push('canary');
    problems.push(`canary: ${canary.error ?? 'not materialized and announced in time'}`);
  }
  if (!pendingBatches.ok) {
    failing.push('pendingBatches');
    problems.push(
      pendingBatches.error
        ? `pendingBatches: ${pendingBatches.error}`
        : `pendingBatches: the oldest of ${pendingBatches.count} batch flushes has waited ${pendingBatches.oldestAgeMs} ms, over ${settings.maxBatchAgeMs} ms`,
    );
  }
  if (!deadLetters.ok) {
    const over =
      deadLetters.count !== null && settings.maxDeadLetters !== null && deadLetters.count > settings.maxDeadLetters;
    (over ? failing : warnings).push('deadLetters');
    problems.push(
      deadLetters.error
        ? `deadLetters: ${deadLetters.error}`
        : `deadLetters: ${deadLetters.count} waiting${settings.maxDeadLetters === null ? '' : over ? `, over the limit of ${settings.maxDeadLetters}` : ` (unhealthy above ${settings.maxDeadLetters})`}`,
    );
  }
  if (snapshots.error) {
    warnings.push('snapshots');
    problems.push(`snapshots: ${snapshots.error}`);
  }
  const offline = agents.filter((a) => !a.online);
  if (agentsError || offline.length > 0) {
    warnings.push('agents');
    if (agentsError) problems.push(`agents: ${agentsError}`);
    if (offline.length > 0) {
      const shown = offline
        .slice(0, 10)
        .map((a) => a.agentId)
        .join(', ');
      problems.push(
        `agents: ${offline.length} offline (no heartbeat for over ${settings.offlineAfterMs} ms): ${shown}${offline.length > 10 ? ', …' : ''}`,
      );
    }
  }
  return { status: failing.length === 0 ? 'healthy' : 'unhealthy', failing, warnings, problems };
}

// ---- where the report goes
