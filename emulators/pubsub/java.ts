import path from 'node:path';
import { EmulatorNotInstalledError } from './errors';
import { findOnPath, isExecutableFile } from './executables';

/**
 * The `java` the launcher script will run, found the way the script finds it (JAVA_HOME first,
 * then PATH). Checked up front because the script reports a missing Java on stdout and exits 1,
 * which would otherwise surface as a vague start failure.
 * @internal Used by the emulator's own start-up; exported for its tests.
 */
export function findJava(env: NodeJS.ProcessEnv): string {
  const javaHome = env.JAVA_HOME;
  if (javaHome) {
    const java = path.join(javaHome, 'bin', 'java');
    if (isExecutableFile(java)) return java;
    throw new EmulatorNotInstalledError('java', `JAVA_HOME is set to ${javaHome}, which has no executable bin/java`);
  }
  const java = findOnPath('java', env);
  if (java) return java;
  throw new EmulatorNotInstalledError('java', 'no `java` found on the PATH and JAVA_HOME is not set');
}

/** True when the output shows the JVM is too old for the emulator's classes. */
export function looksLikeOldJava(output: string): boolean {
  return output.includes('UnsupportedClassVersionError');
}
