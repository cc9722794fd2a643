import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '../../shared/testing/eventually';
import {
  defineJobs,
  formatScheduleTime,
  retryDelaySeconds,
  RunnerStoppedError,
  SchedulerConfigError,
  startSchedulerRunner,
  UnknownJobError,
  validateJobs,
  type FiredSlot,
  type JobSpec,
  type SchedulerRunner,
  type SchedulerRunnerOptions,
} from '../../scheduler';
import { createMemoryLogger } from '../helpers/emulators';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A request the target received. */
interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  job: string;
  scheduleTime: string;
  /** Real time it arrived (performance.now()). */
  at: number;
}

/** What the target answers: a status, or 'hang' to never answer (until the server closes). */
type Answer = number | 'hang';

interface Target {
  url: string;
  requests: Received[];
  forJob(job: string): Received[];
  close(): Promise<void>;
}

/** A real HTTP server standing in for a function: records every request, answers as `answer` says. */
async function startTarget(answer: (request: Received, nthForJob: number) => Answer = () => 200): Promise<Target> {
  const requests: Received[] = [];
  const forJob = (job: string) => requests.filter((r) => r.job === job);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const request: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
        job: String(req.headers['x-cloudscheduler-jobname']),
        scheduleTime: String(req.headers['x-cloudscheduler-scheduletime']),
        at: performance.now(),
      };
      requests.push(request);
      const status = answer(request, forJob(request.job).length);
      if (status === 'hang') return;
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'failed');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    forJob,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function job(
  name: string,
  schedule: string,
  overrides: Partial<Omit<JobSpec, 'retry'>> & { retry?: Partial<JobSpec['retry']> } = {},
): JobSpec {
  const { retry, ...rest } = overrides;
  return {
    name,
    description: `test job ${name}`,
    schedule,
    timeZone: 'Etc/UTC',
    target: { function: 'health', method: 'POST', body: { job: name } },
    ...rest,
    retry: {
      retryCount: 0,
      minBackoffSeconds: 10,
      maxBackoffSeconds: 300,
      maxDoublings: 3,
      attemptDeadlineSeconds: 60,
      ...retry,
    },
  };
}

/** Every slot from `from` (inclusive) to `to` (exclusive), `stepMs` apart, as sent in the header. */
function slotTimes(from: Date, to: Date, stepMs: number): string[] {
  const times: string[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += stepMs) times.push(formatScheduleTime(new Date(t)));
  return times;
}

const before = (time: string, end: Date) => Date.parse(time) < end.getTime();
const timeoutsActive = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function useTarget(answer?: Parameters<typeof startTarget>[0]): Promise<Target> {
  const target = await startTarget(answer);
  cleanups.push(() => target.close());
  return target;
}

function useRunner(options: Omit<SchedulerRunnerOptions, 'logger'>) {
  const logger = createMemoryLogger();
  const runner = startSchedulerRunner({ logger, ...options });
  cleanups.push(() => runner.stop());
  return { runner, logs: logger.entries };
}

const slotsOf = (runner: SchedulerRunner, name: string): FiredSlot[] => runner.fired().filter((s) => s.job === name);

describe('retryDelaySeconds', () => {
  it('doubles maxDoublings times, then grows linearly, capped at maxBackoff (the documented example)', () => {
    const config = { minBackoffSeconds: 10, maxBackoffSeconds: 300, maxDoublings: 3 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((retry) => retryDelaySeconds(config, retry))).toEqual([
      10, 20, 40, 80, 160, 240, 300, 300,
    ]);
  });

  it('with no doublings, grows linearly from the first interval', () => {
    const config = { minBackoffSeconds: 5, maxBackoffSeconds: 12, maxDoublings: 0 };
    expect([1, 2, 3, 4].map((retry) => retryDelaySeconds(config, retry))).toEqual([5, 10, 12, 12]);
  });
});

