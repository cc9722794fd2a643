/**
 * The health job, one part a file: the report and its settings (`report.ts`), one check a file
 * (`checks/`), running and grading them (`run.ts`), and storing and publishing the report
 * (`publish.ts`).
 */
export * from './report';
export * from './checks/canary';
export * from './checks/dead-letters';
export * from './checks/pending-batches';
export * from './checks/snapshots';
export * from './checks/agents';
export * from './run';
export * from './publish';
