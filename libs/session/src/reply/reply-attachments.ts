import { Injectable, Logger } from '@nestjs/common';
import { FilesService, FileUrlSigner, UploadRecord } from '@chatbox/files';
import { LlmService, ReplyEvent } from '@chatbox/llm';
import { ConversationStore, MessageDraft, SessionRecord, StoredMessage } from '@chatbox/storage';
import { SessionBroadcaster } from '../ports/session-broadcaster';
import { instant } from '../session-events';

/** OpenAI's `audio/speech` accepts at most 4096 characters of input; longer replies are cut. */
export const TTS_MAX_INPUT_CHARS = 4096;
const TTS_MIME = 'audio/mpeg';

export type FileEvent = Extract<ReplyEvent, { kind: 'file' }>;

/** A file or speech of the AI as it is stored. */
type AttachmentDraft = MessageDraft & { type: 'file_upload' | 'voice_message' };

/** An AI-announced file after the download attempt: stored as an upload, or kept as the external URL. */
export interface ImportedFile {
  event: FileEvent;
  upload?: UploadRecord;
}

/**
 * What a reply brings besides its text (SPEC 6, 4.7): files the model announced (downloaded while
 * the text streams on, stored and sent after the reply) and the reply spoken (text to speech) when
 * it answers a voice note. Both are stored as messages from `ai` and sent to every socket.
 */
@Injectable()
export class ReplyAttachments {
  private readonly logger = new Logger(ReplyAttachments.name);

  constructor(
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
    private readonly llm: LlmService,
    private readonly store: ConversationStore,
    private readonly broadcaster: SessionBroadcaster,
  ) {}

  /** Downloads a file the model produced into the files module; never rejects (failures are logged). */
  async importFile(event: FileEvent, session: SessionRecord, signal: AbortSignal): Promise<ImportedFile> {
    try {
      const upload = await this.files.importFromUrl(session.userId, event.url, {
        filename: event.name,
        mimeType: event.mimeType,
        signal,
      });
      return { event, upload };
    } catch (error) {
      this.logger.warn(
        { err: error, sessionId: session.id, host: safeHost(event.url) },
        'AI file not downloaded; the external URL is kept',
      );
      return { event };
    }
  }

  /**
   * Persists an AI file as a `file_upload` from `ai` and sends it to every socket of the session:
   * the stored copy with a freshly signed link, or (download failed) the provider's own URL.
   */
  async deliverFile(
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
    const message: AttachmentDraft = {
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
  async speak(session: SessionRecord, replyId: string, modelId: string, text: string): Promise<void> {
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

  private async persistAndSend(
    session: SessionRecord,
    draft: AttachmentDraft,
    fileUrl: string,
  ): Promise<void> {
    let message: StoredMessage;
    try {
      ({ message } = await this.store.appendMessage(session, draft));
    } catch (error) {
      this.logger.error({ err: error, sessionId: session.id }, 'could not store an AI file');
      return;
    }
    this.broadcaster.toSession(session.id, {
      kind: 'messageRelayed',
      sessionId: session.id,
      messageId: message.id,
      messageType: draft.type,
      sender: 'ai',
      content: message.content,
      fileId: message.fileId,
      fileUrl,
      modelId: message.meta?.model_id,
      meta: message.meta,
      at: instant(message.timestamp),
    });
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
