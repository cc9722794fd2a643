/**
 * The dashboard: a small HTTP server (express) that serves the page in `public/`, a JSON API
 * over the mesh's state through `SpineStorage`, and a Server-Sent Events stream of what happens
 * in the mesh (its own subscriptions on the topics), the health function's reports and the
 * agents' liveness.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SupervisionStatus } from '../cli/functions-supervisor';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { InvalidArgumentError, SpineError } from '../shared/errors';
import {
  checkAgents,
  loadHealthSettings,
  SYSTEM_NETWORKS,
  type AgentHealth,
  type HealthReport,
} from '../shared/health';
import { validateContactId, validateGroupId, validateNetworkId, validateSnapshotId } from '../shared/ids';
import { createLogger, type Logger } from '../shared/log';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import { DeadLetterStore } from '../shared/mesh/dead-letters';
import { SpineStorage } from '../shared/mesh/spine-storage';
import { loadSettings, parseSetting } from '../shared/settings';
import { AGENTS_GROUP, REGISTRY_NETWORK } from '../shared/system';
import { defineTopology } from '../shared/topology';
import { EventFeed, type EventBatch } from './event-feed';
import { HealthMonitor } from './health-monitor';
import { groupView, historyEntryView, networkView, snapshotView } from './network-view';
import { SseHub } from './sse';
import { openTopicTap, type TopicTap } from './topic-tap';

export interface DashboardOptions {
  /** The mesh's client environment (what `npm start` writes to `.spine/mesh.env`). */
  env: Record<string, string>;
  /** 0 (default) takes a free port. */
  port?: number;
  /** Default 127.0.0.1: the dashboard can restore snapshots, so it is not for the network. */
  host?: string;
  logger?: Logger;
  /** How often the health function is run (default 30 s; 0: only when the page asks). */
  healthIntervalMs?: number;
  /** The API's token; default SPINE_DASHBOARD_TOKEN of `env`, else a random one per start. */
  token?: string;
  /** The functions process as `spine dev` supervises it, shown beside the health report. */
  supervision?: () => SupervisionStatus;
}

export interface Dashboard {
  /** The page with its token (`…/?token=…`): what `npm start` prints; the page keeps the token. */
  url: string;
  /** The server's root, without the token. */
  baseUrl: string;
  /** Every `/api` route and the event stream need it: `Authorization: Bearer <token>` or `?token=`. */
  token: string;
  /** Closes the streams and the server and deletes the dashboard's subscriptions. */
  stop(): Promise<void>;
}

const PUBLIC_DIR = path.join(__dirname, 'public');
/** Liveness ages with time alone, so the agents are looked at again this often even without heartbeats. */
const AGENTS_REFRESH_MS = 10_000;
/** Heartbeats of many agents in a burst make one registry read. */
const AGENTS_DEBOUNCE_MS = 200;
const MAX_GROUPS_PER_REQUEST = 50;
/** History entries per page unless the page asks for another number. */
const HISTORY_PAGE = 50;
const LOCAL_HOSTNAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

interface AgentsView {
  agents: AgentHealth[];
  offlineAfterMs: number;
  error?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const log = options.logger ?? createLogger('dashboard');
  const host = options.host ?? '127.0.0.1';
  const settings = loadSettings(options.env);
  const defaultOfflineAfterMs = loadHealthSettings(options.env).offlineAfterMs;
  const topology = defineTopology({
    projectId: settings.projectId,
    prefix: settings.topicPrefix,
    bucket: settings.bucket,
  });
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const token =
    options.token ?? parseSetting('dashboardToken', { env: options.env }) ?? randomBytes(24).toString('base64url');
  if (!/^[A-Za-z0-9_-]{16,200}$/.test(token))
    throw new InvalidArgumentError('the dashboard token must be 16 to 200 letters, digits, "-" or "_"');

  const spine = SpineStorage.fromEnv(options.env, { writerId: 'dashboard', logger: log.child({ part: 'client' }) });
  const pubsub = createPubSubClient(settings);
  const deadLetters = new DeadLetterStore(createStorageClient(settings), settings.bucket);
  const hub = new SseHub();

