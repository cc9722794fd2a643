import type { FunctionName } from '../shared/topology';

/** The functions `functions/index.ts` registers, by the names the topology uses. */
export const FUNCTION_TARGETS: readonly FunctionName[] = ['materialize', 'deadletter', 'persist', 'health', 'snapshot'];
