import type { CronExpression } from 'cron-parser';
import { createLogger, type Logger } from '../shared/log';
import type { FunctionName } from '../shared/topology';
import { retryDelaySeconds } from './backoff';
import { SimulatedClock } from './clock';
import { RunnerStoppedError, SchedulerConfigError, UnknownJobError } from './errors';
import type { JobSpec } from './jobs';
import { parseSchedule, validateJobs } from './schedule';

/**
 * The local stand-in for Cloud Scheduler: fires the jobs of `scheduler/jobs.ts` at the HTTP
 * functions of the local mesh, on a simulated clock that can run faster than real time.
 *
 * What it does as the service does:
 * - Each job fires at its cron slots in its own time zone (cron-parser resolves DST), as a
 *   `POST {url}/` with the job's JSON body and the headers Cloud Scheduler sends: `User-Agent:
 *   Google-Cloud-Scheduler`, `X-CloudScheduler: true`, `X-CloudScheduler-JobName`, and
 *   `X-CloudScheduler-ScheduleTime` (the slot, RFC 3339 UTC), which is the same on every
 *   attempt and every delivery of one slot, so a function can make a doubled slot idempotent.
 * - A 2xx answer acknowledges; any other answer, a network error or no answer within the
 *   attempt deadline is a failed attempt, retried after the documented backoff (see
 *   `retryDelaySeconds`) up to `retry.retryCount` times.
 * - Retries stop when the next slot of the job is due (RetryConfig: "retry_count times, or
 *   until the next scheduled execution time, whichever comes first"): the next slot always
 *   fires on time, and one job never has two slots retrying at once. An attempt already in
 *   flight then still runs to its answer or deadline; it is just not retried.
 * - `duplicateSlots` delivers a slot twice, at once and concurrently, as the service's
 *   at-least-once delivery may.
 *
 * Choices of its own:
 * - Slots at or after `startAt` fire; none before it (no backfill).
 * - If the event loop was busy past one or more slots, each missed slot fires once, late, in
 *   order, with its own schedule time; none is dropped or merged, and a warning says how far
 *   behind the runner was. As the simulated clock is monotonic, a sleeping laptop does not
 *   cause such a burst (see `SimulatedClock`).
 * - Simulated durations (backoff, attempt deadline) are divided by `speedUp`, but an attempt
 *   gets at least `minAttemptDeadlineMs` of real time (2 s by default), since a local function
 *   needs real time to answer however fast the clock runs. At a high speedUp an attempt can
 *   therefore outlast many simulated minutes.
 * - `runNow` starts one execution at once (schedule time = simulated now), with the job's
 *   retries, never doubled, and resolves when it has succeeded or failed for good.
 * - `stop()` clears every timer, aborts attempts in flight (their slots end `cancelled`) and
 *   resolves once nothing is left running, so a process or test can exit.
 */
export interface SchedulerRunnerOptions {
  jobs: readonly JobSpec[];
  /** Base URL per function, e.g. `http://127.0.0.1:8082`; every job's target needs one. */
  urls: Partial<Record<FunctionName, string>>;
  /** Simulated seconds per real second: 1 is real time, 1440 a day in a minute. Default 1. */
  speedUp?: number;
  /** Simulated time at start; default now. */
  startAt?: Date;
  logger?: Logger;
  fetch?: typeof fetch;
  /** Deliver a slot twice (every slot, or those the function picks), as at-least-once delivery may. */
  duplicateSlots?: boolean | ((job: JobSpec, scheduleTime: Date) => boolean);
  /** Least real time an attempt is given, whatever the speedUp. Default 2000. */
  minAttemptDeadlineMs?: number;
  /** Slots kept for `fired()`, newest last. Default 10,000. */
  maxHistory?: number;
}

export type SlotStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
/** Why a slot ended without success: retries used up, the job's next slot came, or `stop()`. */
export type SlotEndReason = 'retries-exhausted' | 'next-slot-due' | 'stopped';

export interface AttemptRecord {
  /** Simulated times. */
  startedAt: Date;
  finishedAt: Date;
  /** The answer's status; absent when there was none (`error` says why). */
  httpStatus?: number;
  error?: string;
}

export interface FiredSlot {
  job: string;
  /** The slot, as sent in X-CloudScheduler-ScheduleTime. */
  scheduleTime: Date;
  trigger: 'schedule' | 'manual';
  /** 2 for the second delivery of a doubled slot. */
  delivery: 1 | 2;
  /** Simulated time it fired: later than `scheduleTime` when the runner had fallen behind. */
  firedAt: Date;
  attempts: AttemptRecord[];
  status: SlotStatus;
  reason?: SlotEndReason;
}

