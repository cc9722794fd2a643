import { type DeadLetterCheck, describeError } from '../report';

export async function checkDeadLetters(deadLetters: { count(): Promise<number> }): Promise<DeadLetterCheck> {
  try {
    const count = await deadLetters.count();
    return { ok: count === 0, count };
  } catch (error) {
    return { ok: false, count: null, error: `dead letters could not be counted: ${describeError(error)}` };
  }
}
