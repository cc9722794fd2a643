import type { Request, Response } from 'express';

/** A client further behind than this is cut off; its EventSource reconnects and starts fresh. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Comment lines keep proxies and idle timeouts from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

/** The open Server-Sent Events streams of the dashboard, and sending to all of them. */
export class SseHub {
  private readonly clients = new Set<Response>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor() {
    this.keepAlive = setInterval(() => {
      for (const client of this.clients) client.write(': keep-alive\n\n');
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over the response as an event stream; `greet` writes what a new client starts from. */
  open(req: Request, res: Response, greet: (send: (event: string, data: unknown) => void) => void): void {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    // Reconnect quickly after a restart of the dashboard.
    res.write('retry: 1000\n\n');
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
    greet((event, data) => writeEvent(res, event, data));
  }

  broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const frame = formatEvent(event, data);
    for (const client of this.clients) {
      if (client.writableLength > MAX_BUFFERED_BYTES) {
        this.clients.delete(client);
        client.end();
        continue;
      }
      client.write(frame);
    }
  }

  close(): void {
    clearInterval(this.keepAlive);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}

function formatEvent(event: string, data: unknown): string {
  // JSON has no raw newlines, so one `data:` line carries the whole payload.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function writeEvent(res: Response, event: string, data: unknown): void {
  res.write(formatEvent(event, data));
}
