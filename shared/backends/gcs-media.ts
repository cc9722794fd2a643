import http from 'node:http';
import https from 'node:https';
import type { File, Storage } from '@google-cloud/storage';

/** An object's bytes with the generation they belong to. */
export interface MediaObject {
  data: Buffer;
  generation: string;
}

/** What a failed download rejects with: `code` is the HTTP status (or a socket error code), as the client's errors have it. */
export class MediaDownloadError extends Error {
  constructor(
    message: string,
    readonly code: number | string,
  ) {
    super(message);
    this.name = 'MediaDownloadError';
  }
}

/** A download that hangs this long fails (ETIMEDOUT, retried like a reset connection). */
const DOWNLOAD_TIMEOUT_MS = 60_000;

/**
 * Object downloads as one plain GET `…/o/{name}?alt=media` each, on keep-alive connections, the
 * generation taken from the `x-goog-generation` header. The official client's `createReadStream`
 * costs about half a millisecond of CPU per object in its stream pipeline, retry wrapper and hash
 * validation; a network load reads thousands of small objects, so that was most of its time.
 * Authorization comes from the client's own auth (none on an emulator endpoint, as the client does).
 */
export class MediaDownloader {
  private readonly baseUrl: URL;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly authenticated: boolean;

  constructor(private readonly storage: Storage) {
    // The client's own JSON API base: `{apiEndpoint}/storage/v1`, or STORAGE_EMULATOR_HOST as it is.
    this.baseUrl = new URL(`${storage.baseUrl.replace(/\/+$/, '')}/`);
    this.transport = this.baseUrl.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true });
    const { customEndpoint, useAuthWithCustomEndpoint } = storage as unknown as {
      customEndpoint?: boolean;
      useAuthWithCustomEndpoint?: boolean;
    };
    this.authenticated = !customEndpoint || useAuthWithCustomEndpoint === true;
  }

  /** The file's bytes and generation; null when there is no such object. */
  async download(file: File): Promise<MediaObject | null> {
    const bucket = file.bucket.name;
    const name = file.name;
    const url = new URL(`b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}?alt=media`, this.baseUrl);
    const headers = await this.headers(url.href);
    return new Promise<MediaObject | null>((resolve, reject) => {
      const request = this.transport.get(url, { agent: this.agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const body = Buffer.concat(chunks);
          if (status === 404) return resolve(null);
          if (status !== 200) return reject(new MediaDownloadError(errorMessage(status, body, bucket, name), status));
          const generation = response.headers['x-goog-generation'];
          if (typeof generation !== 'string')
            return reject(new Error(`download of gs://${bucket}/${name} carried no x-goog-generation header`));
          resolve({ data: body, generation });
        });
      });
      request.setTimeout(DOWNLOAD_TIMEOUT_MS, () =>
        request.destroy(new MediaDownloadError(`download of gs://${bucket}/${name} timed out`, 'ETIMEDOUT')),
      );
      request.on('error', reject);
    });
  }

  /** Closes idle connections; downloads in flight finish. */
  close(): void {
    this.agent.destroy();
  }

  private async headers(url: string): Promise<Record<string, string>> {
    if (!this.authenticated) return {};
    const authorized = await this.storage.authClient.authorizeRequest({ url, headers: {} });
    const headers: Record<string, string> = {};
    new Headers(authorized.headers as ConstructorParameters<typeof Headers>[0]).forEach(
      (value, key) => (headers[key] = value),
    );
    return headers;
  }
}

/** The service's error message from a JSON error body, else the status. */
function errorMessage(status: number, body: Buffer, bucket: string, name: string): string {
  let detail = `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') detail = parsed.error.message;
  } catch {
    if (body.length > 0) detail = body.toString('utf8').slice(0, 300);
  }
  return `download of gs://${bucket}/${name} failed: ${detail}`;
}
