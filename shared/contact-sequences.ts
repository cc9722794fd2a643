/**
 * Sequence numbers a writer gives its writes to each contact: 1, 2, 3, … per contact, so the
 * contact's applied log folds them into one high-water mark (`upTo`). One counter across all
 * contacts would leave every contact a gap at each write to another one, and its log a number
 * for each of them (`beyond`), without bound. The cost is one number per contact written.
 */
export class ContactSequences {
  private readonly last = new Map<string, number>();

  next(networkId: string, groupId: string, contactId: string): number {
    // Ids never hold control characters, so NUL cannot occur inside one.
    const key = `${networkId}\u0000${groupId}\u0000${contactId}`;
    const seq = (this.last.get(key) ?? 0) + 1;
    this.last.set(key, seq);
    return seq;
  }
}