export interface SchedulerRunner {
  /** The simulated time. */
  now(): Date;
  /** Clears every timer, aborts attempts in flight and resolves once nothing runs. Idempotent. */
  stop(): Promise<void>;
  /** Copies of the slots fired so far, in firing order. */
  fired(): FiredSlot[];
  /** Fires a job now, like `gcloud scheduler jobs run`; resolves with the slot once it has succeeded or failed. */
  runNow(jobName: string): Promise<FiredSlot>;
  /** Resolves when no execution (attempt or backoff) is in progress. */
  idle(): Promise<void>;
  /** Timers set and executions in progress; both 0 after `stop()`. */
  pending(): { timers: number; executions: number };
}

const DEFAULT_MIN_ATTEMPT_DEADLINE_MS = 2_000;
const DEFAULT_MAX_HISTORY = 10_000;
/** setTimeout's largest delay; a longer wait wakes up early and sets another timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function startSchedulerRunner(options: SchedulerRunnerOptions): SchedulerRunner {
  return new Runner(options);
}

/** RFC 3339 in UTC, whole seconds when the time has no milliseconds (cron slots never do). */
export function formatScheduleTime(time: Date): string {
  return time.toISOString().replace(/\.000Z$/, 'Z');
}

interface JobState {
  spec: JobSpec;
  url: string;
  log: Logger;
  slots: CronExpression;
  /** The next slot to fire; undefined once the schedule has no more. */
  nextSlot: Date | undefined;
}

interface Execution {
  record: FiredSlot;
  done: Promise<void>;
}

/** Timers the runner owns, so `stop()` can clear every one and `pending()` can count them. */
class Timers {
  private readonly live = new Set<NodeJS.Timeout>();

  set(callback: () => void, ms: number): NodeJS.Timeout {
    const handle = setTimeout(
      () => {
        this.live.delete(handle);
        callback();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    this.live.add(handle);
    return handle;
  }

  clear(handle: NodeJS.Timeout | undefined): void {
    if (!handle) return;
    clearTimeout(handle);
    this.live.delete(handle);
  }

  clearAll(): void {
    for (const handle of this.live) clearTimeout(handle);
    this.live.clear();
  }

  get size(): number {
    return this.live.size;
  }
}

class Runner implements SchedulerRunner {
  private readonly clock: SimulatedClock;
  private readonly log: Logger;
  private readonly fetchImpl: typeof fetch;
  private readonly minAttemptDeadlineMs: number;
  private readonly maxHistory: number;
  private readonly duplicateSlots: SchedulerRunnerOptions['duplicateSlots'];
  private readonly jobs = new Map<string, JobState>();
  private readonly timers = new Timers();
  private readonly inFlight = new Set<Promise<void>>();
  /** Called by `stop()`: each aborts an attempt or ends a backoff wait. */
  private readonly cancellers = new Set<() => void>();
  private readonly history: FiredSlot[] = [];
  private stopped = false;
  private stopping: Promise<void> | undefined;

  constructor(options: SchedulerRunnerOptions) {
    const speedUp = options.speedUp ?? 1;
    if (!Number.isFinite(speedUp) || speedUp <= 0)
      throw new SchedulerConfigError(undefined, 'speedUp', `must be a positive number, got ${speedUp}`);
    if (options.startAt && Number.isNaN(options.startAt.getTime()))
      throw new SchedulerConfigError(undefined, 'startAt', 'is an invalid Date');
    this.minAttemptDeadlineMs = options.minAttemptDeadlineMs ?? DEFAULT_MIN_ATTEMPT_DEADLINE_MS;
    if (!Number.isFinite(this.minAttemptDeadlineMs) || this.minAttemptDeadlineMs <= 0) {
      throw new SchedulerConfigError(
        undefined,
        'minAttemptDeadlineMs',
        `must be a positive number, got ${this.minAttemptDeadlineMs}`,
      );
    }
    this.maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
    if (!Number.isInteger(this.maxHistory) || this.maxHistory < 1)
      throw new SchedulerConfigError(undefined, 'maxHistory', `must be a positive integer, got ${this.maxHistory}`);
    validateJobs(options.jobs, options.urls);

    this.log = options.logger ?? createLogger('scheduler');
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.duplicateSlots = options.duplicateSlots;
    this.clock = new SimulatedClock({ speedUp, ...(options.startAt ? { startAt: options.startAt } : {}) });

    // The clock's start, not now(): at a high speedUp even these few lines take simulated seconds.
    const startAt = this.clock.startAt;
    for (const spec of options.jobs) {
      const schedule = parseSchedule(spec);
      const first = schedule.firstSlotFrom(startAt);
      this.jobs.set(spec.name, {
        spec,
        url: `${options.urls[spec.target.function]!.replace(/\/+$/, '')}/`,
        log: this.log.child({ job: spec.name }),
        slots: schedule.slotsAfter(first),
        nextSlot: first,
      });
    }
    this.log.info('scheduler runner started', {
      speedUp,
      startAt: startAt.toISOString(),
      jobs: [...this.jobs.values()].map((job) => ({
        name: job.spec.name,
        schedule: job.spec.schedule,
        timeZone: job.spec.timeZone,
        url: job.url,
        nextSlot: job.nextSlot && formatScheduleTime(job.nextSlot),
      })),
    });
    for (const job of this.jobs.values()) this.arm(job);
  }

  now(): Date {
    return this.clock.now();
  }

  fired(): FiredSlot[] {
    return structuredClone(this.history);
  }

  pending(): { timers: number; executions: number } {
    return { timers: this.timers.size, executions: this.inFlight.size };
  }

  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async runNow(jobName: string): Promise<FiredSlot> {
    if (this.stopped) throw new RunnerStoppedError('runNow');
    const job = this.jobs.get(jobName);
    if (!job) throw new UnknownJobError(jobName, [...this.jobs.keys()]);
    const [execution] = this.fire(job, this.clock.now(), 'manual', job.nextSlot?.getTime() ?? Infinity);
    await execution!.done;
    return structuredClone(execution!.record);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.timers.clearAll();
      for (const cancel of [...this.cancellers]) cancel();
      await this.idle();
      const counts: Record<string, number> = {};
      for (const slot of this.history) counts[slot.status] = (counts[slot.status] ?? 0) + 1;
      this.log.info('scheduler runner stopped', { simulatedNow: this.clock.now().toISOString(), slots: counts });
    })();
    return this.stopping;
  }

