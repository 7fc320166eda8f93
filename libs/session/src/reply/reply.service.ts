import { Injectable, Logger } from '@nestjs/common';
import {
  catchError,
  defaultIfEmpty,
  filter,
  lastValueFrom,
  map,
  Observable,
  of,
  race,
  Subject,
  take,
} from 'rxjs';
import { AppConfig, DomainError, ErrorCode, InjectConfig, newMessageId } from '@chatbox/common';
import { ChatTurn, LLM_ERROR_MESSAGES, LlmService, ReplyEvent } from '@chatbox/llm';
import { ConversationStore, SessionRecord, StoredMessage } from '@chatbox/storage';
import { RedisLink } from '../multi-instance/redis-link';
import { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import { ReplyLock } from '../ports/reply-lock';
import { SessionBroadcaster, deliverReplyFrameOnce } from '../ports/session-broadcaster';
import { instant, ReplyEnding, ReplyStatus, ReplyStreamEvent, ReplyUsage } from '../session-events';
import { settledWithin } from '../settled-within';
import { ImportedFile, ReplyAttachments } from './reply-attachments';
import { ReplyBuffer } from './reply-buffer';
import { ReplyRecorder } from './reply-recorder';
import { withoutReplacedTurns } from './replaced-turns';

export { TTS_MAX_INPUT_CHARS } from './reply-attachments';

export interface ReplyJob {
  sessionId: string;
  userId: string;
  /** The stored user message this reply answers: context ends there. */
  trigger: StoredMessage;
  /** Settles when the trigger reached the database; a rejection (never storable) cancels the reply. */
  triggerWritten: Promise<void>;
  /** The socket whose frame caused the reply: it alone receives error frames. */
  originConnectionId?: string;
}

const CHARS_PER_TOKEN = 4;

/** A reply streaming in this process. */
interface ReplyRun {
  buffer: ReplyBuffer;
  started: number;
  /** Ends from outside: `stop_generation`, shutdown, another instance that ended it. */
  stops: Subject<ReplyOutcome>;
  /** Another instance ended it (it took this one for gone): it stored the reply and sent the done frame. */
  endedElsewhere: boolean;
  firstTokenMs?: number;
  usage?: { promptTokens: number; completionTokens: number; estimated?: boolean };
  conversationId?: string;
  /** AI-produced files, downloaded while the text streams on, stored and sent after the reply. */
  files: Promise<ImportedFile>[];
  fileImports: AbortController;
}

interface SessionLane {
  tail: Promise<void>;
  /** Replies of the session here, running or waiting, and places reserved for messages being stored. */
  outstanding: number;
}

/** A place in a session's reply queue, taken before the user message is stored (SERVICE_BUSY otherwise). */
export interface ReplySlot {
  /** Gives the place back when no reply will use it (idempotent; `enqueue` releases it after the reply). */
  release(): void;
}

/** What a reply needs before its `loading` frame: read from memory, else from the database. */
interface PreparedReply {
  session: SessionRecord;
  modelId: string;
  seq: number;
  history: ChatTurn[];
}

interface ReplyOutcome {
  status: ReplyStatus;
  errorCode?: string;
  errorMessage?: string;
  note?: string;
}

/**
 * Runs AI replies: one at a time per session (a queue, not concurrency), frames with ids and `seq`,
 * checkpoints of the text while it streams, one stored message at the end (the done frame does not
 * wait for that write), resumable from a per-reply buffer.
 */
@Injectable()
export class ReplyService {
  private readonly logger = new Logger(ReplyService.name);
  private readonly lanes = new Map<string, SessionLane>();
  private readonly active = new Map<string, ReplyRun>();
  private draining = false;

  constructor(
    private readonly llm: LlmService,
    private readonly store: ConversationStore,
    private readonly broadcaster: SessionBroadcaster,
    private readonly registry: ConnectionRegistry,
    private readonly attachments: ReplyAttachments,
    @InjectConfig() private readonly config: AppConfig,
    private readonly lock: ReplyLock,
    private readonly link: RedisLink,
  ) {
    this.broadcaster.onStopRequest((sessionId) => this.stopLocal(sessionId));
    this.broadcaster.onReplyEndedElsewhere((sessionId, messageId) => {
      const run = this.active.get(sessionId);
      if (run?.buffer.messageId !== messageId) return;
      run.endedElsewhere = true;
      run.stops.next({ status: 'interrupted' });
    });
  }

  /**
   * Takes a place in the session's reply queue: one streaming plus `queuedRepliesPerSession` waiting,
   * counted here and (multi-instance mode) across every instance. Undefined when they are all taken.
   */
  async reserveSlot(sessionId: string): Promise<ReplySlot | undefined> {
    const max = this.config.protocol.queuedRepliesPerSession + 1;
    const lane = this.lanes.get(sessionId) ?? { tail: Promise.resolve(), outstanding: 0 };
    if (lane.outstanding >= max) return undefined;
    // Counted here first, so concurrent messages of this instance see each other.
    lane.outstanding++;
    this.lanes.set(sessionId, lane);
    const shared = await this.lock.reserveSlot(sessionId, max);
    let released = false;
    const slot: ReplySlot = {
      release: () => {
        if (released) return;
        released = true;
        shared?.release();
        lane.outstanding--;
        if (lane.outstanding === 0 && this.lanes.get(sessionId) === lane) this.lanes.delete(sessionId);
      },
    };
    if (!shared) {
      slot.release();
      return undefined;
    }
    return slot;
  }

  /** A place in the session's reply queue, or SERVICE_BUSY (see `reserveSlot`). */
  async takeSlot(sessionId: string): Promise<ReplySlot> {
    const slot = await this.reserveSlot(sessionId);
    if (!slot)
      throw new DomainError(
        ErrorCode.SERVICE_BUSY,
        'Too many messages waiting for a reply; try again shortly',
      );
    return slot;
  }

  /** Queues a reply in the place `slot` holds (given back when the reply is over). */
  enqueue(job: ReplyJob, slot: ReplySlot): void {
    const lane = this.lanes.get(job.sessionId);
    if (!lane) {
      slot.release();
      throw new Error('enqueue needs a reserved slot');
    }
    lane.tail = lane.tail.then(async () => {
      // Multi-instance mode: a reply of this session running on another instance goes first.
      const release = await this.lock.acquire(job.sessionId);
      try {
        await this.run(job);
      } catch (error) {
        this.logger.error({ err: error, sessionId: job.sessionId }, 'reply failed');
      } finally {
        await release();
        slot.release();
      }
    });
  }

  /**
   * Whether a reply of the session runs or waits, here or (multi-instance mode) on another instance;
   * also "yes" when the other instances cannot be asked (a session is never ended on a guess).
   */
  async hasReply(sessionId: string): Promise<boolean> {
    if (this.lanes.has(sessionId) || this.active.has(sessionId)) return true;
    return this.lock.isHeld(sessionId);
  }

  get inFlight(): number {
    return this.active.size;
  }

  /**
   * Stops the reply streaming in the session (the upstream request is cancelled). False when no
   * reply of the session is streaming, here or (as far as this instance knows) on another instance.
   */
  stop(sessionId: string): boolean {
    if (this.stopLocal(sessionId)) return true;
    // In multi-instance mode the reply may be streaming on another instance.
    return this.broadcaster.requestStop(sessionId);
  }

  private stopLocal(sessionId: string): boolean {
    const run = this.active.get(sessionId);
    if (!run) return false;
    run.stops.next({ status: 'stopped' });
    return true;
  }

  /** A socket that binds mid-reply gets the text so far as one catch-up frame, then the live frames. */
  catchUp(connection: ClientConnection, sessionId: string): void {
    const buffer = this.active.get(sessionId)?.buffer;
    const catchUp = buffer?.catchUp();
    if (!buffer || !catchUp) return;
    connection.send(catchUp);
    connection.deliveredSeq.set(buffer.messageId, buffer.lastSeq);
  }

  /**
   * Replays the frames after `lastSeq` of a reply, then the socket continues live. A finished reply
   * (also one a crashed process left `interrupted`) is sent once as a complete, non-streaming message
   * with the same id.
   */
  async resume(
    connection: ClientConnection,
    sessionId: string,
    messageId: string,
    lastSeq: number,
  ): Promise<boolean> {
    const buffer = this.active.get(sessionId)?.buffer;
    if (buffer?.messageId === messageId) {
      const delivered = Math.max(lastSeq, connection.deliveredSeq.get(messageId) ?? -1);
      for (const frame of buffer.framesAfter(delivered)) connection.send(frame);
      connection.deliveredSeq.set(messageId, Math.max(delivered, buffer.lastSeq));
      return true;
    }
    // Multi-instance mode: the reply may be streaming on another instance.
    if (await this.broadcaster.resumeRemote(connection, sessionId, messageId, lastSeq)) return true;
    const stored = await this.store.findMessage(sessionId, messageId);
    if (!stored || stored.sender !== 'ai') return false;
    connection.send({
      kind: 'replyStored',
      sessionId,
      messageId: stored.id,
      modelId: stored.meta?.model_id,
      text: stored.content,
      meta: stored.meta ?? {},
      at: instant(stored.timestamp),
    });
    return true;
  }

  /** Shutdown: lets replies finish for up to `graceMs`, then interrupts the rest (stored as such). */
  async drain(graceMs: number): Promise<void> {
    // Replies still waiting in a queue are not started any more: their user messages are stored.
    this.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.active.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const run of this.active.values()) run.stops.next({ status: 'interrupted' });
    await Promise.all([...this.lanes.values()].map((lane) => lane.tail));
  }

  /**
   * Reads what the reply needs. Failing here (the database unreachable and the session not in
   * memory), the sender gets the error frame; no `loading` was sent, so no done frame is owed.
   */
  private async prepare(job: ReplyJob): Promise<PreparedReply | undefined> {
    const session = await this.store.findSession(job.sessionId);
    if (!session || session.endedAt) return undefined;
    const modelId =
      session.modelId && this.llm.hasModel(session.modelId) ? session.modelId : this.llm.defaultModelId;
    const context = await this.contextMessages(job);
    const seq = await this.store.reserveSeq(job.sessionId);
    return { session, modelId, seq, history: this.contextOf(context) };
  }

  /**
   * The last `LLM_HISTORY_MESSAGES` messages up to the trigger, without the turns that Regenerate or
   * Retry replaced (`withoutReplacedTurns`). Each replaced turn makes room for older messages, read
   * further back while the session has them; without one this is a single read.
   */
  private async contextMessages(job: ReplyJob): Promise<StoredMessage[]> {
    const wanted = this.config.llm.historyMessages + 1;
    let limit = wanted;
    for (;;) {
      const recent = await this.store.recentMessages(job.sessionId, job.trigger.seq, limit);
      const kept = withoutReplacedTurns(recent);
      const missing = wanted - kept.length;
      if (missing <= 0 || recent.length < limit) return kept;
      limit += missing;
    }
  }

  private async run(job: ReplyJob): Promise<void> {
    if (this.draining) return;
    let prepared: PreparedReply | undefined;
    try {
      prepared = await this.prepare(job);
    } catch (error) {
      this.logger.error({ err: error, sessionId: job.sessionId }, 'reply not started');
      const domain = error instanceof DomainError ? error : undefined;
      this.sendErrorToOrigin(
        job,
        domain?.code ?? ErrorCode.DATABASE_ERROR,
        domain?.message ?? 'The conversation could not be read; try again shortly',
      );
      return;
    }
    if (!prepared) return;
    await this.stream(job, prepared);
  }

  /**
   * One reply: `loading`, the model's stream (text delivered as it comes, checkpoints while it
   * streams) until it ends or is stopped, the whole reply stored once, the done frame, then the files
   * the model announced and (answering a voice note) the reply spoken.
   */
  private async stream(job: ReplyJob, prepared: PreparedReply): Promise<void> {
    const { session } = prepared;
    const run = this.begin(job, prepared);
    const recorder = new ReplyRecorder(
      this.store,
      session,
      run.buffer,
      this.link.instanceId,
      this.config.protocol.replyCheckpointIntervalMs,
    );
    recorder.startCheckpoints();
    const outcome = await lastValueFrom(this.outcome$(job, prepared, run)).finally(() =>
      recorder.stopCheckpoints(),
    );
    const figures = replyFigures(run, outcome);
    const { written, failure } = await this.record(run, recorder, outcome, figures);
    const errorCode = outcome.errorCode ?? failure;
    if (errorCode) this.sendErrorToOrigin(job, errorCode, outcome.errorMessage ?? REPLY_NOT_STORED);
    this.deliver(run.buffer.addDone(replyEnding(figures, outcome, errorCode)));
    this.active.delete(job.sessionId);
    await this.afterReply(job, session, run, outcome.status);
    if (written && this.lock.sharedAcrossInstances)
      await settledWithin(written, this.config.protocol.replyWriteWaitMs);
  }

  /** Announces the reply (`loading`; listed as streaming for the other instances) and tracks it here. */
  private begin(job: ReplyJob, { session, modelId, seq }: PreparedReply): ReplyRun {
    const messageId = newMessageId();
    this.broadcaster.toSession(job.sessionId, {
      kind: 'replyStarted',
      sessionId: job.sessionId,
      messageId,
      modelId,
      at: instant(),
    });
    // Multi-instance mode: listed as streaming here, so that if this instance dies another one ends it.
    this.broadcaster.replyStarted({
      sessionId: job.sessionId,
      messageId,
      userId: session.userId,
      position: seq,
      modelId,
    });
    const run: ReplyRun = {
      buffer: new ReplyBuffer(messageId, job.sessionId, modelId, seq, this.config.llm.maxReplyBytes),
      started: performance.now(),
      stops: new Subject<ReplyOutcome>(),
      endedElsewhere: false,
      files: [],
      fileImports: new AbortController(),
    };
    this.active.set(job.sessionId, run);
    return run;
  }

  /**
   * How the reply ends: the model's stream (its text delivered as it comes) raced against a stop from
   * outside and against its user message being refused by the database for good. Whichever comes
   * first wins; unsubscribing the model's stream cancels the upstream request.
   */
  private outcome$(
    job: ReplyJob,
    { session, modelId, history }: PreparedReply,
    run: ReplyRun,
  ): Observable<ReplyOutcome> {
    const replied$ = this.llm
      .stream({
        modelId,
        userId: job.userId,
        sessionId: job.sessionId,
        history,
        conversationId: session.difyConversationId,
      })
      .pipe(
        map((event) => this.apply(run, session, event)),
        filter((outcome): outcome is ReplyOutcome => outcome !== undefined),
        catchError((error: unknown) => {
          this.logger.error({ err: error, sessionId: job.sessionId }, 'reply stream failed');
          return of<ReplyOutcome>({
            status: 'error',
            errorCode: ErrorCode.LLM_ERROR,
            errorMessage: LLM_ERROR_MESSAGES.LLM_ERROR,
          });
        }),
      );
    // One subscriber on the promise, not `from` + `mergeMap` to NEVER + `catchError`: every reply
    // sets this up, and in a burst that set-up delays the provider requests (issue 12).
    const refused$ = new Observable<ReplyOutcome>((subscriber) => {
      job.triggerWritten.then(undefined, () => {
        subscriber.next({
          status: 'error',
          errorCode: ErrorCode.DATABASE_ERROR,
          errorMessage: MESSAGE_NOT_STORED,
        });
        subscriber.complete();
      });
    });
    const complete: ReplyOutcome = { status: 'complete' };
    return race(replied$, run.stops, refused$).pipe(take(1), defaultIfEmpty(complete));
  }

  /**
   * One event of the model's stream: text is delivered at once; the reply's end (or a reply grown
   * too large) is its outcome. Synchronous, so no inner Observable per chunk.
   */
  private apply(run: ReplyRun, session: SessionRecord, event: ReplyEvent): ReplyOutcome | undefined {
    switch (event.kind) {
      case 'delta':
        if (event.text === '') return undefined;
        run.firstTokenMs ??= Math.round(performance.now() - run.started);
        if (!run.buffer.fits(event.text)) return { status: 'stopped', note: 'max_reply_size' };
        this.deliver(run.buffer.addDelta(event.text));
        return undefined;
      case 'usage':
        run.usage = event;
        return undefined;
      case 'file':
        run.files.push(this.attachments.importFile(event, session, run.fileImports.signal));
        return undefined;
      case 'end':
        run.conversationId = event.conversationId;
        return { status: 'complete' };
      case 'error':
        return { status: 'error', errorCode: event.code, errorMessage: event.message };
    }
  }

  /** Stores the whole reply once (unless another instance did); `failure` when the outbox is full. */
  private async record(
    run: ReplyRun,
    recorder: ReplyRecorder,
    outcome: ReplyOutcome,
    figures: ReplyFigures,
  ): Promise<{ written?: Promise<void>; failure?: string }> {
    if (run.endedElsewhere || (run.buffer.text === '' && outcome.status !== 'complete')) {
      recorder.release();
      return {};
    }
    try {
      return await recorder.record(figures.meta, figures.counters, run.conversationId);
    } catch (error) {
      this.logger.error(
        { err: error, sessionId: run.buffer.sessionId, messageId: run.buffer.messageId },
        'could not store the AI reply',
      );
      return { failure: ErrorCode.DATABASE_ERROR };
    }
  }

  /** After the done frame: the model's files, and the reply spoken when it answers a voice note. */
  private async afterReply(
    job: ReplyJob,
    session: SessionRecord,
    run: ReplyRun,
    status: ReplyStatus,
  ): Promise<void> {
    const { messageId, modelId, text } = run.buffer;
    if (status === 'interrupted') {
      // Shutting down: nothing more is delivered; downloads in progress are abandoned.
      run.fileImports.abort();
      return;
    }
    for (const imported of await Promise.all(run.files))
      await this.attachments.deliverFile(session, messageId, modelId, imported);
    // SPEC 4.7 places TTS in the voice_message paragraph: only a reply to a voice note is spoken
    // (someone who typed gets text only). See docs/decisions/0003-llm.md.
    if (status === 'complete' && job.trigger.type === 'voice_message' && this.llm.ttsAvailable)
      await this.attachments.speak(session, messageId, modelId, text);
  }

  /**
   * Sends a reply frame to every local socket of the session that has not had its `seq` yet, then
   * hands it to the broadcaster for the other instances (which apply the same dedup to their sockets).
   */
  private deliver(event: ReplyStreamEvent): void {
    for (const connection of this.registry.connectionsOf(event.sessionId))
      deliverReplyFrameOnce(connection, event);
    this.broadcaster.replyFrame(event);
  }

  /** The message is the LLM module's client-safe text (or the storage one): no provider detail. */
  private sendErrorToOrigin(job: ReplyJob, code: string, message: string): void {
    const origin = this.registry.all().find((connection) => connection.id === job.originConnectionId);
    origin?.send({
      kind: 'failure',
      sessionId: job.sessionId,
      code,
      message,
      recoverable: true,
      at: instant(),
    });
  }

  /** The last `LLM_HISTORY_MESSAGES` text turns up to and including the triggering message. */
  private contextOf(messages: StoredMessage[]): ChatTurn[] {
    return messages
      .filter(
        (message) =>
          (message.meta?.transcription ?? message.content).trim() !== '' && message.sender !== 'system',
      )
      .slice(-Math.max(1, this.config.llm.historyMessages + 1))
      .map((message) => ({
        role: message.sender === 'user' ? 'user' : 'assistant',
        content: message.meta?.transcription ?? message.content,
        ...(message.sender === 'admin' ? { staff: true } : {}),
      }));
  }
}

