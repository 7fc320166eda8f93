import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalEntry, WriteJournal } from './write-journal';

type Op = { kind: string; at?: Date };

/** The journal on a real directory: what a process that is killed or stopped leaves to the next one. */
describe('WriteJournal', () => {
  let directory: string;
  const file = () => join(directory, 'journal.ndjson');
  const lines = () =>
    readFileSync(file(), 'utf8')
      .split('\n')
      .filter((line) => line !== '');
  const entry = (lane: string, n: number, kind = `op${n}`): JournalEntry<Op> => ({ lane, n, op: { kind } });
  /** A journal as a new process opens it: what the previous one left, in order. */
  const reopen = (compactBytes = 1 << 20) => {
    const journal = new WriteJournal<Op>(directory, compactBytes);
    return { journal, left: journal.open() };
  };

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'chatbox-journal-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('replays the writes not acknowledged, in order per lane', () => {
    const { journal } = reopen();
    journal.append([entry('a', 1)]);
    journal.append([entry('b', 1)]);
    journal.append([entry('a', 2)]);
    journal.append([entry('a', 3)]);
    journal.ack('a', 2);
    journal.close();

    expect(reopen().left).toEqual([entry('a', 3), entry('b', 1)]);
  });

  it('keeps dates as dates (EJSON)', () => {
    const at = new Date('2026-12-01T10:00:00.123Z');
    const { journal } = reopen();
    journal.append([{ lane: 'a', n: 1, op: { kind: 'insert', at } }]);
    journal.close();
    const [replayed] = reopen().left;
    expect(replayed.op.at).toBeInstanceOf(Date);
    expect(replayed.op.at).toEqual(at);
  });

  it('skips a last line cut by the kill (its write was never attempted) and keeps everything before it', () => {
    const { journal } = reopen();
    journal.append([entry('a', 1)]);
    journal.append([entry('a', 2)]);
    journal.close();
    appendFileSync(file(), '{"lane":"a","n":3,"op":{"ki');

    expect(reopen().left).toEqual([entry('a', 1), entry('a', 2)]);
  });

  it('is emptied whenever nothing waits', () => {
    const { journal } = reopen();
    journal.append([entry('a', 1)]);
    journal.append([entry('b', 1)]);
    journal.ack('a', 1);
    expect(statSync(file()).size).toBeGreaterThan(0);
    journal.ack('b', 1);
    expect(statSync(file()).size).toBe(0);
    journal.close();
    expect(reopen().left).toEqual([]);
  });

  it('is rewritten with only the waiting writes once it grew past the compaction size', () => {
    const { journal } = reopen(200);
    journal.append([entry('waiting', 1)]);
    for (let n = 1; n <= 20; n++) {
      journal.append([entry('busy', n)]);
      journal.ack('busy', n);
    }
    // 40 lines were written; the compactions dropped the acknowledged ones, the waiting write stays first.
    expect(lines().length).toBeLessThan(10);
    expect(JSON.parse(lines()[0])).toEqual(entry('waiting', 1));
    journal.append([entry('waiting', 2)]);
    journal.close();
    expect(reopen().left).toEqual([entry('waiting', 1), entry('waiting', 2)]);
  });

  it('keeps what it replays until the replay is done: a start-up killed while replaying loses nothing', () => {
    const { journal } = reopen();
    journal.append([entry('a', 1)]);
    journal.close();

    // The next start reads it and is killed before its replayed writes were journaled again.
    const killed = reopen();
    expect(killed.left).toEqual([entry('a', 1)]);
    killed.journal.close();

    const next = reopen();
    expect(next.left).toEqual([entry('a', 1)]);
    // Journaled again under the new process's numbering, then the replay file goes.
    next.journal.append([entry('a', 1)]);
    next.journal.replayed();
    next.journal.close();
    expect(reopen().left).toEqual([entry('a', 1)]);
  });

  it('ignores lines that are not JSON at all', () => {
    writeFileSync(file(), `not json\n${JSON.stringify(entry('a', 1))}\n`);
    expect(reopen().left).toEqual([entry('a', 1)]);
  });
});
