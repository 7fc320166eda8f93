import { Logger } from '@nestjs/common';
import { DomainError, ErrorCode, randomHex } from '@chatbox/common';
import type { MessageDocument, CheckpointDocument } from './message.schema';
import { MessageRepository, MessageTotals } from './message.repository';
import { isDatabaseUnavailable, MongoRetry } from './mongo-retry';
import type { SessionDocument } from './session.schema';
import { CounterDelta, CounterRevision, FieldChange, SessionRepository } from './session.repository';
import type { Assist } from './session.model';
import { JournalEntry, WriteJournal } from './write-journal';

/** Every write of a session, as queued, journaled and replayed (plain data: EJSON round-trips it). */
export type LaneOp =
  | { kind: 'insertSession'; document: SessionDocument }
  | {
      kind: 'insertMessage';
      document: MessageDocument;
      delta?: CounterDelta;
      flush?: boolean;
      /** A reply stored whole: its checkpoint is deleted by the same write (no second outbox entry). */
      dropsCheckpoint?: boolean;
    }
  | { kind: 'fields'; change: FieldChange }
  | { kind: 'end'; at: Date }
  | { kind: 'closeAssist'; since: Date; assist: Assist; resolvesHelp?: boolean }
  /** Queued in the user's own lane (`userLane`), so the new session's writes do not wait for it. */
  | { kind: 'endOthers'; userId: string; sessionId: string; before: Date }
  | { kind: 'checkpoint'; document: CheckpointDocument }
  | { kind: 'dropCheckpoint'; messageId: string }
  | { kind: 'reconcile' };

/**
 * A reply that started streaming, in the journal only (never sent to the database): kept until the
 * reply is stored or given up, so a process killed before the reply's first checkpoint still leaves
 * what the next start needs to store it as `interrupted` (`checkpointView`).
 */
export interface ReplyMarker {
  kind: 'replyStarted';
  document: CheckpointDocument;
}

/** What the journal holds: the lanes' writes and the markers of replies streaming. */
export type JournaledOp = LaneOp | ReplyMarker;

/** A call that must run in the session's order but is not queued when the database is down. */
type LaneCall = { kind: 'call'; run: () => Promise<unknown> };