  let agentsView: AgentsView = { agents: [], offlineAfterMs: defaultOfflineAfterMs };
  let agentsTimer: NodeJS.Timeout | undefined;
  let agentsDebounce: NodeJS.Timeout | undefined;
  let agentsReading: Promise<void> | undefined;
  const readAgents = async () => {
    const offlineAfterMs = health.current().report?.thresholds.offlineAfterMs ?? defaultOfflineAfterMs;
    // The same reading of the registry as the health job's, so page and report agree.
    const { agents, error } = await checkAgents(spine, offlineAfterMs, new Date(), log);
    agentsView = { agents, offlineAfterMs, ...(error ? { error } : {}) };
    hub.broadcast('agents', agentsView);
  };
  const refreshAgents = () => {
    agentsReading ??= readAgents()
      .catch((error: unknown) => log.warn('dashboard could not read the agent registry', { error }))
      .finally(() => (agentsReading = undefined));
  };

  const withSupervision = <T extends object>(view: T) =>
    options.supervision ? { ...view, functionsProcess: options.supervision() } : view;
  const health = new HealthMonitor({
    healthUrl: settings.functionUrls.health,
    intervalMs: options.healthIntervalMs ?? 30_000,
    logger: log,
    onChange: (view) => hub.broadcast('health', withSupervision(view)),
  });
  const feed = new EventFeed({
    pubsub,
    topology,
    deadLetters,
    runId,
    logger: log,
    onBatch: (batch: EventBatch) => {
      hub.broadcast('events', batch);
      if (
        batch.events.some(
          (e) => e.kind === 'group-change' && e.networkId === REGISTRY_NETWORK && e.groupId === AGENTS_GROUP,
        )
      ) {
        clearTimeout(agentsDebounce);
        agentsDebounce = setTimeout(refreshAgents, AGENTS_DEBOUNCE_MS);
      }
    },
  });

  let healthTap: TopicTap | undefined;
  let server: Server | undefined;
  const release = async () => {
    await health.stop();
    clearInterval(agentsTimer);
    clearTimeout(agentsDebounce);
    hub.close();
    if (server?.listening) {
      const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
      server.closeAllConnections();
      await closing;
    }
    await agentsReading;
    await Promise.all([feed.close(), healthTap?.close()]);
    await spine.close();
    await pubsub.close();
  };

