import { readHealthAnswer, type HealthReport } from '../shared/health';
import type { Logger } from '../shared/log';

/** What the page knows of the mesh's health: the newest report, or why there is none. */
export interface HealthView {
  report: HealthReport | null;
  /** Why the last run on demand gave no report (function unreachable, not configured, …). */
  error: string | null;
  /** A run of the health function is under way. */
  running: boolean;
}

export interface HealthMonitorOptions {
  /** Base URL of the health function (SPINE_FUNCTION_URLS.health); without one, health shows why. */
  healthUrl: string | undefined;
  /** How often the health function is run (default 30 s; 0: only on demand). */
  intervalMs?: number;
  /** A run may take the canary's deadline and more; the function's own timeout is 120 s. */
  timeoutMs?: number;
  logger: Logger;
  onChange(view: HealthView): void;
}

/**
 * Runs the mesh's health function on an interval and on demand (one run at a time; asking
 * during a run waits for it), and takes reports the function publishes on the health topic
 * (the scheduler's runs) through `offer`.
 */
export class HealthMonitor {
  private view: HealthView = { report: null, error: null, running: false };
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<HealthView>;
  private readonly abort = new AbortController();

  constructor(private readonly options: HealthMonitorOptions) {}

  current(): HealthView {
    return this.view;
  }

  start(): void {
    void this.check();
    const intervalMs = this.options.intervalMs ?? 30_000;
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.check(), intervalMs);
      this.timer.unref();
    }
  }

  /** A report from elsewhere (the health topic); kept when it is at least as new as ours. */
  offer(report: HealthReport): void {
    if (this.view.report && report.checkedAt < this.view.report.checkedAt) return;
    this.update({ report, error: null });
  }

  /** Runs the health function now, or joins the run under way. */
  check(): Promise<HealthView> {
    this.inFlight ??= this.run().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.abort.abort();
    await this.inFlight;
  }

  private async run(): Promise<HealthView> {
    const { healthUrl, logger } = this.options;
    if (!healthUrl) return this.update({ error: 'no health function: SPINE_FUNCTION_URLS has no "health" entry' });
    this.update({ running: true });
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs ?? 130_000)]);
      const response = await fetch(healthUrl, { method: 'GET', headers: { accept: 'application/json' }, signal });
      const answer = readHealthAnswer(response.status, await response.text());
      // A report that could not be stored is still the mesh's state now.
      const report = answer.report ?? answer.undeliveredReport;
      if (report && typeof report === 'object' && 'status' in report && 'checks' in report) {
        if (!this.view.report || report.checkedAt >= this.view.report.checkedAt)
          return this.update({ report, error: null, running: false });
        return this.update({ error: null, running: false });
      }
      return this.update({
        error: `the health function ${answer.error ?? `answered ${response.status} without a report`}`,
        running: false,
      });
    } catch (error) {
      if (this.abort.signal.aborted) return this.view;
      logger.warn('dashboard could not run the health function', { url: healthUrl, error });
      return this.update({
        error: `the health function at ${healthUrl} could not be reached: ${(error as Error).message}`,
        running: false,
      });
    }
  }

  private update(change: Partial<HealthView>): HealthView {
    this.view = { ...this.view, ...change };
    this.options.onChange(this.view);
    return this.view;
  }
}