/** What a reply counts: stored in its `meta`, added to the session, told on the done frame. */
interface ReplyFigures {
  usage: ReplyUsage;
  meta: Record<string, string>;
  counters: { promptTokens: number; completionTokens: number; responseTimeMs: number };
}

function replyFigures(run: ReplyRun, outcome: ReplyOutcome): ReplyFigures {
  const responseTimeMs = Math.round(performance.now() - run.started);
  const promptTokens = run.usage?.promptTokens ?? 0;
  const completionTokens = run.usage?.completionTokens ?? Math.ceil(run.buffer.text.length / CHARS_PER_TOKEN);
  const estimated = run.usage === undefined || run.usage.estimated === true;
  const usage: ReplyUsage = {
    tokens: promptTokens + completionTokens,
    promptTokens,
    completionTokens,
    responseTimeMs,
    ...(run.firstTokenMs !== undefined ? { firstTokenMs: run.firstTokenMs } : {}),
  };
  return {
    usage,
    meta: {
      model_id: run.buffer.modelId,
      status: outcome.status,
      tokens: String(usage.tokens),
      prompt_tokens: String(promptTokens),
      completion_tokens: String(completionTokens),
      response_time_ms: String(responseTimeMs),
      ...(run.firstTokenMs !== undefined ? { first_token_ms: String(run.firstTokenMs) } : {}),
      ...(estimated ? { tokens_estimated: 'true' } : {}),
      ...(outcome.errorCode ? { error: outcome.errorCode } : {}),
      ...(outcome.note ? { reason: outcome.note } : {}),
    },
    counters: { promptTokens, completionTokens, responseTimeMs },
  };
}

/** How the reply ended, for its done frame (SPEC 4.5 step 6): figures, and why it ended early. */
function replyEnding(figures: ReplyFigures, outcome: ReplyOutcome, errorCode?: string): ReplyEnding {
  return {
    status: outcome.status,
    usage: figures.usage,
    ...(outcome.note ? { reason: outcome.note } : {}),
    ...(errorCode ? { errorCode } : {}),
  };
}

const REPLY_NOT_STORED = 'The reply could not be saved.';
const MESSAGE_NOT_STORED = 'Your message could not be saved.';
