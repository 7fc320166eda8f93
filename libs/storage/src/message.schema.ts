import { Schema } from 'mongoose';
import type { IndexSpec } from './session.schema';

/**
 * One document per message (SPEC 8, collection `messages`), written by insert only: `_id` is the
 * message id, so a retried or late duplicate write is a duplicate-key no-op.
 */
export interface MessageDocument {
  _id: string;
  sid: string;
  uid: string;
  seq: number;
  type: string;
  content: string;
  ts: Date;
  sender: string;
  fileId?: string;
  fileUrl?: string;
  meta?: Record<string, string>;
}

/** A streaming reply's text so far (collection `reply_checkpoints`), replaced by `_id`. */
export interface CheckpointDocument {
  _id: string;
  sid: string;
  uid: string;
  owner: string;
  at: Date;
  message: MessageDocument;
}

export const MESSAGE_MODEL = 'Message';
export const MESSAGES_COLLECTION = 'messages';
export const CHECKPOINT_MODEL = 'ReplyCheckpoint';
export const CHECKPOINTS_COLLECTION = 'reply_checkpoints';

export const MessageSchema = new Schema<MessageDocument>(
  {
    _id: { type: String },
    sid: String,
    uid: String,
    seq: Number,
    type: String,
    content: String,
    ts: Date,
    sender: String,
    fileId: String,
    fileUrl: String,
    meta: { type: Schema.Types.Mixed },
  },
  { versionKey: false, autoIndex: false, minimize: true, strict: true, collection: MESSAGES_COLLECTION },
);

export const CheckpointSchema = new Schema<CheckpointDocument>(
  {
    _id: { type: String },
    sid: String,
    uid: String,
    owner: String,
    at: Date,
    message: { type: Schema.Types.Mixed },
  },
  { versionKey: false, autoIndex: false, strict: true, collection: CHECKPOINTS_COLLECTION },
);

export const MESSAGE_INDEXES: IndexSpec[] = [
  { key: { sid: 1, seq: 1 }, name: 'idx_msg_session_seq' },
  { key: { fileId: 1 }, name: 'idx_msg_file', sparse: true },
];
