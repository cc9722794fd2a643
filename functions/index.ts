// Every function of the mesh, registered with the Functions Framework. A deployment picks one
// with its entry point (`--target`); the local host serves them all.
import './materialize';
import './deadletter';
import './persist';
import './health';
import './snapshot';

export { FUNCTION_TARGETS } from './targets';
