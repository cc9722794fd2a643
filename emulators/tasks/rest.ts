import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { fromProto3JSON, toProto3JSON } from 'proto3-json-serializer';
import * as protobuf from 'protobufjs';
import type { Logger } from '../../shared/log';
import { TasksEmulatorError, invalidArgument } from './errors';
import { protoIncludeDirs } from './proto';
import { type CloudTasksOperation, toServiceError } from './service';

/**
 * Cloud Tasks v2 over REST (HTTP/1.1 JSON), as gcloud, google-api-python-client and the Node
 * client with `fallback` speak it. Routes are built from the `google.api.http` annotations of
 * the shipped protos, bodies follow the proto3 JSON mapping (proto3-json-serializer), and each
 * call goes to the same operations the gRPC server uses, so both see one set of queues.
 */

/** proto-loader's object shapes (see proto.ts), which the operations take and return. */
const OPERATION_SHAPE: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};

/** Query parameters every Google REST API accepts that say nothing about the request message. */
const SYSTEM_PARAMETERS = new Set([
  'alt',
  '$alt',
  'key',
  'prettyPrint',
  'fields',
  'access_token',
  '$.xgafv',
  'quotaUser',
  'callback',
  'upload_protocol',
  'uploadType',
]);

/** HTTP status for each gRPC code, from google.rpc.Code. UNIMPLEMENTED is 400: see `statusFor`. */
const HTTP_STATUS: Record<number, number> = {
  [status.OK]: 200,
  [status.CANCELLED]: 499,
  [status.UNKNOWN]: 500,
  [status.INVALID_ARGUMENT]: 400,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.PERMISSION_DENIED]: 403,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.FAILED_PRECONDITION]: 400,
  [status.ABORTED]: 409,
  [status.OUT_OF_RANGE]: 400,
  [status.UNIMPLEMENTED]: 400,
  [status.INTERNAL]: 500,
  [status.UNAVAILABLE]: 503,
  [status.DATA_LOSS]: 500,
  [status.UNAUTHENTICATED]: 401,
};

interface RestRoute {
  httpMethod: string;
  pattern: RegExp;
  /** Request field path (camelCase) of each captured variable, in order. */
  variables: string[][];
  /** `*`: the whole body is the request; a field name: the body is that field; absent: no body. */
  body: string | undefined;
  operation: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
}

let cachedRoutes: RestRoute[] | undefined;

/** The REST routes of google.cloud.tasks.v2.CloudTasks, read from its `google.api.http` options. */
export function cloudTasksRestRoutes(): RestRoute[] {
  if (cachedRoutes) return cachedRoutes;
  const { includeDirs } = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    includeDirs.map((dir) => path.join(dir, target)).find((file) => fs.existsSync(file)) ?? target;
  root.loadSync('google/cloud/tasks/v2/cloudtasks.proto', { keepCase: false });
  root.resolveAll();
  const service = root.lookupService('google.cloud.tasks.v2.CloudTasks');
  const routes: RestRoute[] = [];
  for (const method of service.methodsArray) {
    const rule = httpRuleOf(method);
    if (!rule) continue;
    for (const binding of [rule, ...(rule.additional_bindings ?? [])]) {
      const verb = (['get', 'post', 'patch', 'put', 'delete'] as const).find(
        (candidate) => typeof binding[candidate] === 'string',
      );
      if (!verb) continue;
      const { pattern, variables } = compileTemplate(binding[verb]!);
      routes.push({
        httpMethod: verb.toUpperCase(),
        pattern,
        variables,
        body: binding.body,
        operation: method.name,
        requestType: method.resolvedRequestType!,
        responseType: method.resolvedResponseType!,
      });
    }
  }
  // Custom verbs (`...:pause`) first, so `GET {name=.../queues/*}` never swallows one.
  cachedRoutes = routes.sort((a, b) => Number(b.pattern.source.includes(':')) - Number(a.pattern.source.includes(':')));
  return cachedRoutes;
}

interface HttpRule {
  get?: string;
  post?: string;
  patch?: string;
  put?: string;
  delete?: string;
  body?: string;
  additional_bindings?: HttpRule[];
}

function httpRuleOf(method: protobuf.Method): HttpRule | undefined {
  for (const option of method.parsedOptions ?? []) {
    const rule = (option as Record<string, unknown>)['(google.api.http)'];
    if (rule) return rule as HttpRule;
  }
  return undefined;
}

/** `/v2/{parent=projects/*}/queues` → a RegExp capturing `parent`; `*` is one segment, `**` any. */
function compileTemplate(template: string): { pattern: RegExp; variables: string[][] } {
  const variables: string[][] = [];
  let source = '';
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    if (open < 0) {
      source += escapeRegExp(rest);
      break;
    }
    source += escapeRegExp(rest.slice(0, open));
    const close = rest.indexOf('}', open);
    const [field, segmentPattern = '*'] = rest.slice(open + 1, close).split('=') as [string, string | undefined];
    variables.push(field.split('.').map(camelCase));
    source += `(${segmentPattern
      .split('/')
      .map((segment) => (segment === '**' ? '.+' : segment === '*' ? '[^/]+' : escapeRegExp(segment)))
      .join('/')})`;
    rest = rest.slice(close + 1);
  }
  return { pattern: new RegExp(`^${source}$`), variables };
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const camelCase = (name: string) => name.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

/**
 * The HTTP/1.1 handler: matches a route, builds the request message from path, query and body,
 * calls the operation, and answers proto3 JSON or Google's error JSON.
 */
