/**
 * The event plane end to end with the functions materializing into PostgreSQL
 * (SPINE_STATE_STORE=postgres): the same cases as test/e2e/event-plane.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { describeEventPlane } from '../e2e/event-plane.cases';
import { useLocalMesh } from '../helpers/mesh';
import { usePostgres } from '../helpers/postgres';

jest.setTimeout(180_000);

// Registered first, so its beforeAll has started the server when the mesh's runs; stopped last,
// after the mesh has stopped (and drained into it).
const postgres = usePostgres({ stopInAfterAll: false });

const mesh = useLocalMesh({
  // Read when the mesh starts (useLocalMesh spreads its options in beforeAll), after the server is up.
  get postgresUrl() {
    return postgres.url;
  },
});

describeEventPlane(mesh);

afterAll(() => postgres.stop(), 30_000);

describe('the state store of the mesh', () => {
  it('is PostgreSQL: materialized contacts are rows there, and no state objects are in the bucket', async () => {
    const network = `rows-${randomUUID().slice(0, 8)}`;
    const spine = mesh.client();
    await spine.saveContactContent(network, 'g', 'c', { in: 'postgres' }, { wait: 'materialized' });
    const client = new Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT c.record::text AS record FROM spine.contacts c JOIN spine.groups g ON g.id = c.group_ref JOIN spine.networks n ON n.id = g.network_ref
         WHERE n.network_id = $1 AND g.group_id = 'g' AND c.contact_id = 'c'`,
        [network],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0].record).toContain('postgres');
    } finally {
      await client.end();
    }
    const [objects] = await mesh.storage.bucket(mesh.mesh.settings.bucket).getFiles({ prefix: 'networks/' });
    expect(objects).toHaveLength(0);
  });
});
