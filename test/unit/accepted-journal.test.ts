/**
 * The local mesh's journal of accepted messages on a real filesystem: what a new journal in the
 * same folder must publish again, torn lines, compaction at a clean stop, and derived messages
 * written without their own fsync but synced before any done mark.
 */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AcceptedJournal, JOURNAL_FILE, readingOf, type JournaledMessage } from '../../cli/accepted-journal';
import { silentLogger } from '../../shared/log';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'spine-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const message = (id: string, topic = 'projects/p/topics/spine-contact-writes'): JournaledMessage => ({
  id,
  topic,
  data: Buffer.from(id).toString('base64'),
  attributes: { id },
});
// Done marks are written about once a second (DONE_FLUSH_MS).
const doneFlush = () => new Promise((resolve) => setTimeout(resolve, 1_300));

test('a journal opened again holds exactly what was accepted and not marked done, in acceptance order', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  await journal.append([message('a'), message('b')]);
  await journal.append([message('c')]);
  journal.markDone(['b']);
  await doneFlush();
  // A crash: the journal is never closed.
  const reopened = await AcceptedJournal.open(dir, silentLogger);
  expect(reopened.unfinished.map((m) => m.id)).toEqual(['a', 'c']);
  expect(reopened.unfinished[0]).toEqual(message('a'));
  await reopened.close();
});

test('a line torn by a crash mid-write is skipped; the lines before it count', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  await journal.append([message('a')]);
  await appendFile(path.join(dir, JOURNAL_FILE), '{"publish":{"id":"tor');
  const reopened = await AcceptedJournal.open(dir, silentLogger);
  expect(reopened.unfinished.map((m) => m.id)).toEqual(['a']);
  await reopened.close();
});

test('a clean close leaves only what is not done', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  await journal.append([message('a'), message('b'), message('c')]);
  journal.markDone(['a', 'c']);
  await journal.close();
  const lines = (await readFile(path.join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n');
  expect(lines.map((line) => JSON.parse(line).publish.id)).toEqual(['b']);
});

test('a message done before its publish was written is not journaled at all', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  journal.markDone(['fast']);
  await journal.append([message('fast'), message('slow')]);
  await journal.close();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished.map((m) => m.id)).toEqual(['slow']);
});

test('a derived message resolves without an fsync of its own, and is synced before the done mark of its source', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  await journal.append([message('source')]);
  expect(journal.stats().fsyncs).toBe(1);
  await journal.append([message('pending-copy', 'projects/p/topics/spine-pending-writes')], { sync: false });
  expect(journal.stats().fsyncs).toBe(1);
  journal.markDone(['source']);
  await doneFlush();
  expect(journal.stats().fsyncs).toBe(2);
  const reopened = await AcceptedJournal.open(dir, silentLogger);
  expect(reopened.unfinished.map((m) => m.id)).toEqual(['pending-copy']);
  await reopened.close();
  await journal.close();
});

test('a copy that holds its source keeps the source not done until the copy is done, in either order', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  await journal.append([message('source'), message('other')]);
  const fsyncs = journal.stats().fsyncs;
  journal.hold('source', 'copy');
  // The source was delivered (its copy taken): still not done while the copy is pending.
  journal.markDone(['source', 'other']);
  await doneFlush();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished.map((m) => m.id)).toEqual(['source']);
  // A second copy (persist deferred the first to a later flush) keeps holding it once the first is done.
  journal.hold('source', 'copy-again');
  journal.markDone(['copy']);
  await doneFlush();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished.map((m) => m.id)).toEqual(['source']);
  journal.markDone(['copy-again']);
  await doneFlush();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished).toEqual([]);
  // Holding wrote nothing of its own: no fsync beyond the one of the appends.
  expect(journal.stats().fsyncs).toBe(fsyncs);

  // The copy done before its source was: the source is done when it is.
  await journal.append([message('late-source')]);
  journal.hold('late-source', 'late-copy');
  journal.markDone(['late-copy']);
  journal.markDone(['late-source']);
  await journal.close();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished).toEqual([]);
});

test('an entry done before it was held (the relay faster than the pass-through) is journaled and stays until released', async () => {
  const journal = await AcceptedJournal.open(dir, silentLogger);
  // The relay delivered the message before the pass-through had journaled it...
  journal.markDone(['fast']);
  // ...but a second reader (the archiver) has yet to read it: held, it must be journaled after all.
  journal.hold('fast', readingOf('archive-subscription', 'fast'));
  await journal.append([message('fast')]);
  await doneFlush();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished.map((m) => m.id)).toEqual(['fast']);
  journal.markDone([readingOf('archive-subscription', 'fast')]);
  await journal.close();
  expect((await AcceptedJournal.open(dir, silentLogger)).unfinished).toEqual([]);
});
