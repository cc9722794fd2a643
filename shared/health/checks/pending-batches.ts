import type { CloudTasksClient } from '@google-cloud/tasks';
import { type PendingBatchCheck, type PendingBatchSource, describeError } from '../report';

/** The persist queue's tasks, read with `ListTasks` (basic view, every page). */
export function persistQueueBatches(
  tasks: Pick<CloudTasksClient, 'listTasksAsync'>,
  queuePath: string,
): PendingBatchSource {
  return {
    async createTimes() {
      const times: Date[] = [];
      for await (const task of tasks.listTasksAsync({ parent: queuePath, responseView: 'BASIC', pageSize: 1000 })) {
        const time = task.createTime ?? task.scheduleTime;
        if (time) times.push(new Date(Number(String(time.seconds ?? 0)) * 1000 + Math.floor((time.nanos ?? 0) / 1e6)));
      }
      return times;
    },
  };
}

export async function checkPendingBatches(
  source: PendingBatchSource,
  maxBatchAgeMs: number,
  now: Date,
): Promise<PendingBatchCheck> {
  try {
    const times = await source.createTimes();
    const oldest = times.length === 0 ? null : Math.min(...times.map((t) => t.getTime()));
    const oldestAgeMs = oldest === null ? null : Math.max(0, now.getTime() - oldest);
    return { ok: oldestAgeMs === null || oldestAgeMs <= maxBatchAgeMs, oldestAgeMs, count: times.length };
  } catch (error) {
    return {
      ok: false,
      oldestAgeMs: null,
      count: null,
      error: `the persist queue could not be listed: ${describeError(error)}`,
    };
  }
}