  /** Sets the job's timer for its next slot. */
  private arm(job: JobState): void {
    if (this.stopped || !job.nextSlot) return;
    this.timers.set(() => this.fireDue(job), this.clock.realDelayUntil(job.nextSlot.getTime()));
  }

  /** Fires every slot of the job that is due (one, unless the runner fell behind), then sets the next timer. */
  private fireDue(job: JobState): void {
    if (this.stopped) return;
    const nowMs = this.clock.nowMs();
    const due: Date[] = [];
    while (job.nextSlot && job.nextSlot.getTime() <= nowMs) {
      due.push(job.nextSlot);
      job.nextSlot = this.advance(job);
    }
    if (due.length > 1) {
      job.log.warn('scheduler runner fell behind; firing each missed slot once', {
        slots: due.length,
        firstSlot: formatScheduleTime(due[0]!),
        behindSeconds: Math.round((nowMs - due[0]!.getTime()) / 1000),
      });
    }
    // Retries of a slot end where the job's next slot begins (see the module comment).
    due.forEach((slot, i) => this.fire(job, slot, 'schedule', (due[i + 1] ?? job.nextSlot)?.getTime() ?? Infinity));
    this.arm(job);
  }

  private advance(job: JobState): Date | undefined {
    try {
      return job.slots.next().toDate();
    } catch (error) {
      job.log.error('schedule has no further slot; the job will not fire again', {
        schedule: job.spec.schedule,
        error,
      });
      return undefined;
    }
  }

  private fire(job: JobState, scheduleTime: Date, trigger: FiredSlot['trigger'], retryUntil: number): Execution[] {
    const deliveries = trigger === 'schedule' && this.isDoubled(job, scheduleTime) ? 2 : 1;
    const executions: Execution[] = [];
    for (let delivery = 1; delivery <= deliveries; delivery++) {
      const record: FiredSlot = {
        job: job.spec.name,
        scheduleTime: new Date(scheduleTime),
        trigger,
        delivery: delivery as 1 | 2,
        firedAt: this.clock.now(),
        attempts: [],
        status: 'running',
      };
      this.history.push(record);
      if (this.history.length > this.maxHistory) this.history.shift();
      const done = this.execute(job, record, retryUntil).catch((error: unknown) => {
        // execute() handles every failure it expects; this is a bug guard, not a code path.
        record.status = 'failed';
        job.log.error('scheduler runner failed to execute a slot', {
          scheduleTime: formatScheduleTime(scheduleTime),
          error,
        });
      });
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
      executions.push({ record, done });
    }
    return executions;
  }

