import { Injectable, Logger } from '@nestjs/common';
import { Subscription } from 'rxjs';
import { AppConfig, ErrorCode, InjectConfig, newMessageId } from '@chatbox/common';
import { FilesService, FileUrlSigner, UploadRecord } from '@chatbox/files';
import { ChatTurn, LLM_ERROR_MESSAGES, LlmService, ReplyEvent } from '@chatbox/llm';
import { MessageOutbox, SessionRecord, SessionRepository, StoredMessage } from '@chatbox/storage';
import { ChatEvent, chatEvent } from '../chat-event';
import { ClientConnection } from '../ports/client-connection';
import { ConnectionRegistry } from '../ports/connection-registry';
import { ReplyLock } from '../ports/reply-lock';
import { SessionBroadcaster, deliverReplyFrameOnce } from '../ports/session-broadcaster';

export type ReplyStatus = 'complete' | 'stopped' | 'error' | 'interrupted';

export interface ReplyJob {
  sessionId: string;
  userId: string;
  /** The stored user message this reply answers: context ends there. */
  triggerMessageId: string;
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
  sessionId: string;
  modelId: string;
  frames: ChatEvent[];
  text: string;
  nextSeq: number;
  finish: (status: ReplyStatus) => void;
}

interface SessionLane {
  tail: Promise<void>;
  waiting: number;
  running: boolean;
}

/**
 * Runs AI replies: one at a time per session (a queue, not concurrency), frames with ids and `seq`,
 * one persisted message at the end, resumable from a per-reply buffer.
 */
@Injectable()
export class ReplyService {
  private readonly logger = new Logger(ReplyService.name);
  private readonly lanes = new Map<string, SessionLane>();
  private readonly active = new Map<string, ActiveReply>();
  private draining = false;

  constructor(
    private readonly llm: LlmService,
    private readonly sessions: SessionRepository,
    private readonly outbox: MessageOutbox,
    private readonly broadcaster: SessionBroadcaster,
    private readonly registry: ConnectionRegistry,
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
    @InjectConfig() private readonly config: AppConfig,
    private readonly lock: ReplyLock,
  ) {
    this.broadcaster.onStopRequest((sessionId) => this.stopLocal(sessionId));
  }

  /** Whether one more reply may wait in the session's queue. */
  canEnqueue(sessionId: string): boolean {
    const lane = this.lanes.get(sessionId);
    if (!lane) return true;
    // The first reply of a lane counts as the streaming one even before it has started.
    const outstanding = lane.waiting + (lane.running ? 1 : 0);
    return outstanding <= this.config.protocol.queuedRepliesPerSession;
  }

  /** Queues a reply; false when the session already has the maximum number waiting. */
  enqueue(job: ReplyJob): boolean {
    if (!this.canEnqueue(job.sessionId)) return false;
    const lane = this.lanes.get(job.sessionId) ?? { tail: Promise.resolve(), waiting: 0, running: false };
    lane.waiting++;
    lane.tail = lane.tail.then(async () => {
      lane.waiting--;
      lane.running = true;
      // Multi-instance mode: a reply of this session running on another instance goes first.
      const release = await this.lock.acquire(job.sessionId);
      try {
        await this.run(job);
      } catch (error) {
        this.logger.error({ err: error, sessionId: job.sessionId }, 'reply failed');
      } finally {
        await release();
        lane.running = false;
        if (lane.waiting === 0 && this.lanes.get(job.sessionId) === lane) this.lanes.delete(job.sessionId);
      }
    });
    this.lanes.set(job.sessionId, lane);
    return true;
  }

  isStreaming(sessionId: string): boolean {
    return this.active.has(sessionId);
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
   * is sent once as a complete, non-streaming message with the same id.
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
    const session = await this.sessions.findById(sessionId);
    const stored = session?.messages.find((message) => message.id === messageId && message.sender === 'ai');
    if (!stored) return false;
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

  /** Shutdown: lets replies finish for up to `graceMs`, then interrupts the rest (persisted as such). */
  async drain(graceMs: number): Promise<void> {
    // Replies still waiting in a queue are not started any more: their user messages are stored.
    this.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.active.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const reply of this.active.values()) reply.finish('interrupted');
    await Promise.all([...this.lanes.values()].map((lane) => lane.tail));
  }

