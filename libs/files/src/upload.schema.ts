import { Schema } from 'mongoose';

/** Stored shape of collection `uploads` (SPEC 6). Field names are the contract: never rename them. */
export interface UploadDocument {
  _id: string;
  uid: string;
  filename: string;
  mime: string;
  size: number;
  key: string;
  ts: Date;
}

export const UPLOAD_MODEL = 'Upload';
export const UPLOADS_COLLECTION = 'uploads';

export const UploadSchema = new Schema<UploadDocument>(
  {
    _id: { type: String },
    uid: String,
    filename: String,
    mime: String,
    size: Number,
    key: String,
    ts: Date,
  },
  { collection: UPLOADS_COLLECTION, versionKey: false, autoIndex: false, strict: true },
);

export const UPLOAD_INDEXES: { key: Record<string, 1 | -1>; name: string }[] = [
  { key: { uid: 1 }, name: 'idx_uploads_uid' },
  { key: { uid: 1, ts: -1 }, name: 'idx_uploads_uid_ts' },
  { key: { ts: 1 }, name: 'idx_uploads_ts' },
];
