/** The one typed configuration object. Built once from the environment by `loadConfig`. */

export type NodeEnv = 'development' | 'production' | 'test';
export type LlmProviderType = 'openai' | 'anthropic' | 'dify' | 'demo';
export type StorageDriver = 'local' | 's3';

export interface LlmProviderConfig {
  /** Position n of `LLM_PROVIDER_<n>_*`, kept for error messages. */
  index: number;
  id: string;
  name: string;
  type: LlmProviderType;
  endpoint?: string;
  apiKey?: string;
  model?: string;
  systemPrompt?: string;
}

export interface SmtpConfig {
  host: string;
  port: number;
  user?: string;
  pass?: string;
  secure: boolean;
  from: string;
}

export interface SmsConfig {
  provider: 'twilio';
  accountSid: string;
  authToken: string;
  fromNumber?: string;
  apiBase: string;
}

export interface S3Config {
  bucket?: string;
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
}

/**
 * Fixed protocol bounds from the SPEC. They live here (not as literals in the code) so that every
 * limit is named once; tests may lower them through `loadConfig` overrides.
 */
export interface ProtocolLimits {
  contentChars: number;
  sessionIdChars: number;
  fileIdChars: number;
  fileUrlChars: number;
  modelIdChars: number;
  metadataKeys: number;
  metadataKeyChars: number;
  metadataValueChars: number;
  /** `id` and `user_id` that old clients echo back: accepted up to this length, never used. */
  echoedIdChars: number;
  /** Entries of a `models` list an old client echoes back: accepted up to this count, never used. */
  echoedModels: number;
  queuedRepliesPerSession: number;
  messagesPerSession: number;
  sessionNameChars: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  adminGoneGraceMs: number;
  shutdownReplyGraceMs: number;
  shutdownDeadlineMs: number;
  /**
   * Kept free at the end of the shutdown deadline for what follows the final flush (closing the
   * database connection, stopping the embedded database): the flush may use the rest.
   */
  shutdownFlushMarginMs: number;
  mongoPingTimeoutMs: number;
  /** A database operation with no answer for this long fails (and is retried or queued). */
  mongoSocketTimeoutMs: number;
  mongoRetryCapMs: number;
  /**
   * The driver's connection pool per instance. On the embedded FerretDB-on-PostgreSQL it must stay
   * below FerretDB's own pool (50, FERRETDB_POOL_MAX_CONNS) summed over every client, or FerretDB
   * can deadlock for good (docs/decisions/0008). A `maxPoolSize` in MONGO_URI wins.
   */
  mongoMaxPoolSize: number;
  /**
   * Inserts of all sessions travel together: at most this many documents per insert command, and this
   * many commands per collection on their way at once (the rest wait for the next one).
   */
  insertBatchDocuments: number;
  insertBatchesInFlight: number;
  sessionListLimit: number;
  /** MongoDB unreachable this long before admins are alerted (SPEC 7). */
  databaseOutageAlertMs: number;
  databaseCheckIntervalMs: number;
  /** Rate-limit rejections within the window that count as abnormal traffic (SPEC 7). */
  rateLimitSpikeThreshold: number;
  rateLimitSpikeWindowMs: number;
  /**
   * Writes waiting for the database, in flight or refused (SPEC 13's outbox; a few KB each), and the
   * retry pace; beyond the bound new messages are refused with DATABASE_ERROR.
   */
  outboxCapacity: number;
  outboxFlushIntervalMs: number;
  /** The outbox journal is rewritten with only the waiting writes once it grows past this. */
  journalCompactBytes: number;
  /**
   * A session's counters are written at most this often (the messages' deltas coalesced into one
   * update; lists of this process show them at once, other processes this much later).
   */
  counterFlushDelayMs: number;
  /** Sessions held in memory (fields, counters, the last messages); the least recently used go first. */
  sessionCacheEntries: number;
  /** Sessions of earlier versions migrated per batch at start-up. */
  legacyMigrationBatch: number;
  /** A streaming reply's text so far is saved this often (never per chunk). */
  replyCheckpointIntervalMs: number;
  /**
   * Several instances: the next reply of a session (maybe elsewhere) reads its context from the
   * database, so a finished reply's write is awaited this long before the session's lock is released.
   */
  replyWriteWaitMs: number;
}