describe('job validation', () => {
  const urls = { health: 'http://127.0.0.1:1', snapshot: 'http://127.0.0.1:2', persist: 'http://127.0.0.1:3' };

  it("accepts the project's own jobs", () => {
    expect(() => validateJobs(defineJobs('spine-'), urls)).not.toThrow();
  });

  it.each([
    ['a seconds field', job('j', '0 0 * * * *'), 'schedule'],
    ['a macro', job('j', '@hourly'), 'schedule'],
    ['a field out of range', job('j', '61 * * * *'), 'schedule'],
    ['an unknown time zone', job('j', '0 * * * *', { timeZone: 'Mars/Olympus_Mons' }), 'timeZone'],
    ['more than 5 retries', job('j', '0 * * * *', { retry: { retryCount: 6 } }), 'retry.retryCount'],
    [
      'maxBackoff below minBackoff',
      job('j', '0 * * * *', { retry: { minBackoffSeconds: 60, maxBackoffSeconds: 30 } }),
      'retry.maxBackoffSeconds',
    ],
    [
      'an attempt deadline under 15 s',
      job('j', '0 * * * *', { retry: { attemptDeadlineSeconds: 5 } }),
      'retry.attemptDeadlineSeconds',
    ],
    [
      'a target without a URL',
      job('j', '0 * * * *', { target: { function: 'materialize', method: 'POST', body: {} } }),
      'target.function',
    ],
    ['a name Cloud Scheduler refuses', job('j/k', '0 * * * *'), 'name'],
  ])('refuses %s, naming the job and the setting', (_what, bad, field) => {
    let error: unknown;
    try {
      validateJobs([bad], urls);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SchedulerConfigError);
    expect(error).toMatchObject({ job: bad.name, field });
    expect((error as Error).message).toContain(JSON.stringify(bad.name));
  });

  it('refuses two jobs with one name, and the runner refuses bad options before starting', () => {
    expect(() => validateJobs([job('j', '0 * * * *'), job('j', '5 * * * *')], urls)).toThrow(SchedulerConfigError);
    expect(() => startSchedulerRunner({ jobs: [], urls, speedUp: 0 })).toThrow(/speedUp/);
    expect(() => startSchedulerRunner({ jobs: [job('j', 'nope')], urls })).toThrow(SchedulerConfigError);
  });
});

