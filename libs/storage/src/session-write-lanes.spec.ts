import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { MongoNetworkError } from 'mongodb';
import { AppConfig, DomainError, ErrorCode } from '@chatbox/common';
import type { CheckpointDocument, MessageDocument } from './message.schema';
import type { MessageRepository, MessageTotals } from './message.repository';
import { MongoRetry } from './mongo-retry';
import type { CounterDelta, CounterOutcome, CounterRevision, SessionRepository } from './session.repository';
import { JournaledOp, LaneOp, SessionWriteLanes, WriteLaneOptions } from './session-write-lanes';
import { WriteJournal } from './write-journal';

/**
 * An in-memory stand-in for the two repositories the lanes write through, with a switch that makes
 * the "database" refuse everything (as a network failure does) and a log of what reached it.
 */
class FakeDatabase {
  offline = false;
  readonly log: string[] = [];
  readonly messages = new Map<string, MessageDocument>();
  readonly checkpoints = new Map<string, CheckpointDocument>();
  readonly sessions = new Map<string, { msgCount: number; totalTokens: number; ctrRev?: string }>();
  /** Every counter write sent (also those refused). */
  readonly counterWrites: { delta: CounterDelta; revision: CounterRevision }[] = [];

  private reach(what: string): void {
    if (this.offline) throw new MongoNetworkError('connection refused');
    this.log.push(what);
  }

  readonly sessionRepository = {
    insert: async (document: { _id: string; ctrRev?: string }) => {
      this.reach(`insertSession ${document._id}`);
      if (!this.sessions.has(document._id))
        this.sessions.set(document._id, { msgCount: 0, totalTokens: 0, ctrRev: document.ctrRev });
    },
    changeFields: async (sessionId: string) => this.reach(`fields ${sessionId}`),
    applyCounters: async (
      sessionId: string,
      delta: CounterDelta,
      revision: CounterRevision,
    ): Promise<CounterOutcome> => {
      this.counterWrites.push({ delta, revision });
      this.reach(`counters ${sessionId}`);
      const session = this.sessions.get(sessionId);
      if (!session) return 'missing';
      if ((session.ctrRev ?? null) !== revision.prev)
        return session.ctrRev === revision.next ? 'applied' : 'conflict';
      session.msgCount += delta.messages;
      session.totalTokens += delta.promptTokens + delta.completionTokens;
      session.ctrRev = revision.next;
      return 'applied';
    },
    setCounters: async (
      sessionId: string,
      totals: MessageTotals,
      revision: CounterRevision,
    ): Promise<CounterOutcome> => {
      this.reach(`rebuild ${sessionId}`);
      const session = this.sessions.get(sessionId);
      if (!session) return 'missing';
      if ((session.ctrRev ?? null) !== revision.prev) return 'conflict';
      Object.assign(session, {
        msgCount: totals.count,
        totalTokens: totals.promptTokens + totals.completionTokens,
        ctrRev: revision.next,
      });
      return 'applied';
    },
    counterRevisionOf: async (sessionId: string) => {
      this.reach(`revision ${sessionId}`);
      const session = this.sessions.get(sessionId);
      return session ? (session.ctrRev ?? null) : undefined;
    },
  } as unknown as SessionRepository;

  readonly messageRepository = {
    insertDocument: async (document: MessageDocument) => {
      this.reach(`insert ${document._id}`);
      if (this.messages.has(document._id)) return 'duplicate';
      this.messages.set(document._id, document);
      return 'added';
    },
    saveCheckpointDocument: async (document: CheckpointDocument) => {
      this.reach(`checkpoint ${document._id}`);
      this.checkpoints.set(document._id, document);
    },
    deleteCheckpoint: async (messageId: string) => {
      this.reach(`dropCheckpoint ${messageId}`);
      this.checkpoints.delete(messageId);
    },
    totalsOf: async (sessionId: string): Promise<MessageTotals> => {
      const documents = [...this.messages.values()].filter((document) => document.sid === sessionId);
      const tokens = (document: MessageDocument) => Number(document.meta?.prompt_tokens ?? 0);
      return {
        count: documents.length,
        promptTokens: documents.reduce((sum, document) => sum + tokens(document), 0),
        completionTokens: 0,
        responseTimeSum: 0,
        responseCount: 0,
        maxResponseTime: 0,
      };
    },
  } as unknown as MessageRepository;
}

