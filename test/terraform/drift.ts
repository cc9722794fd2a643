import { pushEndpoint } from '../../shared/provision';
import { loadSettings } from '../../shared/settings';
import { allSubscriptions, allTopics, defineTopology, type Topology } from '../../shared/topology';
import { durationSeconds, Ref, Template, type TerraformConfig, TerraformError, type ResourceInstance, type Value } from './terraform-config';

/**
 * Compares a Terraform configuration with the topology in code and lists every difference, each
 * naming the resource, the setting and both values. An empty list means no drift.
 */

/** Buckets the deployment needs that are not part of the mesh's topology, with the reason. */
export const DEPLOYMENT_ONLY_BUCKETS: Record<string, string> = {
  functions_source: 'holds the packaged functions Cloud Build deploys from',
};

/** The topology the deployed functions compute: their environment, through loadSettings, into defineTopology. */
export async function topologyOfDeployment(config: TerraformConfig): Promise<Topology> {
  const env: Record<string, string> = {};
  for (const name of ['GOOGLE_CLOUD_PROJECT', 'SPINE_TOPIC_PREFIX', 'SPINE_BUCKET', 'SPINE_PERSIST_ON']) {
    const value = await config.evaluate(`\${local.function_env.${name}}`, {}, `local.function_env.${name}`);
    if (typeof value !== 'string') throw new TerraformError(`local.function_env.${name} is not a known string: ${String(value)}`);
    env[name] = value;
  }
  const settings = loadSettings(env);
  return defineTopology({ projectId: settings.projectId, prefix: settings.topicPrefix, bucket: settings.bucket, persistIntervalMs: settings.intervalMs });
}

type Differences = string[];

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function check(differences: Differences, what: string, setting: string, inTerraform: unknown, inCode: unknown): void {
  if (!same(inTerraform, inCode)) differences.push(`${what}: ${setting} is ${JSON.stringify(inTerraform)} in Terraform, ${JSON.stringify(inCode)} in code`);
}

/** Instances keyed by their `name` argument; a name that is not a known string throws. */
async function byName(config: TerraformConfig, type: string): Promise<Map<string, ResourceInstance>> {
  const result = new Map<string, ResourceInstance>();
  for (const instance of await config.instances(type)) {
    const name = await config.attribute(instance, 'name');
    if (typeof name !== 'string') throw new TerraformError(`${instance.address}.name is not known at plan time`);
    if (result.has(name)) throw new TerraformError(`${type} ${name} is declared twice`);
    result.set(name, instance);
  }
  return result;
}

function compareNames(differences: Differences, kind: string, inTerraform: Iterable<string>, inCode: Iterable<string>): string[] {
  const terraform = new Set(inTerraform);
  const code = new Set(inCode);
  for (const name of code) if (!terraform.has(name)) differences.push(`${kind} ${name} is in the code but not in Terraform`);
  for (const name of terraform) if (!code.has(name)) differences.push(`${kind} ${name} is in Terraform but not in the code`);
  return [...code].filter((name) => terraform.has(name));
}

/** The name of the resource a reference points at (`google_pubsub_topic.x.id` → that topic's name). */
async function referencedName(config: TerraformConfig, value: Value | undefined, type: string, where: string): Promise<string> {
  if (typeof value === 'string') return value;
  if (!(value instanceof Ref) || !value.address.startsWith(`${type}.`)) throw new TerraformError(`${where}: ${String(value)} does not refer to a ${type}`);
  const instance = (await config.instances(type)).find((candidate) => candidate.address === value.address);
  if (!instance) throw new TerraformError(`${where}: ${value.address} is not declared`);
  const name = await config.attribute(instance, 'name');
  if (typeof name !== 'string') throw new TerraformError(`${value.address}.name is not known at plan time`);
  return name;
}

/** The function a value refers to through `google_cloudfunctions2_function.function["x"].<attribute>`, or undefined. */
function referencedFunction(value: Value | undefined, attribute: string): string | undefined {
  if (!(value instanceof Ref) || value.attribute !== attribute) return undefined;
  return /^google_cloudfunctions2_function\.function\["([a-z]+)"\]$/.exec(value.address)?.[1];
}

/** The account id of the service account a value (an email reference) names. */
async function serviceAccountId(config: TerraformConfig, value: Value | undefined, where: string): Promise<string> {
  if (!(value instanceof Ref) || !value.address.startsWith('google_service_account.') || value.attribute !== 'email') {
    throw new TerraformError(`${where}: ${String(value)} is not a service account's email`);
  }
  const instance = (await config.instances('google_service_account')).find((candidate) => candidate.address === value.address);
  if (!instance) throw new TerraformError(`${where}: ${value.address} is not declared`);
  const id = await config.attribute(instance, 'account_id');
  if (typeof id !== 'string') throw new TerraformError(`${value.address}.account_id is not known at plan time`);
  return id;
}

