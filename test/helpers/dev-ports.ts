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

/** A `--port-base` whose whole block of ports is free now. */
export async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if (await allPortsFree(base)) return base;
  }
  throw new Error('no free block of ports');
}
