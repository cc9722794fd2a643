/**
 * The event plane end to end with state in the Storage emulator (the cases are in
 * event-plane.cases.ts, shared with the PostgreSQL run).
 */
import { useLocalMesh } from '../helpers/mesh';
import { describeEventPlane } from './event-plane.cases';

jest.setTimeout(180_000);

describeEventPlane(useLocalMesh());