  private async run(job: ReplyJob): Promise<void> {
    if (this.draining) return;
    const session = await this.sessions.findById(job.sessionId);
    if (!session || session.endedAt) return;
    const modelId =
      session.modelId && this.llm.hasModel(session.modelId) ? session.modelId : this.llm.defaultModelId;
    const messageId = newMessageId();
    this.broadcaster.toSession(
      job.sessionId,
      chatEvent('loading', 'ai', {
        session_id: job.sessionId,
        model_id: modelId,
        metadata: { message_id: messageId },
      }),
    );

    const started = performance.now();
    let firstTokenMs: number | undefined;
    let usage: { promptTokens: number; completionTokens: number; estimated?: boolean } | undefined;
    let errorCode: string | undefined;
    let errorMessage: string | undefined;
    let conversationId: string | undefined;
    let subscription: Subscription | undefined;
    // AI-produced files are downloaded while the text streams on, and stored after the reply.
    const fileImports = new AbortController();
    const files: Promise<ImportedFile>[] = [];

    const status = await new Promise<ReplyStatus>((resolve) => {
      let settled = false;
      const reply: ActiveReply = {
        messageId,
        sessionId: job.sessionId,
        modelId,
        frames: [],
        text: '',
        nextSeq: 0,
        finish: (outcome) => {
          if (settled) return;
          settled = true;
          subscription?.unsubscribe();
          resolve(outcome);
        },
      };
      this.active.set(job.sessionId, reply);
      const onEvent = (event: ReplyEvent) => {
        switch (event.kind) {
          case 'delta':
            if (event.text === '') return;
            firstTokenMs ??= Math.round(performance.now() - started);
            reply.text += event.text;
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
          case 'usage':
            usage = event;
            return;
          case 'file':
            files.push(this.importFile(event, session.userId, job.sessionId, fileImports.signal));
            return;
          case 'end':
            conversationId = event.conversationId;
            reply.finish('complete');
            return;
          case 'error':
            errorCode = event.code;
            errorMessage = event.message;
            reply.finish('error');
            return;
        }
      };
      subscription = this.llm
        .stream({
          modelId,
          userId: job.userId,
          sessionId: job.sessionId,
          history: this.contextOf(session, job.triggerMessageId),
          conversationId: session.difyConversationId,
        })
        .subscribe({
          next: onEvent,
          error: (error: unknown) => {
            this.logger.error({ err: error, sessionId: job.sessionId }, 'reply stream failed');
            errorCode = ErrorCode.LLM_ERROR;
            errorMessage = LLM_ERROR_MESSAGES.LLM_ERROR;
            reply.finish('error');
          },
          complete: () => reply.finish(errorCode ? 'error' : 'complete'),
        });
    });

    const reply = this.active.get(job.sessionId) as ActiveReply;
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
    };

    if (reply.text !== '' || status === 'complete') {
      const message: StoredMessage = {
        id: messageId,
        type: 'ai_response',
        content: reply.text,
        timestamp: new Date(),
        sender: 'ai',
        meta,
      };
      try {
        await this.sessions.pushMessage(job.sessionId, message, {
          promptTokens,
          completionTokens,
          responseTimeMs,
        });
        if (conversationId && conversationId !== session.difyConversationId)
          await this.sessions.setFields(job.sessionId, { difyConversationId: conversationId });
      } catch (error) {
        const queued = this.outbox.add(job.sessionId, message, {
          promptTokens,
          completionTokens,
          responseTimeMs,
        });
        this.logger.error(
          { err: error, sessionId: job.sessionId, messageId, queued },
          'could not store the AI reply',
        );
        if (!queued && !errorCode) {
          errorCode = ErrorCode.DATABASE_ERROR;
          errorMessage = REPLY_NOT_STORED;
        }
      }
    }

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
      await this.deliverFile(job.sessionId, messageId, modelId, imported);
    // SPEC 4.7 places TTS in the voice_message paragraph: only a reply to a voice note is spoken
    // (someone who typed gets text only). See docs/decisions/0003-llm.md.
    const trigger = session.messages.find((message) => message.id === job.triggerMessageId);
    if (status === 'complete' && trigger?.type === 'voice_message' && this.llm.ttsAvailable)
      await this.speak(job.sessionId, session.userId, messageId, modelId, reply.text);
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
    sessionId: string,
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
    const message: StoredMessage = {
      id: newMessageId(),
      type: 'file_upload',
      content: '',
      timestamp: new Date(),
      sender: 'ai',
      ...(upload
        ? { fileId: upload.id, fileUrl: this.signer.canonicalPath(upload.id) }
        : { fileUrl: event.url }),
      meta,
    };
    await this.persistAndSend(sessionId, message, upload ? this.signer.sign(upload.id) : event.url);
  }

  /**
   * Text to speech of a finished reply: the audio is stored as an upload of the session's user and
   * sent as a `voice_message` from `ai`. A failure is logged; the text reply is already delivered.
   */
  private async speak(
    sessionId: string,
    userId: string,
    replyId: string,
    modelId: string,
    text: string,
  ): Promise<void> {
    if (text.trim() === '') return;
    try {
      const input = Array.from(text).slice(0, TTS_MAX_INPUT_CHARS).join('');
      const { audio, mimeType } = await this.llm.synthesize(input);
      const mime = mimeType.startsWith('audio/') ? mimeType : TTS_MIME;
      const upload = await this.files.storeGenerated(userId, audio, `reply-${replyId}.mp3`, mime);
      await this.persistAndSend(
        sessionId,
        {
          id: newMessageId(),
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
      this.logger.warn({ err: error, sessionId, replyId }, 'reply not turned into speech');
    }
  }

  private async persistAndSend(sessionId: string, message: StoredMessage, fileUrl: string): Promise<void> {
    try {
      await this.sessions.pushMessage(sessionId, message);
    } catch (error) {
      this.logger.error({ err: error, sessionId, messageId: message.id }, 'could not store an AI file');
      return;
    }
    this.broadcaster.toSession(
      sessionId,
      chatEvent(message.type, 'ai', {
        id: message.id,
        session_id: sessionId,
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
  private contextOf(session: SessionRecord, triggerMessageId: string): ChatTurn[] {
    const end = session.messages.findIndex((message) => message.id === triggerMessageId);
    const upTo = end >= 0 ? session.messages.slice(0, end + 1) : session.messages;
    return upTo
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
