import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KEYS_OBJECT_PREFIX } from '../../gateway/keys';
import { Ref, Template, TerraformConfig, TerraformError, type ResourceInstance, type Value } from './terraform-config';

const TERRAFORM_DIR = path.resolve(__dirname, '../../terraform');
const TERRAFORM = '/usr/local/bin/terraform';
const PROJECT = 'spine-iam-test';
const BUCKET = `${PROJECT}-spine-state`;
const SOURCE_BUCKET = `${PROJECT}-spine-functions-source`;
const CLIENT = 'user:operator@example.com';
const GATEWAY_IMAGE = 'us-docker.pkg.dev/spine-iam-test/spine/gateway:1';

/** Every grant as "<principal> <role> on <resource>[ if objects under <prefixes>]". */
async function grants(config: TerraformConfig): Promise<string[]> {
  const principal = async (value: Value | undefined, where: string): Promise<string> => {
    if (typeof value === 'string') return value;
    const parts = value instanceof Template ? value.parts : [];
    const [kind, account, rest] = parts;
    if (kind === 'serviceAccount:' && account instanceof Ref && account.attribute === 'email' && rest === undefined) {
      return `sa:${String(await config.evaluate(`\${${account.address}.account_id}`, {}, where))}`;
    }
    if (value instanceof Template && /^serviceAccount:service-\$\{data\.google_project\.this\.number\}@gcp-sa-pubsub\.iam\.gserviceaccount\.com$/.test(value.toString())) {
      return 'pubsub-service-agent';
    }
    throw new TerraformError(`${where}: unrecognised member ${String(value)}`);
  };
  const role = (value: Value | undefined) => (value instanceof Ref && value.address.startsWith('google_project_iam_custom_role.') ? `custom:${value.address.split('.')[1]}` : String(value));
  const targets: Record<string, (instance: ResourceInstance) => Promise<string>> = {
    google_project_iam_member: async () => 'project',
    google_pubsub_topic_iam_member: async (i) => `topic:${String(await config.attribute(i, 'topic'))}`,
    google_pubsub_subscription_iam_member: async (i) => `subscription:${String(await config.attribute(i, 'subscription'))}`,
    google_cloud_tasks_queue_iam_member: async (i) => `queue:${String(await config.attribute(i, 'name'))}`,
    google_cloud_run_v2_service_iam_member: async (i) => `function:${String(await config.attribute(i, 'name'))}`,
    google_storage_bucket_iam_member: async (i) => `bucket:${String(await config.attribute(i, 'bucket'))}`,
    google_service_account_iam_member: async (i) => {
      const account = await config.attribute(i, 'service_account_id');
      if (!(account instanceof Ref) || account.attribute !== 'name') throw new TerraformError(`${i.address}: service_account_id is not a service account's name`);
      return `sa:${String(await config.evaluate(`\${${account.address}.account_id}`, {}, i.address))}`;
    },
  };
  const result: string[] = [];
  for (const type of config.resourceTypes().filter((name) => /_iam_(member|binding|policy)$/.test(name))) {
    const target = targets[type];
    if (!target) throw new TerraformError(`${type} is not a kind of grant this test knows; add it with its expected roles`);
    for (const instance of await config.instances(type)) {
      let grant = `${await principal(await config.attribute(instance, 'member'), instance.address)} ${role(await config.attribute(instance, 'role'))} on ${await target(instance)}`;
      if (instance.block.condition) grant += ` if objects under ${conditionPrefixes(config, instance)}`;
      result.push(grant);
    }
  }
  return result.sort();
}

/** The prefixes a storage condition allows, read from the list its expression is built from. */
function conditionPrefixes(config: TerraformConfig, instance: ResourceInstance): string {
  const expression = String(config.raw(instance, 'condition.0.expression'));
  const builder = /^\$\{join\(" \|\| ", flatten\(\[for prefix in (each\.value|local\.(?:client_object|gateway_object|gateway_key|archive_object)_prefixes) : \[\n\s+"resource\.name\.startsWith\(\\"projects\/_\/buckets\/\$\{local\.bucket_name\}\/objects\/\$\{prefix\}\\"\)",\n\s+"api\.getAttribute\(\\"storage\.googleapis\.com\/objectListPrefix\\", \\"\\"\)\.startsWith\(\\"\$\{prefix\}\\"\)",\n\s+\]\]\)\)\}$/.exec(expression);
  if (!builder) throw new TerraformError(`${instance.address}: condition ${expression} is not the prefix condition this test reads`);
  const list = builder[1] === 'each.value' ? instance.each?.value : config.rawLocal(builder[1]!.slice('local.'.length));
  if (!Array.isArray(list)) throw new TerraformError(`${instance.address}: condition prefixes are not a list`);
  return list.join(',');
}