export function cloudTasksRestHandler(operations: Record<string, CloudTasksOperation>, logger: Logger) {
  const routes = cloudTasksRestRoutes();
  return (req: IncomingMessage, res: ServerResponse): void => {
    void serve(req, res, routes, operations, logger);
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  routes: RestRoute[],
  operations: Record<string, CloudTasksOperation>,
  logger: Logger,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  const method = (req.method ?? 'GET').toUpperCase();
  let operation = `${method} ${url.pathname}`;
  try {
    const body = await readBody(req);
    const matched = matchRoute(routes, method, url.pathname);
    if (!matched) throw unservedRoute(method, url.pathname);
    const { route, values } = matched;
    operation = route.operation;
    const handle = operations[route.operation];
    if (!handle) throw unservedRoute(method, url.pathname);
    const request = requestMessage(route, values, url.searchParams, body);
    const response = await handle(request);
    const json = toProto3JSON(route.responseType.fromObject((response ?? {}) as Record<string, unknown>));
    send(res, 200, json);
  } catch (error) {
    const { code, details } = toServiceError(error, operation, logger);
    send(res, statusFor(code), { error: { code: statusFor(code), message: details, status: status[code] } });
  }
}

/**
 * gcloud (apitools) retries 5xx, so an UNIMPLEMENTED answered as 501 would be retried for a
 * while; 400 fails at once, and the `status` field still says UNIMPLEMENTED to clients that read it.
 */
function statusFor(code: status): number {
  return HTTP_STATUS[code] ?? 500;
}

function unservedRoute(method: string, pathname: string): TasksEmulatorError {
  return new TasksEmulatorError(
    status.UNIMPLEMENTED,
    `The Super Spine Cloud Tasks emulator does not serve ${method} ${pathname}: it serves the google.cloud.tasks.v2.CloudTasks ` +
      'REST methods under /v2/projects/*/locations/*/queues (and gRPC on the same port).',
  );
}

function matchRoute(
  routes: RestRoute[],
  method: string,
  pathname: string,
): { route: RestRoute; values: string[] } | undefined {
  for (const route of routes) {
    if (route.httpMethod !== method) continue;
    const match = route.pattern.exec(pathname);
    if (match) return { route, values: match.slice(1).map(decodePathValue) };
  }
  return undefined;
}

function decodePathValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw invalidArgument(`The path segment "${value}" is not valid percent-encoding.`);
  }
}

/** Path variables, then the body, then query parameters, as one proto3 JSON request message, converted to the operations' shape. */
function requestMessage(route: RestRoute, values: string[], query: URLSearchParams, body: Buffer): unknown {
  let json: Record<string, unknown> = {};
  if (body.length > 0 && route.body !== undefined) {
    const parsed = parseJson(body);
    if (route.body === '*') json = parsed;
    else json[camelCase(route.body)] = parsed;
  } else if (body.length > 0 && body.toString('utf8').trim() !== '' && body.toString('utf8').trim() !== '{}') {
    throw invalidArgument(`${route.operation} takes no request body.`);
  }
  route.variables.forEach((fieldPath, index) => setPath(json, fieldPath, values[index]!));
  for (const [name, value] of query) {
    if (SYSTEM_PARAMETERS.has(name)) continue;
    const fieldPath = name.split('.').map(camelCase);
    setPath(json, fieldPath, queryValue(route.requestType, fieldPath, value, name));
  }
  try {
    const message = fromProto3JSON(route.requestType, json as never);
    if (!message) throw new Error('the request is empty');
    return route.requestType.toObject(message, OPERATION_SHAPE);
  } catch (error) {
    if (error instanceof TasksEmulatorError) throw error;
    throw invalidArgument(`Invalid JSON payload for ${route.operation}: ${(error as Error).message}`);
  }
}

/** A query parameter's value typed by the field it names (numbers and booleans arrive as text). */
function queryValue(type: protobuf.Type, fieldPath: string[], value: string, name: string): unknown {
  let current: protobuf.Type = type;
  let field: protobuf.Field | undefined;
  for (const part of fieldPath) {
    field = current.fields[part] ?? current.fieldsArray.find((candidate) => candidate.name === part);
    if (!field)
      throw invalidArgument(`Invalid JSON payload received. Unknown name "${name}": Cannot bind query parameter.`);
    if (field.resolvedType instanceof protobuf.Type) current = field.resolvedType;
  }
  switch (field?.type) {
    case 'bool':
      if (value !== 'true' && value !== 'false')
        throw invalidArgument(`Invalid value at '${name}' (TYPE_BOOL), "${value}"`);
      return value === 'true';
    case 'int32':
    case 'uint32':
    case 'sint32':
    case 'fixed32':
    case 'sfixed32':
    case 'double':
    case 'float':
      if (!/^-?\d+(\.\d+)?$/.test(value))
        throw invalidArgument(`Invalid value at '${name}' (${field.type.toUpperCase()}), "${value}"`);
      return Number(value);
    default:
      return value;
  }
}

function setPath(target: Record<string, unknown>, fieldPath: string[], value: unknown): void {
  let current = target;
  for (const part of fieldPath.slice(0, -1)) {
    const next = current[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) current[part] = {};
    current = current[part] as Record<string, unknown>;
  }
  current[fieldPath.at(-1)!] = value;
}

function parseJson(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw invalidArgument(`Invalid JSON payload received. ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument('Invalid JSON payload received. The body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
