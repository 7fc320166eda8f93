import { Injectable, Logger } from '@nestjs/common';
import { DomainError, ErrorCode } from '@chatbox/common';
import { FilesService, FileUrlSigner, UploadRecord } from '@chatbox/files';
import { isVoiceUnavailableError, LlmService } from '@chatbox/llm';
import { SessionRecord, StoredMessage } from '@chatbox/storage';
import { MessageRateLimit } from '../message-rate-limit';
import { ClientConnection } from '../ports/client-connection';
import { SessionBroadcaster } from '../ports/session-broadcaster';
import { instant, MessageRelayed } from '../session-events';
import { SessionService } from '../session.service';
import { ActiveSession } from './active-session';
import { FrameHandler, FrameOf } from './frame-handler';
import { MessageTurn } from './message-turn';

const AUDIO_MIME = /^(audio\/|video\/webm$|video\/mp4$)/;
const TRANSCRIPTION_UNAVAILABLE = 'Voice messages cannot be transcribed right now; the voice note was saved.';

type FileFrame = FrameOf<'file_upload' | 'voice_message'>;

/**
 * `file_upload` / `voice_message` frames (SPEC 4.7): the file must be one the caller uploaded.
 * Stored with the canonical (unsigned) path; relayed to the session's other sockets with a freshly
 * signed link. A voice note is transcribed when speech-to-text is configured and then answered like
 * a `user_message`.
 */
@Injectable()
export class FileMessageHandler extends FrameHandler<'file_upload' | 'voice_message'> {
  readonly types = ['file_upload', 'voice_message'] as const;
  private readonly logger = new Logger(FileMessageHandler.name);

  constructor(
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
    private readonly sessions: SessionService,
    private readonly broadcaster: SessionBroadcaster,
    private readonly messageRate: MessageRateLimit,
    private readonly llm: LlmService,
    private readonly activeSession: ActiveSession,
    private readonly turn: MessageTurn,
  ) {
    super();
  }

  async handle(connection: ClientConnection, frame: FileFrame): Promise<void> {
    const upload = await this.ownUpload(connection, frame);
    await this.messageRate.consume(connection.principal.userId);
    const boundBefore = connection.sessionId;
    // Resolved (or started) only once the file is valid.
    const session = await this.activeSession.of(connection);
    const voice = frame.type === 'voice_message';
    // The reply's place is taken before anything is stored, and given back unless a reply takes it.
    const slot = voice && this.llm.sttAvailable ? await this.turn.slotFor(connection, session) : undefined;
    let replying = false;
    try {
      const transcription = voice ? await this.transcribe(upload, session.id) : undefined;
      const { message: stored, written } = await this.store(
        connection,
        session,
        frame,
        upload,
        transcription,
      );
      this.broadcaster.toSession(session.id, this.shown(stored, session.id, stored.content), connection.id);
      // The frame is never echoed, so a socket this file just bound (a new chat whose first message is
      // a file) learns its session id from a bare status frame; otherwise it never would (SPEC 4.4).
      if (boundBefore !== session.id)
        connection.send({ kind: 'sessionBound', sessionId: session.id, at: instant() });

      if (!voice) return;
      this.shareTranscription(connection, session.id, stored, transcription);
      if (!slot) return;
      this.turn.answer(connection, session, stored, written, slot);
      replying = true;
    } finally {
      if (!replying) slot?.release();
    }
  }

  /** The caller's own upload, and an audio file for a voice message. */
  private async ownUpload(connection: ClientConnection, frame: FileFrame): Promise<UploadRecord> {
    const upload = await this.files.findOwned(frame.file_id, connection.principal.userId);
    if (!upload) throw new DomainError(ErrorCode.INVALID_FILE, 'Unknown file_id: upload the file first');
    if (frame.type === 'voice_message' && !AUDIO_MIME.test(upload.mime))
      throw new DomainError(ErrorCode.INVALID_FILE, 'A voice_message needs an audio file');
    return upload;
  }

  private store(
    connection: ClientConnection,
    session: SessionRecord,
    frame: FileFrame,
    upload: UploadRecord,
    transcription: string | undefined,
  ) {
    // The gateway already dropped server-owned keys (a forged transcription) from the client's metadata.
    const meta: Record<string, string> = {
      ...frame.metadata,
      file_name: upload.filename,
      mime_type: upload.mime,
      file_size: String(upload.size),
      ...(transcription ? { transcription } : {}),
    };
    return this.sessions.storeMessage(session, {
      type: frame.type,
      content: frame.content ?? '',
      timestamp: new Date(),
      sender: this.turn.senderOf(connection, session),
      fileId: upload.id,
      fileUrl: this.signer.canonicalPath(upload.id),
      meta,
    });
  }

  /** Every socket of the session, the sender's included, learns what was understood. */
  private shareTranscription(
    connection: ClientConnection,
    sessionId: string,
    stored: StoredMessage,
    transcription: string | undefined,
  ): void {
    if (transcription === undefined)
      throw new DomainError(ErrorCode.TRANSCRIPTION_UNAVAILABLE, TRANSCRIPTION_UNAVAILABLE);
    const understood = this.shown(stored, sessionId, transcription);
    this.broadcaster.toSession(sessionId, understood);
    if (connection.sessionId !== sessionId) connection.send(understood);
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

  /** The stored file or voice message with `content` and a freshly signed link. */
  private shown(message: StoredMessage, sessionId: string, content: string): MessageRelayed {
    return {
      kind: 'messageRelayed',
      sessionId,
      messageId: message.id,
      messageType: message.type === 'voice_message' ? 'voice_message' : 'file_upload',
      sender: message.sender,
      content,
      fileId: message.fileId,
      fileUrl: message.fileId ? this.signer.sign(message.fileId) : undefined,
      meta: message.meta,
      at: instant(message.timestamp),
    };
  }
}
