/** Local stand-ins for the cloud services the mesh uses, started from code or `npm run emulators`. */
export * from './pubsub';
export * from './storage';
export * from './tasks';
export {
  startEmulators,
  EmulatorsStartError,
  EMULATOR_PARTS,
  type EmulatorPart,
  type LocalEmulators,
  type StartEmulatorsOptions,
} from './all';
export { freePort, isListening, waitUntil } from './ports';
export {
  startPostgres,
  findPostgresBinDir,
  PostgresNotInstalledError,
  type LocalPostgres,
  type StartPostgresOptions,
} from './postgres';
