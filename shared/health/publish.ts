import type { Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { HEALTH_REPORT_PREFIX, type HealthReport, LATEST_HEALTH_REPORT } from './report';

/** Writes the report to `health/{checkedAt}.json`, then `health/latest.json`, in `bucket`. */
export async function storeHealthReport(storage: Storage, bucket: string, report: HealthReport): Promise<void> {
  const body = JSON.stringify(report);
  const options = { resumable: false, contentType: 'application/json' };
  await storage.bucket(bucket).file(`${HEALTH_REPORT_PREFIX}${report.checkedAt}.json`).save(body, options);
  await storage.bucket(bucket).file(LATEST_HEALTH_REPORT).save(body, options);
}

/** Publishes the report as JSON, with `status` and `checkedAt` as attributes (for filtered subscriptions). */
export async function publishHealthReport(topic: Pick<Topic, 'publishMessage'>, report: HealthReport): Promise<string> {
  return topic.publishMessage({
    data: Buffer.from(JSON.stringify(report)),
    attributes: { status: report.status, checkedAt: report.checkedAt },
  });
}

/** The health function's HTTP answer, read as its handler writes it (functions/health/handler.ts). */
export interface HealthAnswer {
  /** 200 (healthy) or 503 (unhealthy): a report, stored and published. */
  report?: HealthReport;
  /** 500 with a report the checks made but that could not be stored or published. */
  undeliveredReport?: HealthReport;
  /** Why there is no deliverable report: the function's error message, or what was wrong with the answer. */
  error?: string;
}

export function readHealthAnswer(status: number, text: string): HealthAnswer {
  let body: (HealthReport & { report?: HealthReport; error?: { message?: string } }) | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: `answered ${status} with a body that is not JSON: ${text.slice(0, 200)}` };
  }
  if (status === 200 || status === 503) return { report: body! };
  return {
    ...(body?.report ? { undeliveredReport: body.report } : {}),
    error: `failed (${status}): ${body?.error?.message ?? text.slice(0, 200)}`,
  };
}
