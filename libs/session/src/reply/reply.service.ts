import { Injectable, Logger } from '@nestjs/common';
import { Subscription } from 'rxjs';
import { AppConfig, DomainError, ErrorCode, InjectConfig, newMessageId } from '@chatbox/common';
import { FilesService, FileUrlSigner, UploadRecord } from '@chatbox/files';
import { ChatTurn, LLM_ERROR_MESSAGES, LlmService, ReplyEvent } from '@chatbox/llm';
import { ConversationStore, MessageDraft, SessionRecord, StoredMessage } from '@chatbox/storage';
import { ChatEvent, chatEvent } from '../chat-event';
import { RedisLink } from '../multi-instance/redis-link';
import { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import { ReplyLock } from '../ports/reply-lock';
import { SessionBroadcaster, deliverReplyFrameOnce } from '../ports/session-broadcaster';
import { settledWithin } from '../settled-within';

export type ReplyStatus = 'complete' | 'stopped' | 'error' | 'interrupted';

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
/** OpenAI's `audio/speech` accepts at most 4096 characters of input; longer replies are cut. */
export const TTS_MAX_INPUT_CHARS = 4096;
const TTS_MIME = 'audio/mpeg';

type FileEvent = Extract<ReplyEvent, { kind: 'file' }>;

/** An AI-announced file after the download attempt: stored as an upload, or kept as the external URL. */
interface ImportedFile {
  event: FileEvent;
  upload?: UploadRecord;
}

interface ActiveReply {
  messageId: string;
  /** The reply's place in the session (taken when it starts). */
  seq: number;
  sessionId: string;
  modelId: string;
  frames: ChatEvent[];
  text: string;
  bytes: number;
  nextSeq: number;
  finish: (status: ReplyStatus) => void;
  /** Another instance ended it (it took this one for gone): it stored the reply and sent the done frame. */
  endedElsewhere?: boolean;
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
  private readonly active = new Map<string, ActiveReply>();
  private draining = false;

  constructor(
    private readonly llm: LlmService,
    private readonly store: ConversationStore,
    private readonly broadcaster: SessionBroadcaster,
    private readonly registry: ConnectionRegistry,
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
    @InjectConfig() private readonly config: AppConfig,
    private readonly lock: ReplyLock,
    private readonly link: RedisLink,
  ) {
    this.broadcaster.onStopRequest((sessionId) => this.stopLocal(sessionId));
    this.broadcaster.onReplyEndedElsewhere((sessionId, messageId) => {
      const reply = this.active.get(sessionId);
      if (reply?.messageId !== messageId) return;
      reply.endedElsewhere = true;
      reply.finish('interrupted');
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
    const reply = this.active.get(sessionId);
    if (!reply) return false;
    reply.finish('stopped');
    return true;
  }

  /** A socket that binds mid-reply gets the text so far as one catch-up frame, then the live frames. */
  catchUp(connection: ClientConnection, sessionId: string): void {
    const reply = this.active.get(sessionId);
    if (!reply || reply.frames.length === 0) return;
    const lastSeq = reply.nextSeq - 1;
    connection.send(
      chatEvent('ai_response', 'ai', {
        id: reply.messageId,
        session_id: sessionId,
        content: reply.text,
        model_id: reply.modelId,
        metadata: {
          streaming: 'true',
          done: 'false',
          catch_up: 'true',
          message_id: reply.messageId,
          seq: String(lastSeq),
        },
      }),
    );
    connection.deliveredSeq.set(reply.messageId, lastSeq);
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
    const reply = this.active.get(sessionId);
    if (reply && reply.messageId === messageId) {
      const delivered = Math.max(lastSeq, connection.deliveredSeq.get(messageId) ?? -1);
      for (const frame of reply.frames) {
        if (Number(frame.metadata?.seq) > delivered) connection.send(frame);
      }
      connection.deliveredSeq.set(messageId, Math.max(delivered, reply.nextSeq - 1));
      return true;
    }
    // Multi-instance mode: the reply may be streaming on another instance.
    if (await this.broadcaster.resumeRemote(connection, sessionId, messageId, lastSeq)) return true;
    const stored = await this.store.findMessage(sessionId, messageId);
    if (!stored || stored.sender !== 'ai') return false;
    connection.send(
      chatEvent('ai_response', 'ai', {
        id: stored.id,
        session_id: sessionId,
        content: stored.content,
        model_id: stored.meta?.model_id,
        timestamp: stored.timestamp.toISOString(),
        metadata: { ...(stored.meta ?? {}), message_id: stored.id, streaming: 'false', done: 'true' },
      }),
    );
    return true;
  }

  /** Shutdown: lets replies finish for up to `graceMs`, then interrupts the rest (stored as such). */
  async drain(graceMs: number): Promise<void> {
    // Replies still waiting in a queue are not started any more: their user messages are stored.
    this.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.active.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const reply of this.active.values()) reply.finish('interrupted');
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
    const context = await this.store.recentMessages(
      job.sessionId,
      job.trigger.seq,
      this.config.llm.historyMessages + 1,
    );
    const seq = await this.store.reserveSeq(job.sessionId);
    return { session, modelId, seq, history: this.contextOf(context) };
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

  private async stream(job: ReplyJob, { session, modelId, seq, history }: PreparedReply): Promise<void> {
    const messageId = newMessageId();
    this.broadcaster.toSession(
      job.sessionId,
      chatEvent('loading', 'ai', {
        session_id: job.sessionId,
        model_id: modelId,
        metadata: { message_id: messageId },
      }),
    );

    // Multi-instance mode: listed as streaming here, so that if this instance dies another one ends it.
    this.broadcaster.replyStarted({
      sessionId: job.sessionId,
      messageId,
      userId: session.userId,
      position: seq,
      modelId,
    });

    const started = performance.now();
    let firstTokenMs: number | undefined;
    let usage: { promptTokens: number; completionTokens: number; estimated?: boolean } | undefined;
    let conversationId: string | undefined;
    let subscription: Subscription | undefined;
    let checkpointed = false;
    let checkpointTimer: NodeJS.Timeout | undefined;
    // AI-produced files are downloaded while the text streams on, and stored after the reply.
    const fileImports = new AbortController();
    const files: Promise<ImportedFile>[] = [];
    const reply: ActiveReply = {
      messageId,
      seq,
      sessionId: job.sessionId,
      modelId,
      frames: [],
      text: '',
      bytes: 0,
      nextSeq: 0,
      finish: () => undefined,
    };

    const outcome = await new Promise<ReplyOutcome>((resolve) => {
      let settled = false;
      const finish = (result: ReplyOutcome) => {
        if (settled) return;
        settled = true;
        subscription?.unsubscribe();
        resolve(result);
      };
      reply.finish = (status) => finish({ status });
      this.active.set(job.sessionId, reply);
      // A user message the database refuses for good cancels its reply (the outbox took everything else).
      job.triggerWritten.catch(() =>
        finish({ status: 'error', errorCode: ErrorCode.DATABASE_ERROR, errorMessage: MESSAGE_NOT_STORED }),
      );
      // The text so far is saved every interval (a few writes per reply, never one per chunk), so a
      // crash leaves it stored as interrupted.
      let savedBytes = 0;
      checkpointTimer = setInterval(() => {
        if (reply.bytes === savedBytes) return;
        savedBytes = reply.bytes;
        checkpointed = true;
        this.store.checkpoint(
          session,
          this.replyMessage(reply, { model_id: modelId, status: 'streaming' }),
          this.link.instanceId,
        );
      }, this.config.protocol.replyCheckpointIntervalMs);
      checkpointTimer.unref();
      const onEvent = (event: ReplyEvent) => {
        switch (event.kind) {
          case 'delta': {
            if (event.text === '') return;
            firstTokenMs ??= Math.round(performance.now() - started);
            const bytes = Buffer.byteLength(event.text);
            if (reply.bytes + bytes > this.config.llm.maxReplyBytes) {
              finish({ status: 'stopped', note: 'max_reply_size' });
              return;
            }
            reply.text += event.text;
            reply.bytes += bytes;
            this.emit(
              reply,
              chatEvent('ai_response', 'ai', {
                id: messageId,
                session_id: job.sessionId,
                content: event.text,
                model_id: modelId,
                metadata: {
                  streaming: 'true',
                  done: 'false',
                  message_id: messageId,
                  seq: String(reply.nextSeq),
                },
              }),
            );
            return;
          }
          case 'usage':
            usage = event;
            return;
          case 'file':
            files.push(this.importFile(event, session.userId, job.sessionId, fileImports.signal));
            return;
          case 'end':
            conversationId = event.conversationId;
            finish({ status: 'complete' });
            return;
          case 'error':
            finish({ status: 'error', errorCode: event.code, errorMessage: event.message });
            return;
        }
      };
      subscription = this.llm
        .stream({
          modelId,
          userId: job.userId,
          sessionId: job.sessionId,
          history,
          conversationId: session.difyConversationId,
        })
        .subscribe({
          next: onEvent,
          error: (error: unknown) => {
            this.logger.error({ err: error, sessionId: job.sessionId }, 'reply stream failed');
            finish({
              status: 'error',
              errorCode: ErrorCode.LLM_ERROR,
              errorMessage: LLM_ERROR_MESSAGES.LLM_ERROR,
            });
          },
          complete: () => finish({ status: 'complete' }),
        });
    });
    clearInterval(checkpointTimer);

    const { status } = outcome;
    let { errorCode, errorMessage } = outcome;
    const responseTimeMs = Math.round(performance.now() - started);
    const promptTokens = usage?.promptTokens ?? 0;
    const completionTokens = usage?.completionTokens ?? Math.ceil(reply.text.length / CHARS_PER_TOKEN);
    const estimated = usage === undefined || usage.estimated === true;
    const meta: Record<string, string> = {
      model_id: modelId,
      status,
      tokens: String(promptTokens + completionTokens),
      prompt_tokens: String(promptTokens),
      completion_tokens: String(completionTokens),
      response_time_ms: String(responseTimeMs),
      ...(firstTokenMs !== undefined ? { first_token_ms: String(firstTokenMs) } : {}),
      ...(estimated ? { tokens_estimated: 'true' } : {}),
      ...(errorCode ? { error: errorCode } : {}),
      ...(outcome.note ? { reason: outcome.note } : {}),
    };

    let written: Promise<void> | undefined;
    // Ended by another instance: it stored the reply already (a second insert would count twice).
    if (!reply.endedElsewhere && (reply.text !== '' || status === 'complete')) {
      try {
        // Queued for the database (the outbox keeps it through an outage); the done frame does not
        // wait. The session's counters follow with the next counter write (at most every 10 s).
        ({ written } = await this.store.appendMessage(session, this.replyMessage(reply, meta), {
          promptTokens,
          completionTokens,
          responseTimeMs,
        }));
        if (conversationId) this.store.setDifyConversation(session, conversationId);
      } catch (error) {
        this.logger.error(
          { err: error, sessionId: job.sessionId, messageId },
          'could not store the AI reply',
        );
        errorCode ??= ErrorCode.DATABASE_ERROR;
        errorMessage ??= REPLY_NOT_STORED;
      }
    }
    if (checkpointed) this.store.dropCheckpoint(job.sessionId, messageId);

    if (errorCode && job.originConnectionId)
      this.sendErrorToOrigin(job, errorCode, errorMessage ?? REPLY_NOT_STORED);
    this.emit(
      reply,
      chatEvent('ai_response', 'ai', {
        id: messageId,
        session_id: job.sessionId,
        model_id: modelId,
        metadata: {
          streaming: 'true',
          done: 'true',
          message_id: messageId,
          seq: String(reply.nextSeq),
          tokens: meta.tokens,
          prompt_tokens: meta.prompt_tokens,
          completion_tokens: meta.completion_tokens,
          response_time_ms: meta.response_time_ms,
          ...(firstTokenMs !== undefined ? { first_token_ms: String(firstTokenMs) } : {}),
          ...(status === 'stopped' || status === 'interrupted' ? { stopped: 'true' } : {}),
          ...(status === 'interrupted' ? { status } : {}),
          ...(outcome.note ? { reason: outcome.note } : {}),
          ...(errorCode ? { error: errorCode } : {}),
        },
      }),
    );
    this.active.delete(job.sessionId);

    if (status === 'interrupted') {
      // Shutting down: nothing more is delivered; downloads in progress are abandoned.
      fileImports.abort();
      return;
    }
    for (const imported of await Promise.all(files))
      await this.deliverFile(session, messageId, modelId, imported);
    // SPEC 4.7 places TTS in the voice_message paragraph: only a reply to a voice note is spoken
    // (someone who typed gets text only). See docs/decisions/0003-llm.md.
    if (status === 'complete' && job.trigger.type === 'voice_message' && this.llm.ttsAvailable)
      await this.speak(session, messageId, modelId, reply.text);
    if (written && this.lock.sharedAcrossInstances)
      await settledWithin(written, this.config.protocol.replyWriteWaitMs);
  }

  private replyMessage(reply: ActiveReply, meta: Record<string, string>): StoredMessage {
    return {
      id: reply.messageId,
      seq: reply.seq,
      type: 'ai_response',
      content: reply.text,
      timestamp: new Date(),
      sender: 'ai',
      meta,
    };
  }

  /** Downloads a file the model produced into the files module; never rejects (failures are logged). */
  private async importFile(
    event: FileEvent,
    userId: string,
    sessionId: string,
    signal: AbortSignal,
  ): Promise<ImportedFile> {
    try {
      const upload = await this.files.importFromUrl(userId, event.url, {
        filename: event.name,
        mimeType: event.mimeType,
        signal,
      });
      return { event, upload };
    } catch (error) {
      this.logger.warn(
        { err: error, sessionId, host: safeHost(event.url) },
        'AI file not downloaded; the external URL is kept',
      );
      return { event };
    }
  }

  /**
   * Persists an AI file as a `file_upload` from `ai` and sends it to every socket of the session:
   * the stored copy with a freshly signed link, or (download failed) the provider's own URL.
   */
  private async deliverFile(
    session: SessionRecord,
    replyId: string,
    modelId: string,
    { event, upload }: ImportedFile,
  ): Promise<void> {
    const meta: Record<string, string> = {
      reply_id: replyId,
      model_id: modelId,
      ...(upload
        ? { file_name: upload.filename, mime_type: upload.mime, file_size: String(upload.size) }
        : {
            ...(event.name ? { file_name: event.name } : {}),
            ...(event.mimeType ? { mime_type: event.mimeType } : {}),
            external: 'true',
          }),
    };
    const message: MessageDraft = {
      type: 'file_upload',
      content: '',
      timestamp: new Date(),
      sender: 'ai',
      ...(upload
        ? { fileId: upload.id, fileUrl: this.signer.canonicalPath(upload.id) }
        : { fileUrl: event.url }),
      meta,
    };
    await this.persistAndSend(session, message, upload ? this.signer.sign(upload.id) : event.url);
  }

  /**
   * Text to speech of a finished reply: the audio is stored as an upload of the session's user and
   * sent as a `voice_message` from `ai`. A failure is logged; the text reply is already delivered.
   */
  private async speak(session: SessionRecord, replyId: string, modelId: string, text: string): Promise<void> {
    if (text.trim() === '') return;
    try {
      const input = Array.from(text).slice(0, TTS_MAX_INPUT_CHARS).join('');
      const { audio, mimeType } = await this.llm.synthesize(input);
      const mime = mimeType.startsWith('audio/') ? mimeType : TTS_MIME;
      const upload = await this.files.storeGenerated(session.userId, audio, `reply-${replyId}.mp3`, mime);
      await this.persistAndSend(
        session,
        {
          type: 'voice_message',
          // Empty: the text is the reply itself (kept out of the model context twice).
          content: '',
          timestamp: new Date(),
          sender: 'ai',
          fileId: upload.id,
          fileUrl: this.signer.canonicalPath(upload.id),
          meta: {
            reply_id: replyId,
            model_id: modelId,
            file_name: upload.filename,
            mime_type: upload.mime,
            file_size: String(upload.size),
          },
        },
        this.signer.sign(upload.id),
      );
    } catch (error) {
      this.logger.warn({ err: error, sessionId: session.id, replyId }, 'reply not turned into speech');
    }
  }

  private async persistAndSend(session: SessionRecord, draft: MessageDraft, fileUrl: string): Promise<void> {
    let message: StoredMessage;
    try {
      ({ message } = await this.store.appendMessage(session, draft));
    } catch (error) {
      this.logger.error({ err: error, sessionId: session.id }, 'could not store an AI file');
      return;
    }
    this.broadcaster.toSession(
      session.id,
      chatEvent(message.type, 'ai', {
        id: message.id,
        session_id: session.id,
        content: message.content,
        file_id: message.fileId,
        file_url: fileUrl,
        model_id: message.meta?.model_id,
        timestamp: message.timestamp.toISOString(),
        metadata: message.meta,
      }),
    );
  }

  /**
   * Sends a frame to every local socket of the session that has not had this `seq` yet, then hands
   * it to the broadcaster for the other instances (which apply the same dedup to their sockets).
   */
  private emit(reply: ActiveReply, frame: ChatEvent): void {
    const seq = reply.nextSeq++;
    reply.frames.push(frame);
    for (const connection of this.registry.connectionsOf(reply.sessionId))
      deliverReplyFrameOnce(connection, reply.messageId, seq, frame);
    this.broadcaster.replyFrame(reply.sessionId, reply.messageId, seq, frame);
  }

  /** The message is the LLM module's client-safe text (or the storage one): no provider detail. */
  private sendErrorToOrigin(job: ReplyJob, code: string, message: string): void {
    const origin = this.registry.all().find((connection) => connection.id === job.originConnectionId);
    origin?.send(
      chatEvent('error', 'system', {
        session_id: job.sessionId,
        error: {
          code,
          message,
          recoverable: true,
        },
      }),
    );
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

/** The host of a URL for the log (the rest may carry signed tokens). */
function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid URL';
  }
}

const REPLY_NOT_STORED = 'The reply could not be saved.';
const MESSAGE_NOT_STORED = 'Your message could not be saved.';
