import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { BSON } from 'mongodb';

/** One write waiting for the database, as journaled (`n` counts the writes of its lane). */
export interface JournalEntry<Op> {
  lane: string;
  n: number;
  op: Op;
}

interface AckLine {
  ack: string;
  upTo: number;
}

const JOURNAL_FILE = 'journal.ndjson';
const REPLAY_FILE = 'journal.replay.ndjson';

/**
 * The outbox's write-ahead journal under `DATA_DIR/outbox`: every database write is appended (one
 * JSON line, EJSON so dates survive) before it is attempted and acknowledged once it landed, so a
 * process killed outright (kill -9) replays at start-up what had not reached the database. Appends go
 * to the page cache (no fsync): this survives the process, not the machine (docs/operations.md).
 */
export class WriteJournal<Op> {
  private fd?: number;
  private readonly pending = new Map<string, Map<number, string>>();
  private bytesSinceCompaction = 0;

  constructor(
    private readonly directory: string,
    private readonly compactBytes: number,
  ) {}

  /** Reads what the previous process left (unacknowledged writes, in order) and starts a new file. */
  open(): JournalEntry<Op>[] {
    mkdirSync(this.directory, { recursive: true });
    const current = join(this.directory, JOURNAL_FILE);
    const replay = join(this.directory, REPLAY_FILE);
    // A replay file exists only when the previous start-up died while replaying it: read it first.
    const left = [...readEntries<Op>(replay), ...readEntries<Op>(current)];
    if (existsSync(current)) renameSync(current, replay);
    this.fd = openSync(current, 'a');
    return left;
  }

  /** Called once the replayed writes were journaled again (in the new file). */
  replayed(): void {
    rmSync(join(this.directory, REPLAY_FILE), { force: true });
  }

  /** Appends the entries in one write (a list, not spread arguments: a replay may hold thousands). */
  append(entries: readonly JournalEntry<Op>[]): void {
    let text = '';
    for (const entry of entries) {
      const line = `${BSON.EJSON.stringify(entry, { relaxed: true })}\n`;
      let lane = this.pending.get(entry.lane);
      if (!lane) this.pending.set(entry.lane, (lane = new Map()));
      lane.set(entry.n, line);
      text += line;
    }
    if (text !== '') this.write(text);
  }

  /** Every write of the lane up to `upTo` reached the database. */
  ack(laneKey: string, upTo: number): void {
    const lane = this.pending.get(laneKey);
    if (!lane) return;
    for (const n of lane.keys()) if (n <= upTo) lane.delete(n);
    if (lane.size === 0) this.pending.delete(laneKey);
    if (this.pending.size === 0) {
      this.truncate();
      return;
    }
    this.write(`${JSON.stringify({ ack: laneKey, upTo } satisfies AckLine)}\n`);
    if (this.bytesSinceCompaction > this.compactBytes) this.compact();
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private write(line: string): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, line);
    this.bytesSinceCompaction += Buffer.byteLength(line);
  }

  private truncate(): void {
    if (this.fd === undefined) return;
    ftruncateSync(this.fd, 0);
    this.bytesSinceCompaction = 0;
  }

  /** Rewrites the file with only the writes still waiting (atomic rename over the old one). */
  private compact(): void {
    const current = join(this.directory, JOURNAL_FILE);
    const next = join(this.directory, `${JOURNAL_FILE}.next`);
    const fd = openSync(next, 'w');
    for (const lane of this.pending.values()) for (const line of lane.values()) writeSync(fd, line);
    closeSync(fd);
    renameSync(next, current);
    this.close();
    this.fd = openSync(current, 'a');
    this.bytesSinceCompaction = 0;
  }
}

function readEntries<Op>(path: string): JournalEntry<Op>[] {
  if (!existsSync(path)) return [];
  const lanes = new Map<string, Map<number, JournalEntry<Op>>>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let parsed: JournalEntry<Op> | AckLine;
    try {
      parsed = BSON.EJSON.parse(line, { relaxed: true }) as JournalEntry<Op> | AckLine;
    } catch {
      continue; // a line cut by the kill: its write was never attempted either
    }
    if ('ack' in parsed) {
      const lane = lanes.get(parsed.ack);
      for (const n of lane?.keys() ?? []) if (n <= parsed.upTo) lane?.delete(n);
    } else {
      let lane = lanes.get(parsed.lane);
      if (!lane) lanes.set(parsed.lane, (lane = new Map()));
      lane.set(parsed.n, parsed);
    }
  }
  return [...lanes.values()].flatMap((lane) => [...lane.values()].sort((a, b) => a.n - b.n));
}