export interface AppConfig {
  env: NodeEnv;
  isProduction: boolean;
  port: number;
  pathPrefix: string;
  logLevel: string;
  jwt: { secret: string; generated: boolean };
  encryption: { key?: Buffer; oldKeys: Buffer[] };
  mongo: {
    uri?: string;
    database: string;
    collection: string;
    retryAttempts: number;
    retryDelayMs: number;
    /** Start-up gives up on an unreachable MONGO_URI after this long (MONGO_CONNECT_TIMEOUT). */
    connectTimeoutMs: number;
  };
  embeddedDb: { binary: string; provisionScript: string; backend: 'postgresql' | 'sqlite' };
  redisUrl?: string;
  /** Prefix of every key and channel of the multi-instance mode (REDIS_KEY_PREFIX). */
  redisKeyPrefix: string;
  /**
   * Multi-instance liveness: every instance refreshes a key every `heartbeatIntervalMs`; one silent
   * for `livenessTtlMs` is gone (its connection counts stop counting, its replies are ended as
   * interrupted by the others, its reply locks lapse).
   */
  instances: { heartbeatIntervalMs: number; livenessTtlMs: number };
  allowedOrigins: string[];
  corsAllowedOrigins: string[];
  /** Origins the served web client may use as `?api=` (it sends the user's token there). */
  webClientApiOrigins: string[];
  trustedProxies: string[];
  metricsAllowedNetworks: string[];
  limits: {
    maxMessageSize: number;
    /** Bytes of received frames waiting to be handled per socket; reading pauses beyond it. */
    maxPendingBytes: number;
    maxConnections: number;
    maxConnectionsPerUser: number;
    rateLimit: number;
    rateWindowMs: number;
    /** Admin actions (POST, DELETE, …) per window per admin. */
    adminRateLimit: number;
    adminRateWindowMs: number;
    /** Admin reads (GET) per window per admin: an open dashboard must not use up the action budget. */
    adminReadRateLimit: number;
    publicRateLimit: number;
    publicRateWindowMs: number;
  };
  session: { reconnectTimeoutMs: number; cleanupIntervalMs: number };
  llm: {
    streamTimeoutMs: number;
    firstTokenTimeoutMs: number;
    historyMessages: number;
    /** An AI reply longer than this (UTF-8 bytes) is ended as stopped (LLM_MAX_REPLY_SIZE). */
    maxReplyBytes: number;
    systemPrompt: string;
    providers: LlmProviderConfig[];
    defaultModel: string;
    aiDuringTakeover: boolean;
    sttProviderId?: string;
    ttsProviderId?: string;
    ttsVoice?: string;
  };
  notify: {
    adminEmails: string[];
    adminPhones: string[];
    adminPanelUrl?: string;
    smtp?: SmtpConfig;
    sms?: SmsConfig;
    webhookUrl?: string;
    rateLimit: number;
    rateWindowMs: number;
  };
  /** Texts an admin can insert while assisting a user (ADMIN_CANNED_REPLIES). */
  admin: { cannedReplies: string[] };
  storage: {
    driver: StorageDriver;
    dataDir: string;
    s3: S3Config;
    uploadMaxSize: number;
    /** Uploads per user per `uploadRateWindowMs`. */
    uploadRateLimit: number;
    uploadRateWindowMs: number;
    /** Bytes of uploads one user may keep stored; 0 = no quota. */
    uploadQuotaBytes: number;
    /** An upload no message references is removed this long after it was made; 0 = never. */
    uploadOrphanGraceMs: number;
    uploadCleanupIntervalMs: number;
    fileUrlTtlMs: number;
    shareLinkTtlMs: number;
  };
  protocol: ProtocolLimits;
}

/** DI token: inject `AppConfig` anywhere to read configuration. */
export const APP_CONFIG = Symbol('APP_CONFIG');