interface QueuedOp {
  n: number;
  op: LaneOp | LaneCall;
  /** Replayed from the journal: counters are rebuilt from the messages instead of added. */
  replayed: boolean;
  /**
   * An insert's counter revision as known before its first attempt was sent: its counters may be
   * added to that state, which cannot include them yet (undefined revision: not known).
   */
  counterBase?: { revision: string | null | undefined };
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Lane {
  ops: QueuedOp[];
  running: boolean;
  /** Counters of messages already inserted, not written yet (coalesced into one update). */
  delta?: CounterDelta;
  /** The revision `delta` may be added to (see `QueuedOp.counterBase`). */
  deltaBase?: string | null;
  /** A counter write sent whose outcome is not known: sent again exactly as it was, first. */
  counterWrite?: { delta: CounterDelta; revision: CounterRevision };
  /** The counter revision this lane wrote last. */
  revision?: string;
  flushCounters: boolean;
  counterTimer?: NodeJS.Timeout;
  /** The counters are rebuilt from the messages before anything is added to them again. */
  reconcile: boolean;
  /** Rebuilds in a row that met another writer's update (bounded by `counterConflictAttempts`). */
  conflicts: number;
  /** The database refused this lane's head write: the lane waits (the outbox) and retries. */
  blocked: boolean;
  retryTimer?: NodeJS.Timeout;
  lastN: number;
  lastProcessedN: number;
}

export interface WriteLaneOptions {
  /** Writes waiting in all lanes together before new ones are refused (the outbox bound). */
  capacity: number;
  retryIntervalMs: number;
  /** How long the counters of a message may wait to be written together with the next ones. */
  counterDelayMs: number;
  /** Counter rebuilds that meet another writer's update in a row before the lane waits and retries. */
  counterConflictAttempts: number;
}

export interface LaneHooks {
  /** The session's average response time after its counters changed (when the store knows it). */
  averageResponseTime?(sessionId: string): number | undefined;
  /** Sessions ended by an `endOthers` write (found only in the database). */
  sessionsEnded?(sessionIds: string[], userId: string): void;
  /**
   * Counters rebuilt from the messages: the store refreshes what it holds (`pending`: what the
   * writes still queued in the lane add on top).
   */
  reconciled?(sessionId: string, totals: MessageTotals, pending: CounterDelta | undefined): void;
  /** The counter revision of the session as the store last saw it (null: none; undefined: unknown). */
  counterRevision?(sessionId: string): string | null | undefined;
  /** This process moved the session's counters to `revision`. */
  counterRevised?(sessionId: string, revision: string): void;
}

/** A new counter revision: random, so no two writers (or two attempts of one rebuild) pick the same. */
export function newCounterRevision(): string {
  return randomHex(COUNTER_REVISION_BYTES);
}
const COUNTER_REVISION_BYTES = 12;

/** The journal lane of a reply's marker (never a session id: those are 32 hex characters). */
function markerLane(messageId: string): string {
  return `reply:${messageId}`;
}

/** The lane of writes about a user rather than one session (ending their older sessions). */
export function userLane(userId: string): string {
  return `user:${userId}`;
}

/**
 * Runs `callback` after the I/O of the next loop turn (in that turn's check phase). Writes queued
 * while a burst of frames is handled start only once the requests and frames those frames caused
 * have gone out (their sockets' connects complete in the next turn's poll phase): the database work
 * and the journal do not stand between a user and the model (docs/decisions/0012).
 */
function afterNextTurnIo(callback: () => void): void {
  setImmediate(() => setImmediate(callback));
}

export const DATABASE_UNAVAILABLE = 'The database is unavailable; try again shortly';

/** What a refused write rejects with (SPEC 4.9, 5: DATABASE_ERROR / 503, never INTERNAL_ERROR). */
export function databaseUnavailable(): DomainError {
  return new DomainError(ErrorCode.DATABASE_ERROR, DATABASE_UNAVAILABLE);
}

/**
 * One writer per session in this process (SPEC 8): every write of a session document and of its
 * messages goes through the session's lane, in order, so no two updates of one document race
 * (FerretDB applies updates as read-modify-write without a transaction). Message counters are
 * coalesced into one `$inc` per exchange, written as a compare-and-set on the session's counter
 * revision (`ctrRev`): an update whose outcome is unknown is sent again unchanged, and neither the
 * repeat nor the first attempt landing late can count twice. When another writer moved the revision
 * (another instance, or a rebuild that may already count these messages), the counters are rebuilt
 * from the stored messages instead (absolute values, a compare-and-set too). docs/decisions/0007.
 *
 * The lanes are also the outbox (SPEC 13): a write the database refuses after the retries stays at
 * the head of its lane, and the session's later writes queue behind it, in order, until the database
 * answers again. Every queued write is journaled first (`WriteJournal`), so neither SIGTERM nor
 * kill -9 loses it. The total is bounded: when full, new writes are refused (DATABASE_ERROR).
 */
export class SessionWriteLanes {
  private readonly logger = new Logger(SessionWriteLanes.name);
  private readonly lanes = new Map<string, Lane>();
  /** Replies streaming (this process's, or replayed from the previous one's journal), by message id. */
  private readonly markers = new Map<string, CheckpointDocument>();
  private queued = 0;
  private closing = false;
  private hooks: LaneHooks = {};
  /**
   * Writes queued in this loop turn: journaled after the next turn's I/O (`startQueuedLater`), and
   * always before they are attempted.
   */
  private unjournaled: JournalEntry<JournaledOp>[] = [];
  /** Lanes with writes queued in this loop turn, started in the next. */
  private readonly lanesToStart = new Map<string, Lane>();
  private startScheduled = false;

  constructor(
    private readonly sessions: SessionRepository,
    private readonly messages: MessageRepository,
    private readonly retry: MongoRetry,
    private readonly journal: WriteJournal<JournaledOp> | undefined,
    private readonly options: WriteLaneOptions,
  ) {}

  setHooks(hooks: LaneHooks): void {
    this.hooks = hooks;
  }

  /** Writes waiting for the database (journaled, in order per session). */
  get size(): number {
    return this.queued;
  }

