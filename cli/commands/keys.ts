/** `spine keys create|list|revoke`: the gateway's API keys, kept hashed in the mesh's bucket. */
import { ApiKeys, GcsKeyRecords, keyPrefix, type KeyScopes } from '../../gateway/keys';
import { emulatorEndpoints, probeEndpoints, resolveConnection, storageClient } from '../connection';
import { NotFoundError, UsageError } from '../errors';
import { printJson, printTable } from '../output';
import { parseCommand } from '../options';

export const KEYS_USAGE = `usage: spine keys create (--read NETWORK | --write NETWORK)... [--name NAME] [--rate N]
       spine keys list
       spine keys revoke <id>

  keys create   make an API key for the gateway and print it (only now: it is stored hashed)
                --read NETWORK    the key may read the network (repeatable; * for every network)
                --write NETWORK   the key may read and write the network (repeatable; * for every network)
                --name NAME       a note for people (who or what holds the key)
                --rate N          requests per second the key may make (default 50; bursts of N)
  keys list     every key: id, prefix, name, scopes, rate, created, revoked
  keys revoke   refuse the key from now on (gateways notice within SPINE_GATEWAY_KEY_CACHE_MS)`;

export async function keys(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: KEYS_USAGE,
    positionals: ['action', 'id?'],
    options: {
      read: { type: 'string', multiple: true },
      write: { type: 'string', multiple: true },
      name: { type: 'string' },
      rate: { type: 'string' },
    },
  });
  if (help) return void console.log(KEYS_USAGE);
  const [action, id] = positionals as [string, string?];
  const createOnly =
    values.read !== undefined || values.write !== undefined || values.name !== undefined || values.rate !== undefined;
  if (action === 'create') {
    if (id !== undefined) throw new UsageError(`keys create takes no id (${KEYS_USAGE.split('\n')[0]})`);
    if (!values.read?.length && !values.write?.length)
      throw new UsageError('keys create needs at least one --read NETWORK or --write NETWORK (* for every network)');
  } else if (action === 'list') {
    if (id !== undefined || createOnly) throw new UsageError('keys list takes no id and no create options');
  } else if (action === 'revoke') {
    if (id === undefined) throw new UsageError('keys revoke needs the id of a key (spine keys list shows them)');
    if (createOnly) throw new UsageError('--read, --write, --name and --rate are for keys create');
  } else {
    throw new UsageError(`unknown keys action ${JSON.stringify(action)}: expected create, list or revoke`);
  }
  let rateLimit: number | undefined;
  if (values.rate !== undefined) {
    rateLimit = Number(values.rate);
    if (!/^\d+(\.\d+)?$/.test(values.rate) || !(rateLimit > 0))
      throw new UsageError(
        `--rate must be a positive number of requests per second, not ${JSON.stringify(values.rate)}`,
      );
  }

  const connection = await resolveConnection(common);
  const { settings } = connection;
  await probeEndpoints(
    emulatorEndpoints(settings).filter((e) => e.part === 'storage'),
    connection.origin,
  );
  const store = new ApiKeys(new GcsKeyRecords(storageClient(settings), settings.bucket));

  if (action === 'create') {
    const scopes: KeyScopes = {};
    for (const network of values.read ?? []) scopes[network] = 'read';
    // Write wins when a network is named both ways.
    for (const network of values.write ?? []) scopes[network] = 'read-write';
    const { key, record } = await store.create({
      scopes,
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(rateLimit !== undefined ? { rateLimit } : {}),
    });
    const { hash: _hash, ...shown } = record;
    if (common.json) return printJson({ key, ...shown });
    console.log(
      `key ${record.id} created; it is shown only now, keep it secret:\n\n${key}\n\nuse it as RemoteStorage({ url, apiKey }) or the header Authorization: Bearer <key>`,
    );
    return;
  }
  if (action === 'list') {
    const records = await store.list();
    if (common.json)
      return printJson(records.map(({ hash: _hash, ...shown }) => ({ ...shown, prefix: keyPrefix(shown) })));
    if (records.length === 0) return void console.log('no keys (spine keys create makes one)');
    printTable(
      ['ID', 'PREFIX', 'NAME', 'SCOPES', 'RATE/S', 'CREATED', 'REVOKED'],
      records.map((r) => [
        r.id,
        keyPrefix(r),
        r.name,
        Object.entries(r.scopes)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([n, a]) => `${n}:${a}`)
          .join(','),
        String(r.rateLimit),
        r.createdAt,
        r.revokedAt ?? '',
      ]),
    );
    return;
  }
  const revoked = await store.revoke(id!);
  if (!revoked) throw new NotFoundError(`no key with id ${JSON.stringify(id)} (spine keys list shows them)`);
  if (common.json) return printJson({ id: revoked.id, revokedAt: revoked.revokedAt });
  console.log(`revoked ${revoked.id} (at ${revoked.revokedAt})`);
}