const FUNCTION_ROLES = (prefix: string) => ({
  materialize: [
    `sa:${prefix}materialize roles/cloudtasks.enqueuer on queue:${prefix}persist`,
    `sa:${prefix}materialize roles/cloudtasks.enqueuer on queue:${prefix}snapshots`,
    `sa:${prefix}materialize roles/iam.serviceAccountUser on sa:${prefix}tasks-invoker`,
    `sa:${prefix}materialize roles/pubsub.publisher on topic:${prefix}group-changes`,
    `sa:${prefix}materialize roles/pubsub.publisher on topic:${prefix}pending-writes`,
    `sa:${prefix}materialize roles/storage.objectUser on bucket:${BUCKET} if objects under networks/,content/,dead-letters/`,
  ],
  deadletter: [`sa:${prefix}deadletter roles/storage.objectUser on bucket:${BUCKET} if objects under dead-letters/`],
  persist: [
    `sa:${prefix}persist roles/cloudtasks.enqueuer on queue:${prefix}persist`,
    `sa:${prefix}persist roles/iam.serviceAccountUser on sa:${prefix}tasks-invoker`,
    `sa:${prefix}persist roles/pubsub.publisher on topic:${prefix}group-changes`,
    `sa:${prefix}persist roles/pubsub.publisher on topic:${prefix}pending-writes`,
    `sa:${prefix}persist roles/pubsub.subscriber on subscription:${prefix}pending`,
    `sa:${prefix}persist roles/storage.objectUser on bucket:${BUCKET} if objects under networks/,content/,dead-letters/`,
  ],
  snapshot: [
    `sa:${prefix}snapshot roles/pubsub.publisher on topic:${prefix}group-changes`,
    `sa:${prefix}snapshot roles/storage.objectUser on bucket:${BUCKET} if objects under networks/`,
  ],
  health: [
    `sa:${prefix}health custom:watcher on project`,
    `sa:${prefix}health roles/cloudtasks.viewer on queue:${prefix}persist`,
    `sa:${prefix}health roles/pubsub.publisher on topic:${prefix}contact-writes`,
    `sa:${prefix}health roles/pubsub.publisher on topic:${prefix}health`,
    `sa:${prefix}health roles/pubsub.subscriber on topic:${prefix}group-changes`,
    `sa:${prefix}health roles/storage.bucketViewer on bucket:${BUCKET}`,
    `sa:${prefix}health roles/storage.objectUser on bucket:${BUCKET} if objects under networks/,dead-letters/,health/`,
  ],
});

const OTHER_ROLES = (prefix: string) => ({
  [`${prefix}push-invoker`]: [`sa:${prefix}push-invoker roles/run.invoker on function:${prefix}deadletter`, `sa:${prefix}push-invoker roles/run.invoker on function:${prefix}materialize`],
  [`${prefix}tasks-invoker`]: [`sa:${prefix}tasks-invoker roles/run.invoker on function:${prefix}persist`, `sa:${prefix}tasks-invoker roles/run.invoker on function:${prefix}snapshot`],
  [`${prefix}jobs-invoker`]: [
    `sa:${prefix}jobs-invoker roles/run.invoker on function:${prefix}health`,
    `sa:${prefix}jobs-invoker roles/run.invoker on function:${prefix}persist`,
    `sa:${prefix}jobs-invoker roles/run.invoker on function:${prefix}snapshot`,
  ],
  [`${prefix}fn-build`]: [
    `sa:${prefix}fn-build roles/artifactregistry.writer on project`,
    `sa:${prefix}fn-build roles/logging.logWriter on project`,
    `sa:${prefix}fn-build roles/storage.objectViewer on bucket:${SOURCE_BUCKET}`,
  ],
  // The archive's Cloud Storage subscription writes as this account: create objects under archive/, nothing else.
  [`${prefix}archive-writer`]: [
    `sa:${prefix}archive-writer roles/storage.bucketViewer on bucket:${BUCKET}`,
    `sa:${prefix}archive-writer roles/storage.objectCreator on bucket:${BUCKET} if objects under archive/`,
  ],
  'pubsub-service-agent': [
    `pubsub-service-agent roles/iam.serviceAccountTokenCreator on sa:${prefix}archive-writer`,
    `pubsub-service-agent roles/iam.serviceAccountTokenCreator on sa:${prefix}push-invoker`,
    `pubsub-service-agent roles/pubsub.publisher on topic:${prefix}dead-letters`,
    `pubsub-service-agent roles/pubsub.publisher on topic:${prefix}dead-letters-final`,
    'pubsub-service-agent roles/pubsub.subscriber on project',
  ],
});