const RETRY_CONFIG = {
  mongo: { retryAttempts: 0, retryDelayMs: 1 },
  protocol: { mongoRetryCapMs: 1 },
} as unknown as AppConfig;

const OPTIONS: WriteLaneOptions = {
  capacity: 100,
  retryIntervalMs: 10,
  counterDelayMs: 60_000,
  counterConflictAttempts: 2,
};

function messageOf(sessionId: string, id: string, promptTokens = 0): LaneOp {
  const document: MessageDocument = {
    _id: id,
    sid: sessionId,
    uid: 'user',
    seq: 0,
    type: 'user_message',
    content: id,
    ts: new Date(),
    sender: 'user',
    ...(promptTokens ? { meta: { prompt_tokens: String(promptTokens) } } : {}),
  };
  const delta: CounterDelta = {
    messages: 1,
    promptTokens,
    completionTokens: 0,
    responseTimeSum: 0,
    responseCount: 0,
    maxResponseTime: 0,
  };
  return { kind: 'insertMessage', document, delta };
}

function checkpointOf(sessionId: string, messageId: string, owner = 'gone'): CheckpointDocument {
  const message = (messageOf(sessionId, messageId) as { document: MessageDocument }).document;
  return { _id: messageId, sid: sessionId, uid: 'user', owner, at: new Date(), message };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('SessionWriteLanes', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(new ConsoleLogger()));
  let database: FakeDatabase;
  let lanes: SessionWriteLanes;
  const revisions = new Map<string, string | null>();

  function lanesWith(options: Partial<WriteLaneOptions> = {}, journal?: WriteJournal<JournaledOp>) {
    const created = new SessionWriteLanes(
      database.sessionRepository,
      database.messageRepository,
      new MongoRetry(RETRY_CONFIG),
      journal,
      { ...OPTIONS, ...options },
    );
    created.setHooks({
      counterRevision: (sessionId) => revisions.get(sessionId),
      counterRevised: (sessionId, revision) => revisions.set(sessionId, revision),
    });
    return created;
  }

  /** A session already in the database at revision `r0`, known to the store. */
  async function session(sessionId: string): Promise<void> {
    revisions.set(sessionId, 'r0');
    await lanes.enqueue(sessionId, {
      kind: 'insertSession',
      document: { _id: sessionId, ctrRev: 'r0' } as never,
    });
  }

  beforeEach(() => {
    database = new FakeDatabase();
    revisions.clear();
    lanes = lanesWith();
  });

  afterEach(async () => {
    database.offline = false;
    await lanes.flush(Date.now() + 1_000);
  });

  it('writes each session in the order its writes were queued, also across an outage', async () => {
    await session('s1');
    await session('s2');
    database.offline = true;
    const written = ['a', 'b', 'c'].map((id) => lanes.enqueue('s1', messageOf('s1', id)));
    written.push(lanes.enqueue('s2', messageOf('s2', 'x')));
    written.push(lanes.enqueue('s1', { kind: 'fields', change: { set: { modelId: 'm' } } }));
    await waitUntil(() => lanes.waitingForDatabase);
    expect(lanes.size).toBe(5);
    database.offline = false;
    await Promise.all(written);
    const ofS1 = database.log.filter((entry) => / (a|b|c)$|fields s1/.test(entry));
    expect(ofS1).toEqual(['insert a', 'insert b', 'insert c', 'fields s1']);
    expect(lanes.size).toBe(0);
  });

  it("coalesces the counters of a session's messages into one update, on top of the revision it knew", async () => {
    await session('s1');
    for (const [id, tokens] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      await lanes.enqueue('s1', messageOf('s1', id, tokens));
    // Nothing yet: the counters wait for `counterDelayMs` or a settle.
    expect(database.counterWrites).toHaveLength(0);
    expect(await lanes.settle(Date.now() + 1_000)).toBe(0);
    expect(database.counterWrites).toHaveLength(1);
    expect(database.counterWrites[0].delta).toMatchObject({ messages: 3, promptTokens: 6 });
    expect(database.counterWrites[0].revision.prev).toBe('r0');
    expect(database.sessions.get('s1')).toMatchObject({ msgCount: 3, totalTokens: 6 });
    expect(revisions.get('s1')).toBe(database.sessions.get('s1')!.ctrRev);
  });

  it('sends a counter update that failed again unchanged: the repeat cannot count twice', async () => {
    await session('s1');
    await lanes.enqueue('s1', messageOf('s1', 'a', 5));
    database.offline = true;
    await lanes.settle(Date.now() + 50);
    expect(database.counterWrites.length).toBeGreaterThanOrEqual(1);
    database.offline = false;
    expect(await lanes.settle(Date.now() + 1_000)).toBe(0);
    await waitUntil(() => !lanes.busy('s1'));
    const sent = new Set(database.counterWrites.map((write) => JSON.stringify(write)));
    expect(sent.size).toBe(1);
    expect(database.sessions.get('s1')).toMatchObject({ msgCount: 1, totalTokens: 5 });
  });

  it('rebuilds the counters from the messages when another writer moved the revision', async () => {
    await session('s1');
    await lanes.enqueue('s1', messageOf('s1', 'a', 1));
    // Another instance counted something meanwhile (and maybe this message: a rebuild).
    Object.assign(database.sessions.get('s1')!, { ctrRev: 'elsewhere', msgCount: 7 });
    await lanes.settle(Date.now() + 1_000);
    await waitUntil(() => !lanes.busy('s1'));
    expect(database.log).toContain('rebuild s1');
    expect(database.sessions.get('s1')).toMatchObject({ msgCount: 1, totalTokens: 1 });
  });

  it('refuses writes beyond its capacity with a rejected promise, never a throw, and takes them again once there is room', async () => {
    lanes = lanesWith({ capacity: 2 });
    database.offline = true;
    const first = lanes.enqueue('s1', messageOf('s1', 'a'));
    const second = lanes.enqueue('s1', messageOf('s1', 'b'));
    let refused: Promise<void> | undefined;
    expect(() => (refused = lanes.enqueue('s1', messageOf('s1', 'c')))).not.toThrow();
    await expect(refused).rejects.toEqual(expect.any(DomainError));
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.DATABASE_ERROR });
    expect(lanes.size).toBe(2);
    expect(lanes.hasCapacity()).toBe(false);
    database.offline = false;
    await Promise.all([first, second]);
    expect(lanes.hasCapacity(2)).toBe(true);
    await lanes.enqueue('s1', messageOf('s1', 'c'));
    expect([...database.messages.keys()]).toEqual(['a', 'b', 'c']);
  });

  it("deletes a reply's checkpoint with the write that stores the reply whole", async () => {
    await session('s1');
    await lanes.enqueue('s1', { kind: 'checkpoint', document: checkpointOf('s1', 'reply') });
    expect(database.checkpoints.has('reply')).toBe(true);
    await lanes.enqueue('s1', { ...messageOf('s1', 'reply'), dropsCheckpoint: true } as LaneOp);
    expect(database.checkpoints.has('reply')).toBe(false);
    expect(lanes.size).toBe(0);
  });

  it('shows recovery the checkpoints still queued, the replies stored whole, and the markers of replies without either', async () => {
    await session('s1');
    database.offline = true;
    void lanes.enqueue('s1', { kind: 'checkpoint', document: checkpointOf('s1', 'queued') });
    void lanes.enqueue('s1', { ...messageOf('s1', 'done'), dropsCheckpoint: true } as LaneOp);
    lanes.markReplyStarted(checkpointOf('s1', 'early'));
    lanes.markReplyStarted(checkpointOf('s1', 'done'));
    const view = lanes.checkpointView();
    expect(view.pending.map((document) => document._id)).toEqual(['queued']);
    expect([...view.settled]).toEqual(['done']);
    expect(view.markers.map((document) => document._id)).toEqual(['early']);
    lanes.clearReplyMarker('early');
    expect(lanes.checkpointView().markers).toEqual([]);
  });

  describe('with a journal', () => {
    let directory: string;
    beforeEach(() => {
      directory = mkdtempSync(join(tmpdir(), 'chatbox-lanes-'));
    });
    afterEach(() => rmSync(directory, { recursive: true, force: true }));
    const journal = () => new WriteJournal<JournaledOp>(directory, 1 << 20);

    it('replays what a killed process had not written, rebuilding the counters, and keeps its reply markers', async () => {
      const killed = lanesWith({}, journal());
      killed.replayJournal();
      database.offline = true;
      void killed.enqueue('s1', { kind: 'insertSession', document: { _id: 's1' } as never }).catch(() => 0);
      void killed.enqueue('s1', messageOf('s1', 'a', 4)).catch(() => 0);
      killed.markReplyStarted(checkpointOf('s1', 'streaming'));
      await waitUntil(() => killed.waitingForDatabase);
      // Stopped while the database is away: everything stays in the journal, as after kill -9.
      expect(await killed.flush(Date.now())).toBe(2);

      database.offline = false;
      lanes = lanesWith({}, journal());
      expect(lanes.replayJournal()).toBe(2);
      expect(lanes.checkpointView().markers.map((document) => document._id)).toEqual(['streaming']);
      expect(await lanes.settle(Date.now() + 1_000)).toBe(0);
      await waitUntil(() => !lanes.busy('s1'));
      expect(database.messages.has('a')).toBe(true);
      expect(database.log).toContain('rebuild s1');
      expect(database.sessions.get('s1')).toMatchObject({ msgCount: 1, totalTokens: 4 });

      // The marker survives another restart until recovery clears it.
      const again = lanesWith({}, journal());
      await lanes.flush(Date.now() + 1_000);
      expect(again.replayJournal()).toBe(0);
      expect(again.checkpointView().markers.map((document) => document._id)).toEqual(['streaming']);
      again.clearReplyMarker('streaming');
      await again.flush(Date.now() + 1_000);
      const last = lanesWith({}, journal());
      expect(last.replayJournal()).toBe(0);
      expect(last.checkpointView().markers).toEqual([]);
      await last.flush(Date.now() + 1_000);
    });

    it("journals a loop turn's writes in one append and attempts them after the next turn's I/O, journal first", async () => {
      const written = journal();
      lanes = lanesWith({}, written);
      lanes.replayJournal();
      const order: string[] = [];
      const append = written.append.bind(written);
      jest.spyOn(written, 'append').mockImplementation((entries) => {
        order.push(`journal ${entries.length}`);
        append(entries);
      });
      const landed = [
        lanes.enqueue('s1', { kind: 'insertSession', document: { _id: 's1' } as never }),
        lanes.enqueue('s1', messageOf('s1', 'a')),
        lanes.enqueue('s2', messageOf('s2', 'b')),
      ];
      lanes.markReplyStarted(checkpointOf('s1', 'streaming'));
      // The end of this turn, then the next turn's I/O: neither journaled nor attempted yet.
      await new Promise((resolve) => setImmediate(resolve));
      expect(order).toEqual([]);
      expect(database.log).toEqual([]);
      await Promise.all(landed);
      order.push(...database.log);
      expect(order[0]).toBe('journal 4');
      expect(order.slice(1).sort()).toEqual(['insert a', 'insert b', 'insertSession s1']);
    });

    it('leaves no marker behind for a reply given up in the loop turn it started in', async () => {
      const first = lanesWith({}, journal());
      first.replayJournal();
      first.markReplyStarted(checkpointOf('s1', 'short'));
      first.clearReplyMarker('short');
      await first.flush(Date.now() + 1_000);
      lanes = lanesWith({}, journal());
      lanes.replayJournal();
      expect(lanes.checkpointView().markers).toEqual([]);
    });

    it('journals replayed writes again before the previous journal goes (a crash right after start-up loses none)', async () => {
      const killed = lanesWith({}, journal());
      killed.replayJournal();
      database.offline = true;
      void killed.enqueue('s1', messageOf('s1', 'a')).catch(() => 0);
      await waitUntil(() => killed.waitingForDatabase);
      await killed.flush(Date.now());

      // Killed again in the very turn it replayed: the next start still finds the write.
      const restarted = lanesWith({}, journal());
      expect(restarted.replayJournal()).toBe(1);
      database.offline = false;
      lanes = lanesWith({}, journal());
      expect(lanes.replayJournal()).toBe(1);
      await lanes.settle(Date.now() + 1_000);
      await waitUntil(() => !lanes.busy('s1'));
      expect(database.messages.has('a')).toBe(true);
      await restarted.flush(Date.now());
    });
  });
});