  try {
    await feed.start();
    healthTap = await openTopicTap(pubsub, topology, {
      topic: topology.topics.health.name,
      name: `${topology.prefix}dashboard-${runId}-health`,
      logger: log,
      onMessage: (message) => health.offer(JSON.parse(message.data.toString('utf8')) as HealthReport),
    });
    await readAgents().catch((error: unknown) => log.warn('dashboard could not read the agent registry', { error }));

    const app = createApp({
      spine,
      hub,
      feed,
      health,
      withSupervision,
      agents: () => agentsView,
      host,
      token,
      log,
      overview: { projectId: settings.projectId, prefix: topology.prefix, bucket: settings.bucket },
    });
    server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(options.port ?? 0, host, () => {
        server!.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await release().catch(() => undefined);
    throw new Error(`the dashboard could not start on ${host}:${options.port ?? 0}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  health.start();
  agentsTimer = setInterval(refreshAgents, AGENTS_REFRESH_MS);
  agentsTimer.unref();

  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const url = `${baseUrl}?token=${token}`;
  log.info('dashboard ready', { url: baseUrl, subscriptions: [...feed.subscriptionNames, healthTap.name] });
  let stopping: Promise<void> | undefined;
  return {
    url,
    baseUrl,
    token,
    stop: () => (stopping ??= release()),
  };
}

interface AppDependencies {
  spine: SpineStorage;
  hub: SseHub;
  feed: EventFeed;
  health: HealthMonitor;
  withSupervision: <T extends object>(view: T) => T;
  agents(): AgentsView;
  host: string;
  token: string;
  log: Logger;
  overview: { projectId: string; prefix: string; bucket: string };
}

function createApp(deps: AppDependencies) {
  const { spine, hub, feed, health, withSupervision } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    // Values are shown as text; this is the second line of defence should one ever be parsed as markup.
    res.set({
      'Content-Security-Policy':
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    next();
  });
  app.use('/api', guardLocalAccess(deps.host));
  app.use('/api', requireToken(deps.token));
  app.use(express.json({ limit: '16kb' }));
  app.use(express.static(PUBLIC_DIR, { index: 'index.html' }));

  app.get('/api/overview', (_req, res) => {
    res.json(deps.overview);
  });

  app.get('/api/stream', (req, res) => {
    hub.open(req, res, (send) => {
      send('hello', { ...deps.overview, events: feed.recent() });
      send('health', withSupervision(health.current()));
      send('agents', deps.agents());
    });
  });

  app.get('/api/networks', async (_req, res) => {
    const ids = (await spine.listNetworks()).sort();
    res.json({ networks: ids.map((id) => ({ id, system: SYSTEM_NETWORKS.includes(id) })) });
  });

  app.get('/api/networks/:network', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const state = await spine.loadNetworkState(networkId);
    if (!state) throw new HttpError(404, `network ${JSON.stringify(networkId)} does not exist`);
    res.json(networkView(networkId, state));
  });

  // Only the groups that changed, so a busy network is not read whole for every change.
  app.get('/api/networks/:network/groups', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const raw = req.query.id;
    const ids = (Array.isArray(raw) ? raw : [raw]).filter((id): id is string => typeof id === 'string');
    if (ids.length === 0 || ids.length > MAX_GROUPS_PER_REQUEST)
      throw new HttpError(400, `give 1 to ${MAX_GROUPS_PER_REQUEST} group ids as ?id=…`);
    const groups = await Promise.all(
      ids.map(async (groupId) => {
        const state = await spine.loadGroupState(networkId, validateGroupId(groupId));
        return state ? groupView(state) : { id: groupId, deleted: true };
      }),
    );
    res.json({ networkId, groups });
  });

  app.get('/api/networks/:network/snapshots', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    res.json({ snapshots: (await spine.listSnapshots(networkId)).map(snapshotView) });
  });

  app.post('/api/networks/:network/snapshots', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const label = (req.body as { label?: unknown } | undefined)?.label;
    if (label !== undefined && typeof label !== 'string') throw new HttpError(400, 'label must be a string');
    const snapshotId = await spine.saveSnapshot(networkId, label === '' ? undefined : label);
    res.status(201).json({ snapshotId });
  });

  app.post('/api/networks/:network/snapshots/:snapshot/restore', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const snapshotId = validateSnapshotId(req.params.snapshot);
    await spine.restoreSnapshot(networkId, snapshotId);
    res.json({ networkId, snapshotId, restored: true });
  });

  // A network's timeline, a group's or a contact's history: newest first, a page at a time.
  app.get('/api/networks/:network/history', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const groupId = queryText(req.query.group);
    const contactId = queryText(req.query.contact);
    if (contactId !== undefined && groupId === undefined) throw new HttpError(400, 'a contact needs its ?group=');
    const limit = queryText(req.query.limit);
    const cursor = queryText(req.query.cursor);
    const page = await spine.history(
      networkId,
      groupId === undefined ? undefined : validateGroupId(groupId),
      contactId === undefined ? undefined : validateContactId(contactId),
      {
        limit: limit === undefined ? HISTORY_PAGE : Number(limit),
        ...(cursor !== undefined ? { cursor } : {}),
      },
    );
    res.json({
      networkId,
      entries: page.entries.map(historyEntryView),
      ...(page.cursor ? { cursor: page.cursor } : {}),
    });
  });

  // Point-in-time restore: the network as it was at `at`, in place or into a new network `as`.
  app.post('/api/networks/:network/restore', async (req, res) => {
    const networkId = validateNetworkId(req.params.network);
    const body = (req.body ?? {}) as { at?: unknown; as?: unknown };
    if (typeof body.at !== 'string') throw new HttpError(400, 'give the instant to restore as "at" (ISO 8601)');
    if (body.as !== undefined && typeof body.as !== 'string') throw new HttpError(400, '"as" must be a network id');
    const summary = await spine.restoreNetwork(networkId, {
      at: body.at,
      ...(body.as ? { as: validateNetworkId(body.as) } : {}),
    });
    res.json({
      sourceNetworkId: summary.sourceNetworkId,
      networkId: summary.networkId,
      at: summary.at.toISOString(),
      ...(summary.snapshot
        ? { snapshot: { id: summary.snapshot.id, createdAt: summary.snapshot.createdAt.toISOString() } }
        : {}),
      eventsApplied: summary.eventsApplied,
      groups: summary.groups,
    });
  });

  app.get('/api/health', (_req, res) => {
    res.json(withSupervision(health.current()));
  });

  app.post('/api/health/check', async (_req, res) => {
    res.json(withSupervision(await health.check()));
  });

  app.get('/api/agents', (_req, res) => {
    res.json(deps.agents());
  });

  app.use('/api', (_req, _res, next) => next(new HttpError(404, 'no such endpoint')));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, code, message } = describeError(error);
    if (status >= 500) deps.log.error('dashboard request failed', { error });
    if (res.headersSent) return res.end();
    res.status(status).json({ error: { code, message } });
  });
  return app;
}

/**
 * The API changes state (snapshot restore), so a web page elsewhere must not be able to drive
 * it through the browser: the Host must be this machine (no DNS rebinding), a POST must be JSON
 * (a cross-site form cannot send that without a preflight this server never grants) and come
 * from this origin when the browser says where it comes from.
 */
function guardLocalAccess(boundHost: string) {
  const anyHost = boundHost === '0.0.0.0' || boundHost === '::';
  return (req: Request, _res: Response, next: NextFunction) => {
    const hostHeader = req.headers.host ?? '';
    const hostname = hostHeader.replace(/:\d+$/, '');
    if (!anyHost && !LOCAL_HOSTNAMES.has(hostname) && hostname !== boundHost)
      return next(new HttpError(403, `host ${JSON.stringify(hostHeader)} is not this dashboard`));
    if (req.method === 'POST') {
      if (!req.is('application/json')) return next(new HttpError(415, 'POST bodies must be application/json'));
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${hostHeader}`)
        return next(new HttpError(403, `requests from ${origin} are not allowed`));
    }
    next();
  };
}

/**
 * The API reads every network and restores snapshots, so it answers only to whoever has the
 * token `npm start` printed (as notebook servers do): a header, or `?token=` where a header
 * cannot be set (EventSource). The page and its assets need none.
 */
function requireToken(token: string) {
  const expected = createHash('sha256').update(token).digest();
  return (req: Request, res: Response, next: NextFunction) => {
    const header = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const query = typeof req.query.token === 'string' ? req.query.token : undefined;
    const given = header ?? query;
    // Hashes compared in constant time, so the answer's timing tells nothing of the token.
    if (given !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), expected)) return next();
    res.set('WWW-Authenticate', 'Bearer');
    next(
      new HttpError(
        401,
        given === undefined
          ? 'the dashboard API needs its token: open the URL npm start printed (…/?token=…)'
          : 'the dashboard token is wrong',
      ),
    );
  };
}

/** A single query parameter as text; absent or empty is `undefined`, repeated is refused. */
function queryText(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new HttpError(400, 'a query parameter was given twice or in an unknown form');
  return value;
}

function describeError(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof HttpError) return { status: error.status, code: String(error.status), message: error.message };
  if (error instanceof SpineError) {
    const status: Record<string, number> = {
      INVALID_ID: 400,
      INVALID_ARGUMENT: 400,
      NETWORK_NOT_FOUND: 404,
      SNAPSHOT_NOT_FOUND: 404,
      NOT_FOUND: 404,
      CORRUPT_DATA: 502,
      UNAVAILABLE: 503,
      STILL_APPLYING: 202,
      TIMEOUT: 504,
    };
    return { status: status[error.code] ?? 500, code: error.code, message: error.message };
  }
  const parsed = error as { status?: number; type?: string; message?: string };
  // express.json's own errors (bad JSON, too large) carry their status.
  if (typeof parsed.status === 'number' && parsed.status >= 400 && parsed.status < 500)
    return {
      status: parsed.status,
      code: parsed.type ?? String(parsed.status),
      message: parsed.message ?? 'bad request',
    };
  return { status: 500, code: 'INTERNAL', message: (error as Error)?.message ?? String(error) };
}