function byPrincipal(list: string[]): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const grant of list) {
    const principal = grant.slice(0, grant.indexOf(' ')).replace(/^sa:/, '');
    (result[principal] ??= []).push(grant);
  }
  return result;
}

describe('IAM of the deployment', () => {
  test('each service account holds exactly its expected roles, and no one else holds any', async () => {
    const config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT });
    const expected: Record<string, string[]> = {};
    for (const [fn, list] of Object.entries(FUNCTION_ROLES('spine-'))) expected[`spine-${fn}`] = [...list].sort();
    for (const [who, list] of Object.entries(OTHER_ROLES('spine-'))) expected[who] = [...list].sort();
    expect(byPrincipal(await grants(config))).toEqual(expected);
  });

  test('clients listed in client_members get the client roles and nothing more', async () => {
    const config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, client_members: [CLIENT] });
    expect(byPrincipal(await grants(config))[CLIENT]).toEqual(
      [
        `${CLIENT} custom:watcher on project`,
        `${CLIENT} roles/pubsub.publisher on topic:spine-contact-writes`,
        `${CLIENT} roles/pubsub.subscriber on topic:spine-group-changes`,
        `${CLIENT} roles/run.invoker on function:spine-health`,
        `${CLIENT} roles/run.invoker on function:spine-snapshot`,
        `${CLIENT} roles/storage.bucketViewer on bucket:${BUCKET}`,
        `${CLIENT} roles/storage.objectUser on bucket:${BUCKET} if objects under content/,dead-letters/`,
        `${CLIENT} roles/storage.objectViewer on bucket:${BUCKET}`,
      ].sort(),
    );
  });

  test('the watcher role only manages subscriptions', async () => {
    const config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT });
    const [role] = await config.instances('google_project_iam_custom_role');
    expect(await config.attribute(role!, 'permissions')).toEqual(['pubsub.subscriptions.consume', 'pubsub.subscriptions.create', 'pubsub.subscriptions.delete', 'pubsub.subscriptions.get']);
    expect(await config.attribute(role!, 'role_id')).toBe('spine_watcher');
  });

  test('no function is public: no allUsers or allAuthenticatedUsers anywhere but the gateway invoker, internal ingress, OIDC for every caller', async () => {
    const config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT });
    for (const [file, text] of Object.entries(config.sources)) {
      // The validation message names them to refuse them; no grant may, except the one that makes the gateway public.
      const lines = text.split('\n').filter((line) => /allUsers|allAuthenticatedUsers/.test(line) && !/error_message|description|^\s*#/.test(line));
      const allowed = file.endsWith('gateway.tf') ? ['  member   = "allUsers"'] : [];
      expect({ file, lines }).toEqual({ file, lines: allowed });
    }
    for (const fn of await config.instances('google_cloudfunctions2_function')) {
      expect(await config.attribute(fn, 'service_config.0.ingress_settings')).toBe('ALLOW_INTERNAL_ONLY');
      const account = await config.attribute(fn, 'service_config.0.service_account_email');
      expect(account).toEqual(new Ref(`google_service_account.function[${JSON.stringify(fn.key)}]`, 'email'));
    }
    await expect(TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, client_members: ['allUsers'] }).then((c) => c.variableBlock('client_members'))).resolves.toMatchObject({
      validation: [expect.objectContaining({ error_message: expect.stringContaining('allUsers and allAuthenticatedUsers are refused') })],
    });
  });

  test('the gateway runs as its own account with only the roles SpineStorage needs; allUsers may only invoke it', async () => {
    const config = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, gateway_image: GATEWAY_IMAGE });
    const all = byPrincipal(await grants(config));
    expect(all['spine-gateway']).toEqual(
      [
        'sa:spine-gateway custom:watcher on project',
        'sa:spine-gateway roles/pubsub.publisher on topic:spine-contact-writes',
        'sa:spine-gateway roles/pubsub.subscriber on topic:spine-group-changes',
        `sa:spine-gateway roles/storage.bucketViewer on bucket:${BUCKET}`,
        `sa:spine-gateway roles/storage.objectUser on bucket:${BUCKET} if objects under networks/,content/`,
        `sa:spine-gateway roles/storage.objectViewer on bucket:${BUCKET} if objects under ${KEYS_OBJECT_PREFIX}`,
        // Reads the event archive for history requests.
        `sa:spine-gateway roles/storage.objectViewer on bucket:${BUCKET} if objects under archive/`,
      ].sort(),
    );
    expect(all.allUsers).toEqual(['allUsers roles/run.invoker on function:spine-gateway']);
    // Everyone else keeps exactly the roles they had without the gateway.
    const without = byPrincipal(await grants(await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT })));
    const { 'spine-gateway': _gateway, allUsers: _public, ...rest } = all;
    expect(rest).toEqual(without);
    const [service] = await config.instances('google_cloud_run_v2_service');
    expect(await config.attribute(service!, 'template.0.service_account')).toEqual(new Ref('google_service_account.gateway[0]', 'email'));
    expect(await config.attribute(service!, 'template.0.containers.0.image')).toBe(GATEWAY_IMAGE);

    const closed = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, gateway_image: GATEWAY_IMAGE, gateway_public: false });
    expect(byPrincipal(await grants(closed)).allUsers).toBeUndefined();
    expect(await (await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT })).instances('google_cloud_run_v2_service')).toEqual([]);
  });

  test('the Cloud SQL option makes the state functions IAM database users with the Cloud SQL roles', async () => {
    const off = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT });
    expect(await off.instances('google_sql_database_instance')).toEqual([]);
    expect(await off.instances('google_sql_user')).toEqual([]);
    const on = await TerraformConfig.load(TERRAFORM_DIR, { project: PROJECT, cloud_sql_enabled: true });
    const [instance] = await on.instances('google_sql_database_instance');
    expect(await on.attribute(instance!, 'settings.0.ip_configuration.0.ipv4_enabled')).toBe(false);
    expect(await on.attribute(instance!, 'settings.0.database_flags.0.name')).toBe('cloudsql.iam_authentication');
    expect(await on.attribute(instance!, 'settings.0.database_flags.0.value')).toBe('on');
    const users = await on.instances('google_sql_user');
    expect(users.map((user) => user.key).sort()).toEqual(['health', 'materialize', 'persist', 'snapshot']);
    for (const user of users) expect(await on.attribute(user, 'type')).toBe('CLOUD_IAM_SERVICE_ACCOUNT');
    const sqlGrants = (await grants(on)).filter((grant) => grant.includes('cloudsql'));
    expect(sqlGrants).toEqual(
      ['health', 'materialize', 'persist', 'snapshot'].flatMap((fn) => [`sa:spine-${fn} roles/cloudsql.client on project`, `sa:spine-${fn} roles/cloudsql.instanceUser on project`]).sort(),
    );
    // The functions then reach the private IP through the connector.
    const [connector] = await on.instances('google_vpc_access_connector');
    expect(await on.attribute(connector!, 'name')).toBe('spine-sql');
  });
});

describe('terraform fmt', () => {
  test('terraform/ is formatted (terraform fmt -check)', async () => {
    if (!existsSync(TERRAFORM)) throw new Error(`terraform is not installed at ${TERRAFORM}; the formatting check needs it (Terraform 1.11)`);
    const result = await promisify(execFile)(TERRAFORM, ['fmt', '-check', '-recursive', '-list=true', TERRAFORM_DIR]).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
    expect({ code: (result as { code?: number }).code ?? 0, unformatted: (result.stdout ?? '').trim() }).toEqual({ code: 0, unformatted: '' });
  });
});
