import type { PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';

/**
 * One transaction on one pooled connection in pipeline mode: statements are sent as they are
 * issued, without waiting for the answers of those before them, so the BEGIN, the first reads
 * of the work and, at the end, the last writes and the COMMIT each share a round trip.
 *
 * Statements nobody waits for (the BEGIN, writes whose result is not read) are `unanswered`:
 * `commit()` counts only when every one of them succeeded. In a transaction, a failed statement
 * makes every later one fail too (25P02), and COMMIT of such a transaction rolls back without an
 * error, so the first failure is kept: it is the cause to report, and to retry on.
 */
export class PipelinedTransaction {
  /** False once the transaction is ending: late queries of work it started go to the pool. */
  open = true;
  /** The first statement of the transaction that failed, whoever waited for it. */
  failure: unknown;
  private readonly unanswered: Array<Promise<unknown>> = [];

  constructor(readonly client: PoolClient) {}

  /** Sends a statement whose answer the caller waits for. */
  query<R extends QueryResultRow = QueryResultRow>(config: QueryConfig | string): Promise<QueryResult<R>> {
    const answer = this.client.query<R>(config);
    // Attached now, so failures are noted in the order the server answers.
    answer.catch((error: unknown) => {
      if (this.failure === undefined) this.failure = error;
    });
    return answer;
  }

  /** Sends a statement nobody waits for; its failure fails the commit. */
  send(config: QueryConfig | string): void {
    this.unanswered.push(this.query(config).catch(() => undefined));
  }

  /** COMMIT, sent behind the statements still unanswered; throws the first failure of the transaction. */
  async commit(): Promise<void> {
    this.open = false;
    const commit = this.query('COMMIT');
    await Promise.all(this.unanswered);
    const result = await commit.catch(() => undefined);
    if (this.failure !== undefined) throw this.failure;
    // COMMIT of a transaction that failed answers ROLLBACK; a failure above has said why already.
    if (result?.command !== 'COMMIT') throw new Error(`PostgreSQL answered ${result?.command} to COMMIT`);
  }
}
