import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadGatewaySettings } from '../../gateway/from-env';
import { loadSettings, PERSIST_MODES } from '../../shared/settings';
import { defineTopology, type Topology } from '../../shared/topology';
import { FUNCTION_TARGETS } from '../../functions/targets';
import { driftBetween, topologyOfDeployment, type DriftOptions } from './drift';
import { Ref, TerraformConfig, TerraformError } from './terraform-config';

const TERRAFORM_DIR = path.resolve(__dirname, '../../terraform');
const PROJECT = 'spine-drift-test';
const INVOKERS: DriftOptions = { invokers: { push: 'spine-push-invoker', tasks: 'spine-tasks-invoker', jobs: 'spine-jobs-invoker' } };

/** The topology of the code for a deployment of `project` with `prefix`, as the functions compute it from their settings. */
function codeTopology(prefix = 'spine-'): Topology {
  return defineTopology({ projectId: PROJECT, prefix, bucket: `${PROJECT}-${prefix}state` });
}

async function drift(dir: string, topology: Topology = codeTopology(), variables: Record<string, string> = {}, options = INVOKERS) {
  const config = await TerraformConfig.load(dir, { project: PROJECT, ...variables });
  return driftBetween(config, topology, options);
}

describe('Terraform against the topology in code', () => {
  let config: TerraformConfig;
  beforeAll(async () => {
    config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT });
  });

  test('the tree as it is has no drift', async () => {
    expect(await driftBetween(config, codeTopology(), INVOKERS)).toEqual([]);
  });

  test('the functions run with settings that give the same topology', async () => {
    const deployed = await topologyOfDeployment(config);
    expect(deployed).toEqual(codeTopology());
  });

  test('names follow another prefix everywhere', async () => {
    const blue = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, name_prefix: 'blue-' });
    const invokers = { invokers: { push: 'blue-push-invoker', tasks: 'blue-tasks-invoker', jobs: 'blue-jobs-invoker' } };
    expect(await driftBetween(blue, codeTopology('blue-'), invokers)).toEqual([]);
    // Held to the default prefix's topology, every name differs.
    const differences = await driftBetween(blue, codeTopology('spine-'), invokers);
    expect(differences).toContain('topic spine-contact-writes is in the code but not in Terraform');
    expect(differences).toContain('topic blue-contact-writes is in Terraform but not in the code');
  });

  test('the gateway runs with settings that give the same topology, listening on all interfaces', async () => {
    const withGateway = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, gateway_image: 'us-docker.pkg.dev/p/r/gateway:1', persist_on: 'batch' });
    expect(await driftBetween(withGateway, codeTopology(), INVOKERS)).toEqual([]);
    const env: Record<string, string> = {};
    for (const name of ['GOOGLE_CLOUD_PROJECT', 'SPINE_TOPIC_PREFIX', 'SPINE_BUCKET', 'SPINE_PERSIST_ON', 'SPINE_GATEWAY_HOST']) {
      env[name] = String(await withGateway.evaluate(`\${local.gateway_env.${name}}`, {}, name));
    }
    const settings = loadSettings(env);
    expect(defineTopology({ projectId: settings.projectId, prefix: settings.topicPrefix, bucket: settings.bucket })).toEqual(codeTopology());
    expect(settings.persistOn).toBe('batch');
    expect(loadGatewaySettings(env).host).toBe('0.0.0.0');
  });

  test('persist_on is validated against the modes of shared/settings.ts and reaches SPINE_PERSIST_ON', async () => {
    const condition = config.variableBlock('persist_on').validation as Array<{ condition: string }>;
    const match = /^\$\{contains\((\[[^\]]*\]), var\.persist_on\)\}$/.exec(condition[0]!.condition);
    expect(match).not.toBeNull();
    expect(JSON.parse(match![1]!)).toEqual([...PERSIST_MODES]);
    expect(config.variable('persist_on')).toBe('immediate');
    const batch = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, persist_on: 'batch' });
    expect(await batch.evaluate('${local.function_env.SPINE_PERSIST_ON}', {}, 'test')).toBe('batch');
  });

  test('every function runs the shared settings, books tasks as the tasks invoker, and is a registered target', async () => {
    const tasksAccount = await config.evaluate('${local.function_env.SPINE_TASKS_SERVICE_ACCOUNT}', {}, 'test');
    expect(tasksAccount).toEqual(new Ref('google_service_account.tasks_invoker', 'email'));
    expect(await config.evaluate('${google_service_account.tasks_invoker.account_id}', {}, 'test')).toBe(INVOKERS.invokers.tasks);
    for (const fn of await config.instances('google_cloudfunctions2_function')) {
      expect(config.raw(fn, 'service_config.0.environment_variables')).toBe('${merge(local.function_env, local.postgres_env[each.key])}');
      expect(FUNCTION_TARGETS).toContain(await config.attribute(fn, 'build_config.0.entry_point'));
    }
  });

  test('with Cloud SQL on, the state functions get the PostgreSQL settings', () => {
    const postgres = String(config.rawLocal('postgres_env'));
    expect(postgres).toContain('SPINE_STATE_STORE       = "postgres"');
    expect(postgres).toContain('SPINE_POSTGRES_IAM_AUTH = "true"');
    expect(postgres).toMatch(/SPINE_POSTGRES_URL\s+= "postgresql:\/\/\$\{urlencode\(local\.sql_users\[name\]\)\}@\$\{join\("", google_sql_database_instance\.state\[\*\]\.private_ip_address\)\}:5432\//);
    // The first function to migrate owns the tables; it grants the other state functions' IAM users their rows.
    expect(postgres).toMatch(/SPINE_POSTGRES_GRANT_TO = join\(",", \[for other, user in local\.sql_users : user if other != name && contains\(keys\(local\.sql_functions\), other\)\]\)/);
    expect(config.variable('cloud_sql_enabled')).toBe(false);
  });

  test('the evaluator refuses what it cannot resolve instead of guessing', async () => {
    await expect(config.evaluate('${var.nowhere}', {}, 'test')).rejects.toThrow(TerraformError);
    await expect(config.evaluate('${local.function_env.SPINE_FUNCTION_URLS}', {}, 'test')).rejects.toThrow(/jsonencode\(\) of a value known only after apply/);
    await expect(config.evaluate('${upper(var.region)}', {}, 'test')).rejects.toThrow(/does not evaluate upper\(\)/);
    const withoutProject = await TerraformConfig.load(TERRAFORM_DIR);
    await expect(withoutProject.evaluate('${local.bucket_name}', {}, 'test')).rejects.toThrow(/variable project has no default/);
  });
});

