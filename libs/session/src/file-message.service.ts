import { Injectable, Logger } from '@nestjs/common';
import { AppConfig, DomainError, ErrorCode, InjectConfig } from '@chatbox/common';
import { FilesService, FileUrlSigner, UploadRecord } from '@chatbox/files';
import { isVoiceUnavailableError, LlmService } from '@chatbox/llm';
import { SessionRecord, StoredMessage } from '@chatbox/storage';
import { chatEvent } from './chat-event';
import { InboundFrame } from './inbound-frame';
import { MessageRateLimit } from './message-rate-limit';
import { ClientConnection } from './ports/client-connection';
import { SessionBroadcaster } from './ports/session-broadcaster';
import { ReplyService } from './reply/reply.service';
import { SessionService } from './session.service';

const AUDIO_MIME = /^(audio\/|video\/webm$|video\/mp4$)/;
const TRANSCRIPTION_UNAVAILABLE = 'Voice messages cannot be transcribed right now; the voice note was saved.';

/**
 * `file_upload` / `voice_message` frames (SPEC 4.7): the file must be one the caller uploaded.
 * Stored with the canonical (unsigned) path; relayed to the session's other sockets with a freshly
 * signed link. A voice note is transcribed when speech-to-text is configured and then answered like
 * a `user_message`.
 */
@Injectable()
export class FileMessageService {
  private readonly logger = new Logger(FileMessageService.name);

  constructor(
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
    private readonly sessions: SessionService,
    private readonly replies: ReplyService,
    private readonly broadcaster: SessionBroadcaster,
    private readonly messageRate: MessageRateLimit,
    private readonly llm: LlmService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  /** `activeSession` resolves (or starts) the socket's session; called only once the file is valid. */
  async handle(
    connection: ClientConnection,
    frame: InboundFrame,
    activeSession: () => Promise<SessionRecord>,
  ): Promise<void> {
    const type = frame.type === 'voice_message' ? 'voice_message' : 'file_upload';
    if (!frame.file_id) throw new DomainError(ErrorCode.MISSING_FIELD, `file_id is required for ${type}`);
    const upload = await this.files.findOwned(frame.file_id, connection.principal.userId);
    if (!upload) throw new DomainError(ErrorCode.INVALID_FILE, 'Unknown file_id: upload the file first');
    if (type === 'voice_message' && !AUDIO_MIME.test(upload.mime))
      throw new DomainError(ErrorCode.INVALID_FILE, 'A voice_message needs an audio file');
    await this.messageRate.consume(connection.principal.userId);

    const boundBefore = connection.sessionId;
    const session = await activeSession();
    const isStaff = connection.principal.isAdmin && session.userId !== connection.principal.userId;
    const willReply =
      type === 'voice_message' &&
      !isStaff &&
      (session.assistingSince === undefined || this.config.llm.aiDuringTakeover);
    // The reply's place is taken before anything is stored, and given back unless a reply takes it.
    const slot = willReply && this.llm.sttAvailable ? await this.replies.takeSlot(session.id) : undefined;
    let replying = false;
    try {
      const transcription = type === 'voice_message' ? await this.transcribe(upload, session.id) : undefined;
      // The gateway already dropped server-owned keys (a forged transcription) from the client's metadata.
      const meta: Record<string, string> = {
        ...frame.metadata,
        file_name: upload.filename,
        mime_type: upload.mime,
        file_size: String(upload.size),
        ...(transcription ? { transcription } : {}),
      };
      const { message: stored, written } = await this.sessions.storeMessage(session, {
        type,
        content: frame.content ?? '',
        timestamp: new Date(),
        sender: isStaff ? 'admin' : 'user',
        fileId: upload.id,
        fileUrl: this.signer.canonicalPath(upload.id),
        meta,
      });
      this.broadcaster.toSession(session.id, this.eventOf(stored, session.id, stored.content), connection.id);
      // The frame is never echoed, so a socket this file just bound (a new chat whose first message is
      // a file) learns its session id from a bare status frame; otherwise it never would (SPEC 4.4).
      if (boundBefore !== session.id)
        connection.send(chatEvent('connection_status', 'system', { session_id: session.id }));

      if (type !== 'voice_message') return;
      if (transcription === undefined)
        throw new DomainError(ErrorCode.TRANSCRIPTION_UNAVAILABLE, TRANSCRIPTION_UNAVAILABLE);
      // Every socket of the session, the sender's included: it learns what was understood.
      this.broadcaster.toSession(session.id, this.eventOf(stored, session.id, transcription));
      if (connection.sessionId !== session.id)
        connection.send(this.eventOf(stored, session.id, transcription));
      if (!slot) return;
      this.replies.enqueue(
        {
          sessionId: session.id,
          userId: session.userId,
          trigger: stored,
          triggerWritten: written,
          originConnectionId: connection.id,
        },
        slot,
      );
      replying = true;
    } finally {
      if (!replying) slot?.release();
    }
  }

  /** The transcription, or undefined when speech-to-text is not configured or failed (logged). */
  private async transcribe(upload: UploadRecord, sessionId: string): Promise<string | undefined> {
    if (!this.llm.sttAvailable) return undefined;
    try {
      const text = await this.llm.transcribe(await this.files.read(upload), upload.filename, upload.mime);
      return text === '' ? undefined : text;
    } catch (error) {
      if (!isVoiceUnavailableError(error)) throw error;
      this.logger.warn({ sessionId, fileId: upload.id }, 'voice note not transcribed');
      return undefined;
    }
  }

  private eventOf(message: StoredMessage, sessionId: string, content: string) {
    return chatEvent(message.type, message.sender, {
      id: message.id,
      session_id: sessionId,
      content,
      file_id: message.fileId,
      file_url: message.fileId ? this.signer.sign(message.fileId) : undefined,
      timestamp: message.timestamp.toISOString(),
      metadata: message.meta,
    });
  }
}