  private isDoubled(job: JobState, scheduleTime: Date): boolean {
    const option = this.duplicateSlots;
    if (typeof option !== 'function') return option === true;
    try {
      return option(job.spec, new Date(scheduleTime));
    } catch (error) {
      job.log.error('duplicateSlots threw; delivering the slot once', {
        scheduleTime: formatScheduleTime(scheduleTime),
        error,
      });
      return false;
    }
  }

  /** Attempts, and retries with backoff, until success, retries used up, the next slot, or stop. */
  private async execute(job: JobState, record: FiredSlot, retryUntil: number): Promise<void> {
    const { retry } = job.spec;
    const fields = {
      scheduleTime: formatScheduleTime(record.scheduleTime),
      trigger: record.trigger,
      delivery: record.delivery,
    };
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(job, record);
      record.attempts.push(result);
      const outcome = { ...fields, attempt, httpStatus: result.httpStatus, error: result.error };
      if (result.httpStatus !== undefined && result.httpStatus >= 200 && result.httpStatus < 300) {
        record.status = 'succeeded';
        job.log.info('scheduled job succeeded', outcome);
        return;
      }
      if (this.stopped) return this.end(job, record, 'cancelled', 'stopped', outcome);
      if (attempt > retry.retryCount) return this.end(job, record, 'failed', 'retries-exhausted', outcome);
      const backoffSeconds = retryDelaySeconds(retry, attempt);
      const retryAt = this.clock.nowMs() + backoffSeconds * 1000;
      if (retryAt >= retryUntil) return this.end(job, record, 'failed', 'next-slot-due', outcome);
      job.log.warn('scheduled job attempt failed; retrying', { ...outcome, retryInSeconds: backoffSeconds });
      if (!(await this.sleepUntil(retryAt))) return this.end(job, record, 'cancelled', 'stopped', outcome);
    }
  }

  private end(
    job: JobState,
    record: FiredSlot,
    status: 'failed' | 'cancelled',
    reason: SlotEndReason,
    fields: Record<string, unknown>,
  ): void {
    record.status = status;
    record.reason = reason;
    const entry = { ...fields, attempts: record.attempts.length, reason };
    if (status === 'failed') job.log.error('scheduled job failed', entry);
    else job.log.info('scheduled job cancelled', entry);
  }

  /** Waits until the simulated time `atMs`; false if the runner was stopped first. */
  private sleepUntil(atMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let handle: NodeJS.Timeout | undefined;
      const cancel = () => {
        this.timers.clear(handle);
        this.cancellers.delete(cancel);
        resolve(false);
      };
      const wake = () => {
        const delay = this.clock.realDelayUntil(atMs);
        if (delay > 0) {
          handle = this.timers.set(wake, delay);
          return;
        }
        this.cancellers.delete(cancel);
        resolve(true);
      };
      this.cancellers.add(cancel);
      wake();
    });
  }

  private async attempt(job: JobState, record: FiredSlot): Promise<AttemptRecord> {
    const startedAt = this.clock.now();
    const deadlineSeconds = job.spec.retry.attemptDeadlineSeconds;
    const deadlineMs = Math.max(this.minAttemptDeadlineMs, this.clock.toRealMs(deadlineSeconds * 1000));
    const controller = new AbortController();
    let timedOut = false;
    const deadline = this.timers.set(() => {
      timedOut = true;
      controller.abort();
    }, deadlineMs);
    const cancel = () => controller.abort();
    this.cancellers.add(cancel);
    try {
      const response = await this.fetchImpl(job.url, {
        method: job.spec.target.method,
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'Google-Cloud-Scheduler',
          'X-CloudScheduler': 'true',
          'X-CloudScheduler-JobName': job.spec.name,
          'X-CloudScheduler-ScheduleTime': formatScheduleTime(record.scheduleTime),
        },
        body: JSON.stringify(job.spec.target.body),
        signal: controller.signal,
      });
      // Read the answer to its end so the connection is free again; the deadline covers it too.
      await response.arrayBuffer();
      return { startedAt, finishedAt: this.clock.now(), httpStatus: response.status };
    } catch (error) {
      const reason = timedOut
        ? `deadline exceeded: no answer within the attempt deadline (${deadlineSeconds} s simulated, ${Math.round(deadlineMs)} ms real)`
        : this.stopped
          ? 'cancelled: the runner was stopped'
          : describeFetchError(error);
      return { startedAt, finishedAt: this.clock.now(), error: reason };
    } finally {
      this.timers.clear(deadline);
      this.cancellers.delete(cancel);
    }
  }
}

/** fetch reports "fetch failed" and hides the reason (ECONNREFUSED, ...) in `cause`. */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${error.message}: ${detail}` : error.message;
}
