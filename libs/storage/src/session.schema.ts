import { Schema } from 'mongoose';

/**
 * The stored shape of SPEC 8. Field names are fixed by existing data: never rename them.
 * No defaults here: documents written by the earlier service must read back unchanged, and
 * `endTs` is absent (never null) while a session is active.
 */
export interface AssistDocument {
  adminId: string;
  adminName: string;
  start: Date;
  end: Date;
}

/** An element of the `msgs` array of earlier versions (migrated into `messages`, SPEC 8). */
export interface LegacyMessageDocument {
  id?: string;
  type?: string;
  content?: string;
  ts: Date;
  sender?: string;
  fileId?: string;
  fileUrl?: string;
  meta?: Record<string, string>;
}

export interface SessionDocument {
  _id: string;
  uid: string;
  nm?: string;
  nmEnc?: boolean;
  modelId?: string;
  /** Only on documents of earlier versions until they are migrated. */
  msgs?: LegacyMessageDocument[];
  ts: Date;
  endTs?: Date;
  dur?: number;
  lastActivity?: Date;
  adminAssisted?: boolean;
  assistingAdminId?: string;
  assistingAdminName?: string;
  assistingSince?: Date;
  assistDeadline?: Date;
  helpRequested?: boolean;
  helpRequestedAt?: Date;
  helpState?: string;
  /** [ext] Set when the owner deleted the session: gone from their list, kept for admins. */
  hiddenAt?: Date;
  totalTokens?: number;
  promptTokens?: number;
  completionTokens?: number;
  maxRespTime?: number;
  avgRespTime?: number;
  respTimeSum?: number;
  respCount?: number;
  msgCount?: number;
  /**
   * [ext] The revision of the counters: every counter update names the revision it applies to and
   * sets a new one, so an update that lands late (after the driver gave up on it) changes nothing.
   */
  ctrRev?: string;
  shareToken?: string;
  shareExpiresAt?: Date;
  assists?: AssistDocument[];
  difyConversationId?: string;
}

const AssistSchema = new Schema<AssistDocument>(
  { adminId: String, adminName: String, start: Date, end: Date },
  { _id: false, versionKey: false },
);

export const SESSION_MODEL = 'Session';

export const SessionSchema = new Schema<SessionDocument>(
  {
    _id: { type: String },
    uid: String,
    nm: String,
    nmEnc: Boolean,
    modelId: String,
    msgs: { type: Schema.Types.Mixed, default: undefined },
    ts: Date,
    endTs: Date,
    dur: Number,
    lastActivity: Date,
    adminAssisted: Boolean,
    assistingAdminId: String,
    assistingAdminName: String,
    assistingSince: Date,
    assistDeadline: Date,
    helpRequested: Boolean,
    helpRequestedAt: Date,
    helpState: String,
    hiddenAt: Date,
    totalTokens: Number,
    promptTokens: Number,
    completionTokens: Number,
    maxRespTime: Number,
    avgRespTime: Number,
    respTimeSum: Number,
    respCount: Number,
    msgCount: Number,
    ctrRev: String,
    shareToken: String,
    shareExpiresAt: Date,
    assists: { type: [AssistSchema], default: undefined },
    difyConversationId: String,
  },
  { versionKey: false, autoIndex: false, minimize: true, strict: true },
);

export interface IndexSpec {
  key: Record<string, 1 | -1>;
  name: string;
  unique?: boolean;
  sparse?: boolean;
}

/** Named indexes of SPEC 8 plus the one serving active-session lookup and the idle sweep. */
export const SESSION_INDEXES: IndexSpec[] = [
  { key: { uid: 1 }, name: 'idx_user_id' },
  { key: { ts: -1 }, name: 'idx_start_time' },
  { key: { adminAssisted: 1 }, name: 'idx_admin_assisted' },
  { key: { uid: 1, ts: -1 }, name: 'idx_user_start_time' },
  { key: { shareToken: 1 }, name: 'idx_share_token', unique: true, sparse: true },
  { key: { endTs: 1, lastActivity: 1 }, name: 'idx_active_last_activity' },
];