  /** Whether the database refused a write that is still waiting. */
  get waitingForDatabase(): boolean {
    return [...this.lanes.values()].some((lane) => lane.blocked);
  }

  hasCapacity(writes = 1): boolean {
    return this.queued + writes <= this.options.capacity;
  }

  /** DATABASE_ERROR when the outbox cannot take `writes` more writes. */
  assertCapacity(writes = 1): void {
    if (!this.hasCapacity(writes)) throw databaseUnavailable();
  }

  /**
   * Queues a write of the session (journaled at once). The promise settles when the write reached the
   * database; it rejects with DATABASE_ERROR when the outbox is full (never a synchronous throw: a
   * caller that does not wait, `void enqueue(...).catch(...)`, is never interrupted by it) and on a
   * permanent error.
   */
  enqueue(sessionId: string, op: LaneOp, options: { replayed?: boolean } = {}): Promise<void> {
    if (!this.hasCapacity()) return Promise.reject(databaseUnavailable());
    return this.push(sessionId, op, options.replayed === true) as Promise<void>;
  }

  /**
   * Runs `run` in the session's order (after its queued writes). Not queued while the database is
   * refusing this session's writes: the caller gets DATABASE_ERROR at once.
   */
  call<T>(sessionId: string, run: () => Promise<T>): Promise<T> {
    const lane = this.lanes.get(sessionId);
    if (lane?.blocked) return Promise.reject(databaseUnavailable());
    return this.push(sessionId, { kind: 'call', run }, false) as Promise<T>;
  }

  /** Messages queued for the session and not in the database yet (history reads add them). */
  pendingMessages(sessionId: string): MessageDocument[] {
    const lane = this.lanes.get(sessionId);
    if (!lane) return [];
    return lane.ops.flatMap((queued) => (queued.op.kind === 'insertMessage' ? [queued.op.document] : []));
  }

  /** File ids of every message queued and not in the database yet. */
  pendingFileIds(): string[] {
    return [...this.lanes.values()].flatMap((lane) =>
      lane.ops.flatMap((queued) =>
        queued.op.kind === 'insertMessage' && queued.op.document.fileId ? [queued.op.document.fileId] : [],
      ),
    );
  }

  /** Whether the session has writes in flight or waiting (its cached state must be kept). */
  busy(sessionId: string): boolean {
    return this.lanes.has(sessionId);
  }

  /**
   * Replays the journal of a previous process (before anything new is queued): its writes are queued
   * again, in order, and land in the background; its reply markers are kept (`checkpointView`).
   * Returns how many writes were queued.
   */
  replayJournal(): number {
    if (!this.journal) return 0;
    const entries: JournalEntry<JournaledOp>[] = this.journal.open();
    let writes = 0;
    for (const { lane, op } of entries) {
      if (op.kind === 'replyStarted') {
        this.markReplyStarted(op.document);
        continue;
      }
      writes++;
      void this.push(lane, op, true).catch(() => undefined);
    }
    // In the new file before the old one goes.
    this.journalQueued();
    this.journal.replayed();
    if (entries.length > 0)
      this.logger.warn(
        { writes, replies: entries.length - writes },
        'replaying writes journaled by the previous process',
      );
    return writes;
  }

  /** A reply starts streaming: a marker in the journal only (see `ReplyMarker`). */
  markReplyStarted(document: CheckpointDocument): void {
    this.markers.set(document._id, document);
    this.unjournaled.push({ lane: markerLane(document._id), n: 1, op: { kind: 'replyStarted', document } });
    this.startQueuedLater();
  }

  /** The reply was stored (its write is journaled) or given up: its marker goes. */
  clearReplyMarker(messageId: string): void {
    if (!this.markers.delete(messageId)) return;
    // A marker still unjournaled would otherwise be journaled after its acknowledgement, for good.
    this.journalQueued();
    this.journal?.ack(markerLane(messageId), 1);
  }