async function optionalSeconds(config: TerraformConfig, instance: ResourceInstance, attribute: string): Promise<number | undefined> {
  const value = await config.attribute(instance, attribute);
  if (value === undefined || value === '') return undefined;
  return durationSeconds(value, `${instance.address}.${attribute}`);
}

export interface DriftOptions {
  /** Account id of the service account push subscriptions, tasks and jobs must authenticate as. */
  invokers: { push: string; tasks: string; jobs: string };
}

export async function driftBetween(config: TerraformConfig, topology: Topology, options: DriftOptions): Promise<Differences> {
  const differences: Differences = [];

  // ---- topics
  const topics = await byName(config, 'google_pubsub_topic');
  const codeTopics = new Map(allTopics(topology).map((spec) => [spec.name, spec]));
  for (const name of compareNames(differences, 'topic', topics.keys(), codeTopics.keys())) {
    check(differences, `topic ${name}`, 'message_retention_duration', await optionalSeconds(config, topics.get(name)!, 'message_retention_duration'), codeTopics.get(name)!.messageRetentionSeconds);
  }

  // ---- subscriptions
  const subscriptions = await byName(config, 'google_pubsub_subscription');
  // The archive's subscription is created by the local archiver, not provisioned: compared here all the same.
  const codeSubscriptions = new Map([...allSubscriptions(topology), topology.archive.subscription].map((spec) => [spec.name, spec]));
  for (const name of compareNames(differences, 'subscription', subscriptions.keys(), codeSubscriptions.keys())) {
    const tf = subscriptions.get(name)!;
    const spec = codeSubscriptions.get(name)!;
    const what = `subscription ${name}`;
    check(differences, what, 'topic', await referencedName(config, await config.attribute(tf, 'topic'), 'google_pubsub_topic', `${tf.address}.topic`), spec.topic);
    check(differences, what, 'ack_deadline_seconds', await config.attribute(tf, 'ack_deadline_seconds'), spec.ackDeadlineSeconds);
    check(differences, what, 'enable_message_ordering', (await config.attribute(tf, 'enable_message_ordering')) ?? false, spec.enableMessageOrdering);
    check(differences, what, 'filter', (await config.attribute(tf, 'filter')) ?? null, spec.filter ?? null);
    check(differences, what, 'message_retention_duration', await optionalSeconds(config, tf, 'message_retention_duration'), spec.messageRetentionSeconds);
    check(differences, what, 'retry_policy.minimum_backoff', await optionalSeconds(config, tf, 'retry_policy.0.minimum_backoff'), spec.retryPolicy.minimumBackoffSeconds);
    check(differences, what, 'retry_policy.maximum_backoff', await optionalSeconds(config, tf, 'retry_policy.0.maximum_backoff'), spec.retryPolicy.maximumBackoffSeconds);
    const deadLetterTopic = await config.attribute(tf, 'dead_letter_policy.0.dead_letter_topic');
    check(
      differences,
      what,
      'dead_letter_policy',
      deadLetterTopic === undefined
        ? null
        : {
            topic: await referencedName(config, deadLetterTopic, 'google_pubsub_topic', `${tf.address}.dead_letter_policy`),
            maxDeliveryAttempts: await config.attribute(tf, 'dead_letter_policy.0.max_delivery_attempts'),
          },
      spec.deadLetterPolicy ?? null,
    );
    // An empty ttl is "never expires"; without the block Pub/Sub's default (31 days) would apply.
    if (!tf.block.expiration_policy) differences.push(`${what}: expiration_policy is missing in Terraform (Pub/Sub would expire it after 31 days idle)`);
    else check(differences, what, 'expiration_policy.ttl', await optionalSeconds(config, tf, 'expiration_policy.0.ttl'), spec.expirationTtlSeconds);

    const endpoint = await config.attribute(tf, 'push_config.0.push_endpoint');
    if (endpoint === undefined) {
      check(differences, what, 'push target', null, spec.pushTo ?? null);
      continue;
    }
    const [base, ...rest] = endpoint instanceof Template ? endpoint.parts : [endpoint];
    const target = referencedFunction(base as Value, 'service_config[0].uri');
    check(differences, what, 'push target', target ?? String(endpoint), spec.pushTo ?? null);
    check(differences, what, 'push path', rest.join(''), pushEndpoint('', topology.projectId, spec.topic));
    const oidc = await config.attribute(tf, 'push_config.0.oidc_token.0.service_account_email');
    if (oidc === undefined) differences.push(`${what}: push_config has no oidc_token, so the function would have to accept unauthenticated pushes`);
    else check(differences, what, 'push OIDC service account', await serviceAccountId(config, oidc, `${tf.address}.push_config`), options.invokers.push);
  }

  // ---- the event archive: a Cloud Storage subscription in the layout the local archiver and the readers use
  const archiveSubscription = subscriptions.get(topology.archive.subscription.name);
  if (archiveSubscription) {
    const what = `subscription ${topology.archive.subscription.name}`;
    const storageConfig = async (setting: string) => config.attribute(archiveSubscription, `cloud_storage_config.0.${setting}`);
    if (!archiveSubscription.block.cloud_storage_config) differences.push(`${what}: cloud_storage_config is missing in Terraform`);
    else {
      const bucket = await storageConfig('bucket');
      check(differences, what, 'cloud_storage_config.bucket', bucket instanceof Ref ? await referencedName(config, bucket, 'google_storage_bucket', `${archiveSubscription.address}.cloud_storage_config.bucket`) : bucket, topology.bucket.name);
      check(differences, what, 'cloud_storage_config.filename_prefix', await storageConfig('filename_prefix'), topology.archive.objectPrefix);
      check(differences, what, 'cloud_storage_config.filename_suffix', await storageConfig('filename_suffix'), topology.archive.suffix);
      check(differences, what, 'cloud_storage_config.filename_datetime_format', await storageConfig('filename_datetime_format'), topology.archive.datetimeFormat);
      check(differences, what, 'cloud_storage_config.max_duration', await optionalSeconds(config, archiveSubscription, 'cloud_storage_config.0.max_duration'), topology.archive.maxDurationSeconds);
      check(differences, what, 'cloud_storage_config.max_bytes', await storageConfig('max_bytes'), topology.archive.maxBytes);
      check(differences, what, 'cloud_storage_config format (text)', archiveSubscription.block.cloud_storage_config && (await storageConfig('avro_config')) === undefined ? 'text' : 'avro', 'text');
    }
  }

  // ---- queues
  const queues = await byName(config, 'google_cloud_tasks_queue');
  const codeQueues = new Map(Object.values(topology.queues).map((spec) => [spec.name, spec]));
  const functionUrls = await config.local('function_urls');
  for (const name of compareNames(differences, 'queue', queues.keys(), codeQueues.keys())) {
    const tf = queues.get(name)!;
    const spec = codeQueues.get(name)!;
    const what = `queue ${name}`;
    check(differences, what, 'rate_limits.max_dispatches_per_second', await config.attribute(tf, 'rate_limits.0.max_dispatches_per_second'), spec.maxDispatchesPerSecond);
    check(differences, what, 'rate_limits.max_concurrent_dispatches', await config.attribute(tf, 'rate_limits.0.max_concurrent_dispatches'), spec.maxConcurrentDispatches);
    check(differences, what, 'retry_config.max_attempts', await config.attribute(tf, 'retry_config.0.max_attempts'), spec.maxAttempts);
    check(differences, what, 'retry_config.min_backoff', await optionalSeconds(config, tf, 'retry_config.0.min_backoff'), spec.minBackoffSeconds);
    check(differences, what, 'retry_config.max_backoff', await optionalSeconds(config, tf, 'retry_config.0.max_backoff'), spec.maxBackoffSeconds);
    check(differences, what, 'retry_config.max_doublings', await config.attribute(tf, 'retry_config.0.max_doublings'), spec.maxDoublings);
    check(differences, what, 'retry_config.max_retry_duration', await optionalSeconds(config, tf, 'retry_config.0.max_retry_duration'), spec.maxRetryDurationSeconds);
    // Tasks carry their target's URL from SPINE_FUNCTION_URLS: it must name the target function.
    const url = (functionUrls as Record<string, Value>)[spec.target];
    const host = url instanceof Template ? url.parts[0] : url;
    check(differences, what, 'target URL (local.function_urls)', typeof host === 'string' && host.startsWith(`https://${topology.prefix}${spec.target}-`) ? spec.target : String(url), spec.target);
  }

  // ---- buckets
  const buckets = await byName(config, 'google_storage_bucket');
  const deploymentBuckets = new Set<string>();
  for (const [name, instance] of buckets) if (DEPLOYMENT_ONLY_BUCKETS[instance.name]) deploymentBuckets.add(name);
  for (const name of compareNames(differences, 'bucket', [...buckets.keys()].filter((name) => !deploymentBuckets.has(name)), [topology.bucket.name])) {
    const tf = buckets.get(name)!;
    const what = `bucket ${name}`;
    check(differences, what, 'versioning', (await config.attribute(tf, 'versioning.0.enabled')) ?? false, topology.bucket.versioning);
    const prefixRules: Array<{ prefix: string; deleteAfterDays: number }> = [];
    const rules = (tf.block.lifecycle_rule ?? []) as unknown[];
    for (let index = 0; index < rules.length; index++) {
      const at = `lifecycle_rule.${index}`;
      const action = await config.attribute(tf, `${at}.action.0.type`);
      const prefixes = await config.attribute(tf, `${at}.condition.0.matches_prefix`);
      const age = await config.attribute(tf, `${at}.condition.0.age`);
      const noncurrent = await config.attribute(tf, `${at}.condition.0.days_since_noncurrent_time`);
      if (action === 'Delete' && Array.isArray(prefixes) && typeof age === 'number') {
        for (const prefix of prefixes) prefixRules.push({ prefix: String(prefix), deleteAfterDays: age });
      } else if (action === 'Delete' && noncurrent !== undefined && topology.bucket.versioning) {
        // Part of versioning: how long replaced versions stay, not a rule about live objects.
      } else {
        differences.push(`${what}: lifecycle_rule ${index} is in Terraform but has no counterpart in the code`);
      }
    }
    const order = (list: Array<{ prefix: string; deleteAfterDays: number }>) => [...list].sort((a, b) => a.prefix.localeCompare(b.prefix));
    check(differences, what, 'lifecycle (prefix, age in days)', order(prefixRules), order(topology.bucket.lifecycle));
  }

  // ---- functions
  const functions = new Map((await config.instances('google_cloudfunctions2_function')).map((instance) => [String(instance.key), instance]));
  for (const name of compareNames(differences, 'function', functions.keys(), Object.keys(topology.functions))) {
    const tf = functions.get(name)!;
    const spec = topology.functions[name as keyof Topology['functions']];
    const what = `function ${name}`;
    check(differences, what, 'name', await config.attribute(tf, 'name'), `${topology.prefix}${name}`);
    check(differences, what, 'entry_point', await config.attribute(tf, 'build_config.0.entry_point'), spec.entryPoint);
    check(differences, what, 'available_memory', await config.attribute(tf, 'service_config.0.available_memory'), `${spec.memoryMb}M`);
    check(differences, what, 'timeout_seconds', await config.attribute(tf, 'service_config.0.timeout_seconds'), spec.timeoutSeconds);
    check(differences, what, 'min_instance_count', await config.attribute(tf, 'service_config.0.min_instance_count'), spec.minInstances);
    check(differences, what, 'max_instance_count', await config.attribute(tf, 'service_config.0.max_instance_count'), spec.maxInstances);
  }

  // ---- scheduled jobs
  const jobs = await byName(config, 'google_cloud_scheduler_job');
  const codeJobs = new Map(topology.jobs.map((job) => [job.name, job]));
  for (const name of compareNames(differences, 'job', jobs.keys(), codeJobs.keys())) {
    const tf = jobs.get(name)!;
    const job = codeJobs.get(name)!;
    const what = `job ${name}`;
    check(differences, what, 'schedule', await config.attribute(tf, 'schedule'), job.schedule);
    check(differences, what, 'time_zone', await config.attribute(tf, 'time_zone'), job.timeZone);
    check(differences, what, 'description', await config.attribute(tf, 'description'), job.description);
    check(differences, what, 'attempt_deadline', await optionalSeconds(config, tf, 'attempt_deadline'), job.retry.attemptDeadlineSeconds);
    check(differences, what, 'retry_config.retry_count', await config.attribute(tf, 'retry_config.0.retry_count'), job.retry.retryCount);
    check(differences, what, 'retry_config.min_backoff_duration', await optionalSeconds(config, tf, 'retry_config.0.min_backoff_duration'), job.retry.minBackoffSeconds);
    check(differences, what, 'retry_config.max_backoff_duration', await optionalSeconds(config, tf, 'retry_config.0.max_backoff_duration'), job.retry.maxBackoffSeconds);
    check(differences, what, 'retry_config.max_doublings', await config.attribute(tf, 'retry_config.0.max_doublings'), job.retry.maxDoublings);
    check(differences, what, 'http_method', await config.attribute(tf, 'http_target.0.http_method'), job.target.method);
    check(differences, what, 'target function', referencedFunction(await config.attribute(tf, 'http_target.0.uri'), 'service_config[0].uri') ?? null, job.target.function);
    const body = await config.attribute(tf, 'http_target.0.body');
    check(differences, what, 'body', typeof body === 'string' ? JSON.parse(Buffer.from(body, 'base64').toString('utf8')) : String(body), job.target.body);
    const oidc = await config.attribute(tf, 'http_target.0.oidc_token.0.service_account_email');
    if (oidc === undefined) differences.push(`${what}: http_target has no oidc_token`);
    else check(differences, what, 'OIDC service account', await serviceAccountId(config, oidc, `${tf.address}.http_target`), options.invokers.jobs);
    check(differences, what, 'OIDC audience', referencedFunction(await config.attribute(tf, 'http_target.0.oidc_token.0.audience'), 'service_config[0].uri') ?? null, job.target.function);
  }

  return differences;
}
