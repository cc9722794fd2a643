import { portPlan } from '../../cli/commands/dev';
import { isPortFree } from '../../emulators/ports';

/** Every port `npm start --port-base base` takes. */
export function plannedPorts(base: number): number[] {
  const plan = portPlan(base);
  return [
    plan.pubsub!,
    plan.storage!,
    plan.tasks!,
    plan.dashboard,
    plan.gateway,
    ...Object.values(plan.functions!).map(Number),
  ];
}

export async function allPortsFree(base: number): Promise<boolean> {
  return (await Promise.all(plannedPorts(base).map((port) => isPortFree(port)))).every(Boolean);
}

/**
 * A `--port-base` whose whole block of ports is free now, below Linux's ephemeral range (32768 up):
 * a test that starts the mesh again on the same ports must not find one taken meanwhile as the
 * source port of some other process's outgoing connection (CI failed on exactly that, EADDRINUSE).
 */
export async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * 22_000);
    if (await allPortsFree(base)) return base;
  }
  throw new Error('no free block of ports');
}