  /**
   * What start-up recovery must consult besides the stored checkpoints: checkpoints still queued
   * (newest per reply), the replies whose checkpoint is on its way out (stored whole, or dropped), and
   * the markers of replies that have neither.
   */
  checkpointView(): { pending: CheckpointDocument[]; settled: Set<string>; markers: CheckpointDocument[] } {
    const pending = new Map<string, CheckpointDocument>();
    const settled = new Set<string>();
    for (const lane of this.lanes.values())
      for (const { op } of lane.ops) {
        if (op.kind === 'checkpoint') {
          pending.set(op.document._id, op.document);
          settled.delete(op.document._id);
        } else if (op.kind === 'dropCheckpoint' || op.kind === 'insertMessage') {
          const messageId = op.kind === 'dropCheckpoint' ? op.messageId : op.document._id;
          pending.delete(messageId);
          settled.add(messageId);
        }
      }
    const markers = [...this.markers.values()].filter(
      (marker) => !settled.has(marker._id) && !pending.has(marker._id),
    );
    return { pending: [...pending.values()], settled, markers };
  }

  /**
   * Shutdown: writes everything waiting (counters included) until `deadline`; what is left stays in
   * the journal for the next start.
   */
  async flush(deadline: number): Promise<number> {
    this.closing = true;
    const left = await this.settle(deadline);
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.retryTimer);
      clearTimeout(lane.counterTimer);
    }
    this.journalQueued();
    this.journal?.close();
    return left;
  }

  /** Writes everything waiting now (counters included) and waits until `deadline`; returns what is left. */
  async settle(deadline: number): Promise<number> {
    for (const [sessionId, lane] of this.lanes) {
      lane.flushCounters = true;
      if (lane.blocked) this.unblock(sessionId, lane);
      else void this.drain(sessionId, lane);
    }
    while (this.lanes.size > 0 && Date.now() < deadline) {
      if ([...this.lanes.values()].every((lane) => lane.blocked)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.queued;
  }

  private push(sessionId: string, op: LaneOp | LaneCall, replayed: boolean): Promise<unknown> {
    const lane = this.lanes.get(sessionId) ?? this.newLane(sessionId);
    return new Promise((resolve, reject) => {
      const n = ++lane.lastN;
      if (op.kind !== 'call') {
        this.unjournaled.push({ lane: sessionId, n, op });
        this.queued++;
      }
      lane.ops.push({ n, op, replayed, resolve, reject });
      this.lanesToStart.set(sessionId, lane);
      this.startQueuedLater();
    });
  }

  /**
   * The writes queued in this loop turn are journaled and started after the next turn's I/O
   * (`afterNextTurnIo`): in one journal write, and after the provider requests of the same frames.
   */
  private startQueuedLater(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    afterNextTurnIo(() => {
      this.startScheduled = false;
      this.journalQueued();
      const lanes = [...this.lanesToStart];
      this.lanesToStart.clear();
      // A lane that drained meanwhile (its writes taken by a drain already running) may be gone.
      for (const [sessionId, lane] of lanes)
        if (this.lanes.get(sessionId) === lane) void this.drain(sessionId, lane);
    });
  }

  private journalQueued(): void {
    if (this.unjournaled.length === 0) return;
    const entries = this.unjournaled;
    this.unjournaled = [];
    this.journal?.append(entries);
  }

  private newLane(sessionId: string): Lane {
    const lane: Lane = {
      ops: [],
      running: false,
      flushCounters: false,
      reconcile: false,
      conflicts: 0,
      blocked: false,
      lastN: 0,
      lastProcessedN: 0,
    };
    this.lanes.set(sessionId, lane);
    return lane;
  }

  private async drain(sessionId: string, lane: Lane): Promise<void> {
    if (lane.running || lane.blocked) return;
    lane.running = true;
    try {
      for (;;) {
        // A counter write of unknown outcome goes again first, exactly as it was sent.
        if (lane.counterWrite) {
          await this.writeCounters(sessionId, lane);
          continue;
        }
        const head = lane.ops[0];
        if (head) {
          // A lane already running takes writes queued meanwhile at once: journaled first.
          this.journalQueued();
          try {
            const result = await this.execute(sessionId, lane, head);
            this.dequeue(lane, head);
            head.resolve(result);
          } catch (error) {
            if (head.op.kind !== 'call' && isDatabaseUnavailable(error)) throw error;
            // A permanent refusal (or a failed call): this write cannot succeed by waiting.
            this.dequeue(lane, head);
            if (head.op.kind !== 'call')
              this.logger.error(
                { err: error, sessionId, write: head.op.kind },
                'write refused by the database',
              );
            head.reject(error);
          }
          continue;
        }
        if (lane.reconcile || (lane.delta && (lane.flushCounters || this.closing))) {
          await this.writeCounters(sessionId, lane);
          continue;
        }
        break;
      }
      this.afterDrain(sessionId, lane);
    } catch (error) {
      this.block(sessionId, lane, error);
    } finally {
      lane.running = false;
    }
  }

  private dequeue(lane: Lane, head: QueuedOp): void {
    lane.ops.shift();
    lane.lastProcessedN = head.n;
    if (head.op.kind !== 'call') this.queued--;
  }

  private afterDrain(sessionId: string, lane: Lane): void {
    if (lane.delta) {
      lane.counterTimer ??= setTimeout(() => {
        lane.counterTimer = undefined;
        lane.flushCounters = true;
        void this.drain(sessionId, lane);
      }, this.options.counterDelayMs);
      lane.counterTimer.unref();
      return;
    }
    // Settled: everything of this lane is in the database.
    this.journal?.ack(sessionId, lane.lastProcessedN);
    if (lane.ops.length === 0 && this.lanes.get(sessionId) === lane) {
      clearTimeout(lane.counterTimer);
      this.lanes.delete(sessionId);
    }
  }

  private block(sessionId: string, lane: Lane, error: unknown): void {
    if (!lane.blocked)
      this.logger.warn(
        { sessionId, waiting: lane.ops.length, err: (error as Error).message },
        'database unavailable: writes of the session wait in the outbox',
      );
    lane.blocked = true;
    if (this.closing) return;
    clearTimeout(lane.retryTimer);
    lane.retryTimer = setTimeout(() => this.unblock(sessionId, lane), this.options.retryIntervalMs);
    lane.retryTimer.unref();
  }

  private unblock(sessionId: string, lane: Lane): void {
    clearTimeout(lane.retryTimer);
    lane.retryTimer = undefined;
    lane.blocked = false;
    void this.drain(sessionId, lane);
  }

  private async execute(sessionId: string, lane: Lane, queued: QueuedOp): Promise<unknown> {
    const op = queued.op;
    switch (op.kind) {
      case 'call':
        return op.run();
      case 'insertSession':
        return this.retry.run('insertSession', () => this.sessions.insert(op.document));
      case 'insertMessage': {
        // Known before the first attempt is sent: that state cannot count this message yet.
        queued.counterBase ??= { revision: lane.revision ?? this.hooks.counterRevision?.(sessionId) };
        await this.retry.run('insertMessage', () => this.messages.insertDocument(op.document));
        if (op.dropsCheckpoint)
          await this.retry.run('dropCheckpoint', () => this.messages.deleteCheckpoint(op.document._id));
        // A replayed insert may have landed before the crash, its counters too: rebuild them instead.
        if (queued.replayed) lane.reconcile = true;
        else if (op.delta && !lane.reconcile) {
          // The first message of the coalesced delta decides its base (the others came after it).
          if (!lane.delta) lane.deltaBase = queued.counterBase.revision;
          lane.delta = addDelta(lane.delta, op.delta);
        }
        if (op.flush) lane.flushCounters = true;
        return undefined;
      }
      case 'fields':
        return this.retry.run('updateSession', () => this.sessions.changeFields(sessionId, op.change));
      case 'end':
        return this.retry.run('endSession', () => this.sessions.endIfActive(sessionId, op.at));
      case 'closeAssist':
        // Journal entries written before `resolvesHelp` existed resolved the help request.
        return this.retry.run('endAssist', () =>
          this.sessions.closeAssist(sessionId, op.since, op.assist, op.resolvesHelp ?? true),
        );
      case 'endOthers': {
        const active = await this.retry.run('findActive', () => this.sessions.findActiveOfUser(op.userId));
        const others = active
          .filter((session) => session.id !== op.sessionId && session.startedAt <= op.before)
          .map((session) => session.id);
        for (const other of others)
          void this.push(other, { kind: 'end', at: op.before }, false).catch(() => undefined);
        if (others.length > 0) this.hooks.sessionsEnded?.(others, op.userId);
        return undefined;
      }
      case 'checkpoint':
        return this.retry.run('checkpoint', () => this.messages.saveCheckpointDocument(op.document));
      case 'dropCheckpoint':
        return this.retry.run('dropCheckpoint', () => this.messages.deleteCheckpoint(op.messageId));
      case 'reconcile':
        lane.reconcile = true;
        return undefined;
    }
  }

  private async writeCounters(sessionId: string, lane: Lane): Promise<void> {
    lane.flushCounters = false;
    clearTimeout(lane.counterTimer);
    lane.counterTimer = undefined;
    if (!lane.counterWrite && !lane.reconcile && lane.delta) {
      const prev = lane.deltaBase;
      const delta = { ...lane.delta, averageResponseTime: this.hooks.averageResponseTime?.(sessionId) };
      lane.delta = undefined;
      lane.deltaBase = undefined;
      // Which state the messages are missing from is not known: count them from the messages.
      if (prev === undefined) lane.reconcile = true;
      else lane.counterWrite = { delta, revision: { prev, next: newCounterRevision() } };
    }
    if (lane.counterWrite) {
      const { delta, revision } = lane.counterWrite;
      // On a failure it stays and is sent again unchanged (the revisions make a repeat a no-op).
      const outcome = await this.retry.run('applyCounters', () =>
        this.sessions.applyCounters(sessionId, delta, revision),
      );
      lane.counterWrite = undefined;
      if (outcome === 'applied') this.revised(sessionId, lane, revision.next);
      // Another writer came first, maybe a rebuild that already counts these messages: rebuild.
      if (outcome === 'conflict') lane.reconcile = true;
      return;
    }
    if (lane.reconcile) await this.reconcile(sessionId, lane);
  }

  /** The counters as the stored messages add up, written over the revision read before them. */
  private async reconcile(sessionId: string, lane: Lane): Promise<void> {
    const next = newCounterRevision();
    const rebuilt = await this.retry.run('reconcileCounters', async () => {
      const prev = await this.sessions.counterRevisionOf(sessionId);
      if (prev === undefined) return { outcome: 'missing' as const };
      const totals = await this.messages.totalsOf(sessionId);
      return { outcome: await this.sessions.setCounters(sessionId, totals, { prev, next }), totals };
    });
    if (rebuilt.outcome === 'conflict') {
      // Another writer moved the revision between the read and the write: read again, a few times,
      // then wait like for an outage (the lane retries after `retryIntervalMs`).
      if (++lane.conflicts > this.options.counterConflictAttempts) {
        lane.conflicts = 0;
        throw new DomainError(ErrorCode.DATABASE_ERROR, 'session counters kept changing while rebuilt');
      }
      return;
    }
    lane.conflicts = 0;
    lane.reconcile = false;
    lane.delta = undefined;
    lane.deltaBase = undefined;
    if (rebuilt.outcome !== 'applied' || !rebuilt.totals) return;
    this.revised(sessionId, lane, next);
    this.hooks.reconciled?.(sessionId, rebuilt.totals, pendingDelta(lane));
  }

  private revised(sessionId: string, lane: Lane, revision: string): void {
    lane.revision = revision;
    this.hooks.counterRevised?.(sessionId, revision);
  }
}

/** What the inserts still queued in the lane add to the counters (already counted in memory). */
function pendingDelta(lane: Lane): CounterDelta | undefined {
  let pending: CounterDelta | undefined;
  for (const { op } of lane.ops)
    if (op.kind === 'insertMessage' && op.delta) pending = addDelta(pending, op.delta);
  return pending;
}

export function addDelta(into: CounterDelta | undefined, delta: CounterDelta): CounterDelta {
  if (!into) return { ...delta };
  return {
    messages: into.messages + delta.messages,
    promptTokens: into.promptTokens + delta.promptTokens,
    completionTokens: into.completionTokens + delta.completionTokens,
    responseTimeSum: into.responseTimeSum + delta.responseTimeSum,
    responseCount: into.responseCount + delta.responseCount,
    maxResponseTime: Math.max(into.maxResponseTime, delta.maxResponseTime),
    lastActivity:
      into.lastActivity && delta.lastActivity
        ? new Date(Math.max(into.lastActivity.getTime(), delta.lastActivity.getTime()))
        : (into.lastActivity ?? delta.lastActivity),
  };
}
