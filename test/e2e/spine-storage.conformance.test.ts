import { runNetworkStorageConformance } from 'super-spine/testing';
import { useLocalMesh } from '../helpers/mesh';

const mesh = useLocalMesh();

// Reads after flush(): every write of the client is materialized by the functions first.
runNetworkStorageConformance('SpineStorage (through the local mesh)', async () => {
  const spine = mesh.client();
  return { storage: spine, settle: () => spine.flush() };
});
