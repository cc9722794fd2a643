/** The mesh's functions, named once for the topology and the scheduled jobs that call them. */
export type FunctionName = 'materialize' | 'deadletter' | 'persist' | 'snapshot' | 'health';
export const FUNCTION_NAMES: readonly FunctionName[] = ['materialize', 'deadletter', 'persist', 'snapshot', 'health'];