describe('the drift check fails on a change to one side only', () => {
  let copy: string;
  beforeEach(async () => {
    copy = await mkdtemp(path.join(os.tmpdir(), 'spine-terraform-'));
    await cp(TERRAFORM_DIR, copy, { recursive: true, filter: (source) => !source.includes('.terraform') });
  });
  afterEach(async () => {
    await rm(copy, { recursive: true, force: true });
  });

  async function edit(file: string, from: string | RegExp, to: string): Promise<void> {
    const target = path.join(copy, file);
    const text = await readFile(target, 'utf8');
    const changed = text.replace(from, to);
    if (changed === text) throw new Error(`${String(from)} is not in ${file}`);
    await writeFile(target, changed);
  }

  test('a dead-letter policy changed in Terraform', async () => {
    await edit('pubsub.tf', /(dead_letter_topic\s+= google_pubsub_topic\.dead_letters\.id\n\s+max_delivery_attempts = )10/, '$111');
    expect(await drift(copy)).toEqual([
      'subscription spine-materialize: dead_letter_policy is {"topic":"spine-dead-letters","maxDeliveryAttempts":11} in Terraform, {"topic":"spine-dead-letters","maxDeliveryAttempts":10} in code',
    ]);
  });

  test('a dead-letter policy changed in code', async () => {
    const topology = codeTopology();
    topology.subscriptions.deadLetterStore.deadLetterPolicy = { topic: topology.topics.deadLetters.name, maxDeliveryAttempts: 20 };
    expect(await drift(copy, topology)).toEqual([
      'subscription spine-dead-letter-store: dead_letter_policy is {"topic":"spine-dead-letters-final","maxDeliveryAttempts":20} in Terraform, {"topic":"spine-dead-letters","maxDeliveryAttempts":20} in code',
    ]);
  });

  test('a job schedule changed in Terraform', async () => {
    await edit('scheduler.tf', 'schedule         = "0 * * * *"', 'schedule         = "30 * * * *"');
    expect(await drift(copy)).toEqual(['job spine-snapshots: schedule is "30 * * * *" in Terraform, "0 * * * *" in code']);
  });

  test('a job schedule changed in code', async () => {
    const topology = defineTopology({ projectId: PROJECT, bucket: `${PROJECT}-spine-state`, persistIntervalMs: 5 * 60_000 });
    expect(await drift(copy, topology)).toEqual(['job spine-persist-interval: schedule is "* * * * *" in Terraform, "*/5 * * * *" in code']);
  });

  test('a queue rate changed in Terraform', async () => {
    await edit('tasks.tf', 'max_dispatches_per_second = 500', 'max_dispatches_per_second = 400');
    expect(await drift(copy)).toEqual(['queue spine-persist: rate_limits.max_dispatches_per_second is 400 in Terraform, 500 in code']);
  });

  test('a queue rate changed in code', async () => {
    const topology = codeTopology();
    topology.queues.snapshots.maxConcurrentDispatches = 4;
    expect(await drift(copy, topology)).toEqual(['queue spine-snapshots: rate_limits.max_concurrent_dispatches is 2 in Terraform, 4 in code']);
  });

  test('something deployed that the code does not define', async () => {
    await writeFile(path.join(copy, 'extra.tf'), 'resource "google_pubsub_topic" "stray" {\n  name = "${var.name_prefix}stray"\n}\n');
    expect(await drift(copy)).toEqual(['topic spine-stray is in Terraform but not in the code']);
  });

  test('a subscription the code defines but Terraform lacks', async () => {
    const topology = codeTopology();
    topology.subscriptions.pending = { ...topology.subscriptions.pending };
    (topology.subscriptions as Record<string, unknown>).audit = { ...topology.subscriptions.deadLettersHold, name: 'spine-audit' };
    expect(await drift(copy, topology)).toEqual(['subscription spine-audit is in the code but not in Terraform']);
  });

  test('a push subscription without OIDC', async () => {
    await edit('pubsub.tf', /\n\s+oidc_token \{\n\s+service_account_email = google_service_account\.push_invoker\.email\n\s+\}\n(\s+\}\n\n\s+depends_on = \[google_cloud_run_v2_service_iam_member\.push_invoker\]\n\}\n\nresource "google_pubsub_subscription" "dead_letter_store")/, '\n$1');
    expect(await drift(copy)).toEqual(['subscription spine-materialize: push_config has no oidc_token, so the function would have to accept unauthenticated pushes']);
  });
});