describe('scheduler runner', () => {
  it('fires an hourly job 24 times and a five-minute job 288 times in a simulated day, at the exact slots', async () => {
    const target = await useTarget();
    const start = new Date('2024-05-01T00:00:00Z');
    const end = new Date(start.getTime() + DAY);
    const hourly = job('hourly', '0 * * * *', {
      target: { function: 'snapshot', method: 'POST', body: { networks: 'changed' } },
    });
    const fiveMinutes = job('five-minutes', '*/5 * * * *');
    // A simulated day in 3 s of real time.
    const { runner } = useRunner({
      jobs: [hourly, fiveMinutes],
      urls: { snapshot: target.url, health: target.url },
      startAt: start,
      speedUp: DAY / 3_000,
    });

    await eventually(
      () => {
        expect(runner.now().getTime()).toBeGreaterThanOrEqual(end.getTime());
        expect(target.forJob('hourly').filter((r) => before(r.scheduleTime, end))).toHaveLength(24);
        expect(target.forJob('five-minutes').filter((r) => before(r.scheduleTime, end))).toHaveLength(288);
      },
      { timeoutMs: 30_000 },
    );
    await runner.stop();

    // Exactly the slots of the day, each once, whatever ran on after the day's end.
    const received = (name: string) =>
      target
        .forJob(name)
        .map((r) => r.scheduleTime)
        .filter((t) => before(t, end))
        .sort();
    expect(received('hourly')).toEqual(slotTimes(start, end, HOUR));
    expect(received('five-minutes')).toEqual(slotTimes(start, end, 5 * MINUTE));

    for (const request of target.requests) {
      expect(request).toMatchObject({ method: 'POST', path: '/' });
      expect(request.headers).toMatchObject({
        'content-type': 'application/json',
        'user-agent': 'Google-Cloud-Scheduler',
        'x-cloudscheduler': 'true',
      });
      expect(request.scheduleTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
    }
    expect(target.forJob('hourly')[0]!.body).toEqual({ networks: 'changed' });
    expect(target.forJob('five-minutes')[0]!.body).toEqual({ job: 'five-minutes' });

    const daySlots = runner.fired().filter((s) => s.scheduleTime < end);
    expect(daySlots).toHaveLength(24 + 288);
    expect(daySlots.every((s) => s.status === 'succeeded' && s.attempts.length === 1 && s.trigger === 'schedule')).toBe(
      true,
    );
  });

  it('retries a failing target with growing simulated backoff, and succeeds on the third attempt', async () => {
    const target = await useTarget((_request, nth) => (nth <= 2 ? 500 : 200));
    const speedUp = 120;
    const flaky = job('flaky', '0 * * * *', {
      retry: { retryCount: 3, minBackoffSeconds: 30, maxBackoffSeconds: 600, maxDoublings: 3 },
    });
    const { runner, logs } = useRunner({
      jobs: [flaky],
      urls: { health: target.url },
      startAt: new Date('2024-05-01T09:59:58Z'),
      speedUp,
    });

    await eventually(() => expect(slotsOf(runner, 'flaky')[0]?.status).toBe('succeeded'), { timeoutMs: 15_000 });
    const [slot] = slotsOf(runner, 'flaky');
    expect(slot!.attempts.map((a) => a.httpStatus)).toEqual([500, 500, 200]);

    // Backoff counts from the failed attempt: 30 s, then 60 s (simulated), never less. No upper bound here: one
    // real millisecond of a busy machine is 120 simulated ones; the exact backoff chosen is in the logs below.
    const waits = [1, 2].map(
      (i) => (slot!.attempts[i]!.startedAt.getTime() - slot!.attempts[i - 1]!.finishedAt.getTime()) / 1000,
    );
    expect(waits[0]).toBeGreaterThanOrEqual(30);
    expect(waits[1]).toBeGreaterThanOrEqual(60);

    // The target saw the same slot three times, spaced by the backoff in real time too.
    const requests = target.forJob('flaky');
    expect(requests.map((r) => r.scheduleTime)).toEqual([
      '2024-05-01T10:00:00Z',
      '2024-05-01T10:00:00Z',
      '2024-05-01T10:00:00Z',
    ]);
    expect((requests[1]!.at - requests[0]!.at) * speedUp).toBeGreaterThanOrEqual(30_000 - 2_000);
    expect((requests[2]!.at - requests[1]!.at) * speedUp).toBeGreaterThanOrEqual(60_000 - 2_000);
    expect(
      logs.filter((e) => e.message === 'scheduled job attempt failed; retrying').map((e) => e.fields.retryInSeconds),
    ).toEqual([30, 60]);
  });

  it('records a failed slot once retryCount retries are used up, and tries no more', async () => {
    const target = await useTarget(() => 503);
    const broken = job('broken', '0 * * * *', {
      retry: { retryCount: 2, minBackoffSeconds: 5, maxBackoffSeconds: 10, maxDoublings: 1 },
    });
    const { runner, logs } = useRunner({
      jobs: [broken],
      urls: { health: target.url },
      startAt: new Date('2024-05-01T10:00:00Z'),
      speedUp: 120,
    });

    await eventually(() => expect(slotsOf(runner, 'broken')[0]?.status).toBe('failed'), { timeoutMs: 15_000 });
    await runner.idle();
    const [slot] = slotsOf(runner, 'broken');
    expect(slot).toMatchObject({ status: 'failed', reason: 'retries-exhausted' });
    expect(slot!.attempts.map((a) => a.httpStatus)).toEqual([503, 503, 503]);
    expect(target.forJob('broken')).toHaveLength(3);
    // Nothing of that slot is left running; only the timer for the next slot remains.
    expect(runner.pending()).toEqual({ timers: 1, executions: 0 });
    expect(
      logs.some((e) => e.severity === 'ERROR' && e.message === 'scheduled job failed' && e.fields.job === 'broken'),
    ).toBe(true);
  });

  it('treats no answer within the attempt deadline as a failed attempt and retries it', async () => {
    const target = await useTarget((_request, nth) => (nth === 1 ? 'hang' : 200));
    // 15 s simulated at speedUp 60 is 250 ms of real time.
    const slow = job('slow', '0 * * * *', {
      retry: { retryCount: 1, minBackoffSeconds: 5, attemptDeadlineSeconds: 15 },
    });
    const { runner } = useRunner({
      jobs: [slow],
      urls: { health: target.url },
      startAt: new Date('2024-05-01T10:00:00Z'),
      speedUp: 60,
      minAttemptDeadlineMs: 50,
    });

    await eventually(() => expect(slotsOf(runner, 'slow')[0]?.status).toBe('succeeded'), { timeoutMs: 15_000 });
    const [slot] = slotsOf(runner, 'slow');
    expect(slot!.attempts[0]!.error).toMatch(/deadline exceeded/);
    expect(slot!.attempts[0]!.httpStatus).toBeUndefined();
    expect(slot!.attempts[1]!.httpStatus).toBe(200);
    // The deadline was the job's (15 s simulated), not the floor.
    expect(slot!.attempts[0]!.finishedAt.getTime() - slot!.attempts[0]!.startedAt.getTime()).toBeGreaterThanOrEqual(
      15_000,
    );
  });

  it("stops retrying a slot when the job's next slot is due, and fires that slot on time", async () => {
    const target = await useTarget(() => 500);
    // Retries after 120 s, then 240 s: the second would fall after the next slot (5 min on).
    const busy = job('busy', '*/5 * * * *', {
      retry: { retryCount: 5, minBackoffSeconds: 120, maxBackoffSeconds: 600, maxDoublings: 3 },
    });
    const { runner } = useRunner({
      jobs: [busy],
      urls: { health: target.url },
      startAt: new Date('2024-05-01T10:00:00Z'),
      speedUp: 600,
    });

    await eventually(
      () => expect(slotsOf(runner, 'busy').filter((s) => s.status === 'failed').length).toBeGreaterThanOrEqual(2),
      { timeoutMs: 15_000 },
    );
    const [first, second] = slotsOf(runner, 'busy');
    expect(first).toMatchObject({
      scheduleTime: new Date('2024-05-01T10:00:00Z'),
      status: 'failed',
      reason: 'next-slot-due',
    });
    expect(first!.attempts).toHaveLength(2);
    expect(second!.scheduleTime).toEqual(new Date('2024-05-01T10:05:00Z'));
    // On time: before the 240 s retry of the first slot would have been due (10:06). At 600x a busy machine's
    // 100 real ms are a simulated minute, so the bound is the retry itself, not a tighter window.
    expect(second!.firedAt.getTime()).toBeLessThan(Date.parse('2024-05-01T10:06:00Z'));
  });

  it('fires each slot twice with the same X-CloudScheduler-ScheduleTime when duplicateSlots is set', async () => {
    const target = await useTarget();
    const start = new Date('2024-05-01T00:00:00Z');
    const end = new Date('2024-05-01T04:00:00Z');
    const { runner } = useRunner({
      jobs: [job('doubled', '0 * * * *')],
      urls: { health: target.url },
      startAt: start,
      speedUp: HOUR / 100,
      duplicateSlots: true,
    });

    await eventually(
      () => expect(target.forJob('doubled').filter((r) => before(r.scheduleTime, end))).toHaveLength(8),
      { timeoutMs: 15_000 },
    );
    await runner.stop();
    const times = target
      .forJob('doubled')
      .map((r) => r.scheduleTime)
      .filter((t) => before(t, end))
      .sort();
    expect(times).toEqual(slotTimes(start, end, HOUR).flatMap((t) => [t, t]));
    const slots = slotsOf(runner, 'doubled').filter((s) => s.scheduleTime < end);
    expect(slots.map((s) => s.delivery)).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
  });

  it('doubles only the slots a duplicateSlots function picks', async () => {
    const target = await useTarget();
    const start = new Date('2024-05-01T00:00:00Z');
    const end = new Date('2024-05-01T04:00:00Z');
    const { runner } = useRunner({
      jobs: [job('some-doubled', '0 * * * *')],
      urls: { health: target.url },
      startAt: start,
      speedUp: HOUR / 100,
      duplicateSlots: (_job, slot) => slot.getUTCHours() % 2 === 0,
    });

    await eventually(
      () => expect(target.forJob('some-doubled').filter((r) => before(r.scheduleTime, end))).toHaveLength(6),
      { timeoutMs: 15_000 },
    );
    await runner.stop();
    const times = target
      .forJob('some-doubled')
      .map((r) => r.scheduleTime)
      .filter((t) => before(t, end))
      .sort();
    expect(times).toEqual([
      '2024-05-01T00:00:00Z',
      '2024-05-01T00:00:00Z',
      '2024-05-01T01:00:00Z',
      '2024-05-01T02:00:00Z',
      '2024-05-01T02:00:00Z',
      '2024-05-01T03:00:00Z',
    ]);
  });

  it("honours the job's time zone: 9:00 in New York is 14:00 UTC before the DST change and 13:00 UTC after", async () => {
    const target = await useTarget();
    const morning = job('new-york-morning', '0 9 * * *', { timeZone: 'America/New_York' });
    // DST starts in New York on 2024-03-10 at 02:00 local time.
    const { runner } = useRunner({
      jobs: [morning],
      urls: { health: target.url },
      startAt: new Date('2024-03-09T12:00:00Z'),
      speedUp: DAY / 1_000,
    });

    await eventually(() => expect(target.forJob('new-york-morning').length).toBeGreaterThanOrEqual(2), {
      timeoutMs: 15_000,
    });
    expect(
      target
        .forJob('new-york-morning')
        .slice(0, 2)
        .map((r) => r.scheduleTime),
    ).toEqual(['2024-03-09T14:00:00Z', '2024-03-10T13:00:00Z']);
    expect(runner.fired()[0]!.scheduleTime).toEqual(new Date('2024-03-09T14:00:00Z'));
  });

  it('fires every slot it missed while the event loop was busy, once each and in order', async () => {
    const target = await useTarget();
    const start = new Date('2024-05-01T00:00:00Z');
    const speedUp = (5 * MINUTE) / 20; // a five-minute slot every 20 ms
    const { runner, logs } = useRunner({
      jobs: [job('catch-up', '*/5 * * * *')],
      urls: { health: target.url },
      startAt: start,
      speedUp,
    });

    await eventually(() => expect(target.forJob('catch-up').length).toBeGreaterThanOrEqual(1));
    // Block the event loop for 200 ms: about ten slots pass without a timer running.
    const blockedUntil = performance.now() + 200;
    while (performance.now() < blockedUntil);
    const end = new Date(runner.now().getTime() + 10 * MINUTE);

    const expected = slotTimes(start, end, 5 * MINUTE);
    await eventually(
      () => expect(target.forJob('catch-up').filter((r) => before(r.scheduleTime, end)).length).toBe(expected.length),
      { timeoutMs: 15_000 },
    );
    await runner.stop();
    // Each once (concurrent requests may arrive in any order), and fired in slot order.
    expect(
      target
        .forJob('catch-up')
        .map((r) => r.scheduleTime)
        .filter((t) => before(t, end))
        .sort(),
    ).toEqual(expected);
    expect(
      runner
        .fired()
        .map((s) => formatScheduleTime(s.scheduleTime))
        .filter((t) => before(t, end)),
    ).toEqual(expected);
    expect(runner.fired().some((s) => s.firedAt.getTime() - s.scheduleTime.getTime() >= 10 * MINUTE)).toBe(true);
    expect(
      logs.some(
        (e) =>
          e.message === 'scheduler runner fell behind; firing each missed slot once' && (e.fields.slots as number) >= 5,
      ),
    ).toBe(true);
  });

  it('runNow fires a job at once, outside its schedule', async () => {
    const target = await useTarget();
    const yearly = job('yearly', '0 0 1 1 *');
    const startAt = new Date('2024-06-01T12:34:56Z');
    const { runner } = useRunner({ jobs: [yearly], urls: { health: target.url }, startAt });

    const slot = await runner.runNow('yearly');
    expect(slot).toMatchObject({ job: 'yearly', trigger: 'manual', status: 'succeeded', delivery: 1 });
    expect(slot.scheduleTime.getTime() - startAt.getTime()).toBeGreaterThanOrEqual(0);
    expect(slot.scheduleTime.getTime() - startAt.getTime()).toBeLessThan(5_000);
    expect(target.forJob('yearly')).toHaveLength(1);
    expect(target.forJob('yearly')[0]!.scheduleTime).toBe(formatScheduleTime(slot.scheduleTime));
    expect(runner.fired()).toHaveLength(1);

    await expect(runner.runNow('no-such-job')).rejects.toBeInstanceOf(UnknownJobError);
    await runner.stop();
    await expect(runner.runNow('yearly')).rejects.toBeInstanceOf(RunnerStoppedError);
  });

  it('stop() aborts attempts in flight and leaves no timer behind', async () => {
    const target = await useTarget(() => 'hang');
    const baseline = timeoutsActive();
    const minutely = job('minutely', '* * * * *', { retry: { retryCount: 3, attemptDeadlineSeconds: 1800 } });
    const { runner } = useRunner({
      jobs: [minutely],
      urls: { health: target.url },
      startAt: new Date('2024-05-01T10:00:00Z'),
      speedUp: 60,
    });

    await eventually(() => expect(target.forJob('minutely').length).toBeGreaterThanOrEqual(2));
    expect(runner.pending().executions).toBeGreaterThanOrEqual(2);
    expect(timeoutsActive()).toBeGreaterThan(baseline);

    await runner.stop();
    expect(runner.pending()).toEqual({ timers: 0, executions: 0 });
    // Aborted requests release their sockets' timers a moment later, on the next ticks.
    await eventually(() => expect(timeoutsActive()).toBeLessThanOrEqual(baseline), { timeoutMs: 3_000 });
    const slots = runner.fired();
    expect(slots.length).toBeGreaterThanOrEqual(2);
    expect(slots.every((s) => s.status === 'cancelled' && s.reason === 'stopped')).toBe(true);
    const seen = target.requests.length;
    await runner.stop(); // idempotent
    expect(target.requests.length).toBe(seen);
  });
});
