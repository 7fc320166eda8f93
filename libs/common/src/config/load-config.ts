import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import {
  AppConfig,
  LlmProviderConfig,
  LlmProviderType,
  NodeEnv,
  ProtocolLimits,
  SmsConfig,
  SmtpConfig,
  StorageDriver,
} from './app-config';
import { EnvironmentVariables, MAX_PROVIDERS, PROVIDER_FIELDS } from './env.schema';
import { isPrivateHost } from './network';
import { parseBoolean, parseByteSize, parseDuration, parseList } from './parse';

export type Environment = Record<string, string | undefined>;

/** Thrown when the environment is invalid; the message lists every offending variable and its rule. */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigValidationError';
  }
}

const WEAK_SECRET_WORDS = [
  'secret',
  'test',
  'password',
  'admin',
  'changeme',
  'default',
  'example',
  'demo',
  '12345',
  'placeholder',
];
const PLACEHOLDER_MARKERS = ['REPLACE_WITH', 'PLACEHOLDER', 'CHANGE-ME', 'CHANGE_ME', 'YOUR-'];
/** Secrets: their values are never echoed in an error, and a placeholder in any of them stops start-up. */
const SECRET_VARIABLES = [
  'JWT_SECRET',
  'ENCRYPTION_KEY',
  'ENCRYPTION_KEYS_OLD',
  'SMTP_PASS',
  'SMS_AUTH_TOKEN',
  'S3_SECRET_ACCESS_KEY',
  'MONGO_URI',
  'REDIS_URL',
  // A Slack-style webhook URL is itself the credential.
  'NOTIFY_WEBHOOK_URL',
  ...Array.from({ length: MAX_PROVIDERS }, (_, index) => `LLM_PROVIDER_${index + 1}_API_KEY`),
];
/** Account names that come with a secret: shown in errors, but a placeholder stops start-up too. */
const CREDENTIAL_NAME_VARIABLES = ['SMTP_USER', 'SMS_ACCOUNT_SID', 'S3_ACCESS_KEY_ID'];
const ORIGIN_VARIABLES = [
  'ALLOWED_ORIGINS',
  'WS_ALLOWED_ORIGINS',
  'CORS_ALLOWED_ORIGINS',
  'WEB_CLIENT_API_ORIGINS',
];
const PROVIDER_TYPES: LlmProviderType[] = ['openai', 'anthropic', 'dify', 'demo'];
const MIN_PRODUCTION_SECRET_CHARS = 32;
const ENCRYPTION_KEY_BYTES = 32;

export const DEFAULT_SYSTEM_PROMPT =
  'You are a helpful, concise assistant embedded in a customer chat. Answer in the language of the user.';

export const DEFAULT_PROTOCOL_LIMITS: ProtocolLimits = {
  contentChars: 10_000,
  sessionIdChars: 128,
  fileIdChars: 255,
  fileUrlChars: 2048,
  modelIdChars: 100,
  metadataKeys: 20,
  metadataKeyChars: 64,
  metadataValueChars: 1000,
  echoedIdChars: 128,
  echoedModels: 20,
  queuedRepliesPerSession: 3,
  messagesPerSession: 2000,
  sessionNameChars: 50,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 60_000,
  adminGoneGraceMs: 30_000,
  shutdownReplyGraceMs: 10_000,
  shutdownDeadlineMs: 30_000,
  shutdownFlushMarginMs: 3_000,
  mongoPingTimeoutMs: 2_000,
  mongoSocketTimeoutMs: 20_000,
  mongoRetryCapMs: 2_000,
  mongoMaxPoolSize: 20,
  // FerretDB inserts up to 100 documents per SQL statement (its --test-batch-size default).
  insertBatchDocuments: 100,
  insertBatchesInFlight: 1,
  sessionListLimit: 100,
  databaseOutageAlertMs: 30_000,
  databaseCheckIntervalMs: 5_000,
  rateLimitSpikeThreshold: 50,
  rateLimitSpikeWindowMs: 60_000,
  outboxCapacity: 10_000,
  outboxFlushIntervalMs: 1_000,
  journalCompactBytes: 8 * 1024 * 1024,
  counterFlushDelayMs: 10_000,
  sessionCacheEntries: 10_000,
  legacyMigrationBatch: 50,
  replyCheckpointIntervalMs: 2_000,
  replyWriteWaitMs: 5_000,
};

const RATE_WINDOW_MS = 60_000;
/** Several instances: within 10 s of a crash its replies end and its connection slots free up. */
const DEFAULT_HEARTBEAT_INTERVAL = '2s';
const DEFAULT_LIVENESS_TTL = '6s';
/** A whole missed heartbeat and a late one still fit in the TTL (docs/operations.md). */
const HEARTBEATS_PER_LIVENESS_TTL = 3;
/** Reads of an open dashboard (push updates, debounced re-reads) stay far below this per window. */
const DEFAULT_ADMIN_READ_RATE_LIMIT = 300;
const MAX_CANNED_REPLIES = 50;

function isBlank(value: string | undefined): value is undefined {
  return value === undefined || value.trim() === '';
}

/** Drops empty strings so `FOO=` behaves like an unset variable. */
function withoutBlanks(env: Environment): Environment {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => !isBlank(value)));
}

function durationOf(value: string | undefined, fallback: string): number {
  return parseDuration(value ?? fallback) as number;
}

/** `0` or unset means "never" (0 ms). */
function optionalDurationOf(value: string | undefined, fallback = '0'): number {
  const text = value ?? fallback;
  return text.trim() === '0' ? 0 : (parseDuration(text) as number);
}

function intOf(value: string | undefined, fallback: number): number {
  return value === undefined ? fallback : Number(value);
}

function schemaProblems(env: Environment): string[] {
  const instance = plainToInstance(EnvironmentVariables, env, { excludeExtraneousValues: false });
  const errors = validateSync(instance, { skipMissingProperties: false, forbidUnknownValues: false });
  return errors.flatMap((error) =>
    Object.values(error.constraints ?? {}).map((message) => {
      const value = env[error.property];
      const shown = SECRET_VARIABLES.includes(error.property) ? '' : ` (got "${value}")`;
      const text = message.startsWith(error.property) ? message : `${error.property}: ${message}`;
      return `${text}${shown}`;
    }),
  );
}

function placeholderProblems(env: Environment): string[] {
  return [...SECRET_VARIABLES, ...CREDENTIAL_NAME_VARIABLES, ...ORIGIN_VARIABLES]
    .filter((name) => {
      const value = env[name]?.toUpperCase();
      return value !== undefined && PLACEHOLDER_MARKERS.some((marker) => value.includes(marker));
    })
    .map((name) => `${name} holds a placeholder value; set a real one`);
}

function providerProblemsAndList(env: Environment): { problems: string[]; providers: LlmProviderConfig[] } {
  const problems: string[] = [];
  const providers: LlmProviderConfig[] = [];
  for (let index = 1; index <= MAX_PROVIDERS; index++) {
    const field = (name: (typeof PROVIDER_FIELDS)[number]) => env[`LLM_PROVIDER_${index}_${name}`];
    if (PROVIDER_FIELDS.every((name) => field(name) === undefined)) continue;
    const prefix = `LLM_PROVIDER_${index}`;
    const type = field('TYPE');
    const id = field('ID');
    if (!id) problems.push(`${prefix}_ID is required when other ${prefix}_* variables are set`);
    else if (id.length > DEFAULT_PROTOCOL_LIMITS.modelIdChars)
      problems.push(`${prefix}_ID must be at most ${DEFAULT_PROTOCOL_LIMITS.modelIdChars} characters`);
    if (!type || !PROVIDER_TYPES.includes(type as LlmProviderType)) {
      problems.push(`${prefix}_TYPE must be one of ${PROVIDER_TYPES.join(', ')} (got "${type ?? ''}")`);
      continue;
    }
    const endpoint = field('ENDPOINT');
    if (type !== 'demo') {
      if (!endpoint) problems.push(`${prefix}_ENDPOINT is required for type ${type}`);
      else {
        try {
          const url = new URL(endpoint);
          if (!['http:', 'https:'].includes(url.protocol))
            problems.push(`${prefix}_ENDPOINT must be an http(s) URL`);
          else if (url.protocol === 'http:' && !isPrivateHost(url.hostname))
            problems.push(
              `${prefix}_ENDPOINT must use https unless the host is loopback, private, .local, .internal, .svc or dotless (got host "${url.hostname}")`,
            );
        } catch {
          problems.push(`${prefix}_ENDPOINT must be a URL (got "${endpoint}")`);
        }
      }
      if (type !== 'dify' && !field('MODEL')) problems.push(`${prefix}_MODEL is required for type ${type}`);
    }
    if (id && providers.some((p) => p.id === id)) problems.push(`${prefix}_ID "${id}" is used twice`);
    providers.push({
      index,
      id: id ?? '',
      name: field('NAME') ?? id ?? '',
      type: type as LlmProviderType,
      endpoint: endpoint?.replace(/\/+$/, ''),
      apiKey: field('API_KEY'),
      model: field('MODEL'),
      systemPrompt: field('SYSTEM_PROMPT'),
    });
  }
  return { problems, providers };
}

function productionProblems(env: Environment, allowedOrigins: string[], corsOrigins: string[]): string[] {
  const problems: string[] = [];
  const secret = env.JWT_SECRET;
  if (!secret) problems.push('JWT_SECRET is required in production');
  else {
    if (secret.length < MIN_PRODUCTION_SECRET_CHARS)
      problems.push(`JWT_SECRET must be at least ${MIN_PRODUCTION_SECRET_CHARS} characters in production`);
    const weak = WEAK_SECRET_WORDS.filter((word) => secret.toLowerCase().includes(word));
    if (weak.length > 0)
      problems.push(`JWT_SECRET must not contain weak words in production (found: ${weak.join(', ')})`);
  }
  if (!env.ENCRYPTION_KEY)
    problems.push('ENCRYPTION_KEY is required in production (message text is encrypted at rest)');
  if (allowedOrigins.length === 0)
    problems.push(
      'ALLOWED_ORIGINS must list the WebSocket origins in production (empty would allow any origin)',
    );
  if (corsOrigins.includes('*')) problems.push('CORS_ALLOWED_ORIGINS must not be "*" in production');
  return problems;
}

function keyProblems(env: Environment): string[] {
  const problems: string[] = [];
  if (
    env.ENCRYPTION_KEY !== undefined &&
    Buffer.byteLength(env.ENCRYPTION_KEY, 'utf8') !== ENCRYPTION_KEY_BYTES
  )
    problems.push(
      `ENCRYPTION_KEY must be exactly ${ENCRYPTION_KEY_BYTES} bytes (UTF-8), got ${Buffer.byteLength(env.ENCRYPTION_KEY, 'utf8')}`,
    );
  parseList(env.ENCRYPTION_KEYS_OLD).forEach((key, position) => {
    if (Buffer.byteLength(key, 'utf8') !== ENCRYPTION_KEY_BYTES)
      problems.push(
        `ENCRYPTION_KEYS_OLD entry ${position + 1} must be exactly ${ENCRYPTION_KEY_BYTES} bytes (UTF-8)`,
      );
  });
  return problems;
}

/** ADMIN_CANNED_REPLIES: a JSON array of non-empty texts, each within the message content limit. */
function cannedRepliesOf(value: string | undefined): { problems: string[]; replies: string[] } {
  if (value === undefined) return { problems: [], replies: [] };
  const rule = `ADMIN_CANNED_REPLIES must be a JSON array of at most ${MAX_CANNED_REPLIES} non-empty strings of at most ${DEFAULT_PROTOCOL_LIMITS.contentChars} characters, like ["Hello, I am looking into it."]`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { problems: [rule], replies: [] };
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.length <= MAX_CANNED_REPLIES &&
    parsed.every(
      (item) =>
        typeof item === 'string' && item.trim() !== '' && item.length <= DEFAULT_PROTOCOL_LIMITS.contentChars,
    );
  return valid
    ? { problems: [], replies: (parsed as string[]).map((item) => item.trim()) }
    : { problems: [rule], replies: [] };
}

function originProblems(name: string, origins: string[], allowWildcard: boolean): string[] {
  return origins
    .filter((origin) => {
      if (origin === '*') return !allowWildcard;
      try {
        const url = new URL(origin);
        return url.origin !== origin;
      } catch {
        return true;
      }
    })
    .map((origin) => `${name} entry "${origin}" must be an exact origin like https://app.example.com`);
}

const DEMO_PROVIDER: LlmProviderConfig = { index: 0, id: 'demo', name: 'Demo model', type: 'demo' };
const PRIVATE_NETWORKS = '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8';

type Origins = Pick<AppConfig, 'allowedOrigins' | 'corsAllowedOrigins' | 'webClientApiOrigins'>;

function originsOf(env: Environment): Origins {
  return {
    allowedOrigins: parseList(env.ALLOWED_ORIGINS ?? env.WS_ALLOWED_ORIGINS),
    corsAllowedOrigins: parseList(env.CORS_ALLOWED_ORIGINS),
    webClientApiOrigins: parseList(env.WEB_CLIENT_API_ORIGINS),
  };
}

/** The default model, and the speech providers, must name configured providers (speech: openai-type). */
function modelChoiceProblems(
  env: Environment,
  providers: LlmProviderConfig[],
  defaultModel: string,
): string[] {
  const problems: string[] = [];
  if (!providers.some((p) => p.id === defaultModel))
    problems.push(`LLM_DEFAULT_MODEL "${defaultModel}" is not the ID of a configured provider`);
  for (const name of ['STT_PROVIDER_ID', 'TTS_PROVIDER_ID'] as const) {
    const id = env[name];
    if (id !== undefined && !providers.some((p) => p.id === id && p.type === 'openai'))
      problems.push(`${name} "${id}" must be the ID of a configured openai-type provider`);
  }
  return problems;
}

/**
 * The liveness key must survive a late heartbeat or two (a busy event loop, a slow Redis answer), or
 * a live instance would be taken for gone and its replies ended under it.
 */
function livenessProblems(env: Environment): string[] {
  const interval = parseDuration(env.INSTANCE_HEARTBEAT_INTERVAL ?? DEFAULT_HEARTBEAT_INTERVAL);
  const ttl = parseDuration(env.INSTANCE_LIVENESS_TTL ?? DEFAULT_LIVENESS_TTL);
  if (interval === undefined || ttl === undefined) return []; // the schema names the variable
  return ttl < HEARTBEATS_PER_LIVENESS_TTL * interval
    ? [
        `INSTANCE_LIVENESS_TTL must be at least ${HEARTBEATS_PER_LIVENESS_TTL} × INSTANCE_HEARTBEAT_INTERVAL (got ${ttl} ms and ${interval} ms)`,
      ]
    : [];
}

function storageDriverProblems(env: Environment): string[] {
  return env.STORAGE_DRIVER === 's3' && !env.S3_BUCKET
    ? ['S3_BUCKET is required when STORAGE_DRIVER=s3']
    : [];
}

function securitySections(env: Environment): Pick<AppConfig, 'jwt' | 'encryption'> {
  return {
    jwt: env.JWT_SECRET
      ? { secret: env.JWT_SECRET, generated: false }
      : { secret: randomBytes(32).toString('hex'), generated: true },
    encryption: {
      key: env.ENCRYPTION_KEY ? Buffer.from(env.ENCRYPTION_KEY, 'utf8') : undefined,
      oldKeys: parseList(env.ENCRYPTION_KEYS_OLD).map((key) => Buffer.from(key, 'utf8')),
    },
  };
}

function databaseSections(
  env: Environment,
): Pick<AppConfig, 'mongo' | 'embeddedDb' | 'redisUrl' | 'redisKeyPrefix' | 'instances'> {
  return {
    mongo: {
      uri: env.MONGO_URI,
      database: env.MONGO_DATABASE ?? 'chat',
      collection: env.MONGO_COLLECTION ?? 'sessions',
      retryAttempts: intOf(env.MONGO_RETRY_ATTEMPTS, 3),
      retryDelayMs: durationOf(env.MONGO_RETRY_DELAY, '100ms'),
      connectTimeoutMs: durationOf(env.MONGO_CONNECT_TIMEOUT, '10s'),
    },
    embeddedDb: {
      binary: resolve(env.FERRETDB_BIN ?? '.tools/bin/ferretdb'),
      provisionScript: resolve('scripts/provision-ferretdb.sh'),
      backend: env.EMBEDDED_DB_BACKEND === 'sqlite' ? 'sqlite' : 'postgresql',
    },
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX ?? 'chatbox:',
    instances: {
      heartbeatIntervalMs: durationOf(env.INSTANCE_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL),
      livenessTtlMs: durationOf(env.INSTANCE_LIVENESS_TTL, DEFAULT_LIVENESS_TTL),
    },
  };
}

function limitsSection(env: Environment): AppConfig['limits'] {
  return {
    maxMessageSize: intOf(env.MAX_MESSAGE_SIZE, 1_048_576),
    maxPendingBytes: parseByteSize(env.MAX_PENDING_BYTES ?? '2MB') as number,
    maxConnections: intOf(env.MAX_CONNECTIONS, 10_000),
    maxConnectionsPerUser: intOf(env.MAX_CONNECTIONS_PER_USER, 10),
    rateLimit: intOf(env.RATE_LIMIT, 100),
    rateWindowMs: RATE_WINDOW_MS,
    adminRateLimit: intOf(env.ADMIN_RATE_LIMIT, 20),
    adminRateWindowMs: durationOf(env.ADMIN_RATE_WINDOW, '1m'),
    adminReadRateLimit: intOf(env.ADMIN_READ_RATE_LIMIT, DEFAULT_ADMIN_READ_RATE_LIMIT),
    publicRateLimit: intOf(env.PUBLIC_RATE_LIMIT, 60),
    publicRateWindowMs: RATE_WINDOW_MS,
  };
}

function llmSection(
  env: Environment,
  providers: LlmProviderConfig[],
  defaultModel: string,
): AppConfig['llm'] {
  return {
    streamTimeoutMs: durationOf(env.LLM_STREAM_TIMEOUT, '120s'),
    firstTokenTimeoutMs: durationOf(env.LLM_FIRST_TOKEN_TIMEOUT, '30s'),
    historyMessages: intOf(env.LLM_HISTORY_MESSAGES, 20),
    maxReplyBytes: parseByteSize(env.LLM_MAX_REPLY_SIZE ?? '256KB') as number,
    systemPrompt: env.LLM_SYSTEM_PROMPT ?? DEFAULT_SYSTEM_PROMPT,
    providers,
    defaultModel,
    aiDuringTakeover: parseBoolean(env.AI_DURING_TAKEOVER, false),
    sttProviderId: env.STT_PROVIDER_ID,
    ttsProviderId: env.TTS_PROVIDER_ID,
    ttsVoice: env.TTS_VOICE,
  };
}

function smtpOf(env: Environment): SmtpConfig | undefined {
  if (!env.SMTP_HOST) return undefined;
  return {
    host: env.SMTP_HOST,
    port: intOf(env.SMTP_PORT, 587),
    user: env.SMTP_USER,
    pass: env.SMTP_PASS,
    secure: parseBoolean(env.SMTP_SECURE, false),
    from: env.EMAIL_FROM ?? 'chatbox@localhost',
  };
}

function smsOf(env: Environment): SmsConfig | undefined {
  if (!env.SMS_ACCOUNT_SID || !env.SMS_AUTH_TOKEN) return undefined;
  return {
    provider: 'twilio',
    accountSid: env.SMS_ACCOUNT_SID,
    authToken: env.SMS_AUTH_TOKEN,
    fromNumber: env.SMS_FROM_NUMBER,
    apiBase: (env.SMS_API_BASE ?? 'https://api.twilio.com').replace(/\/+$/, ''),
  };
}

function notifySection(env: Environment): AppConfig['notify'] {
  return {
    adminEmails: parseList(env.ADMIN_EMAILS),
    adminPhones: parseList(env.ADMIN_PHONES),
    adminPanelUrl: env.ADMIN_PANEL_URL,
    smtp: smtpOf(env),
    sms: smsOf(env),
    webhookUrl: env.NOTIFY_WEBHOOK_URL,
    rateLimit: intOf(env.NOTIFY_RATE_LIMIT, 5),
    rateWindowMs: durationOf(env.NOTIFY_RATE_WINDOW, '5m'),
  };
}

function storageSection(env: Environment): AppConfig['storage'] {
  return {
    driver: (env.STORAGE_DRIVER ?? 'local') as StorageDriver,
    dataDir: resolve(env.DATA_DIR ?? './data'),
    s3: {
      bucket: env.S3_BUCKET,
      region: env.S3_REGION,
      endpoint: env.S3_ENDPOINT,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
      forcePathStyle: parseBoolean(env.S3_FORCE_PATH_STYLE, false),
    },
    uploadMaxSize: parseByteSize(env.UPLOAD_MAX_SIZE ?? '25MB') as number,
    uploadRateLimit: intOf(env.UPLOAD_RATE_LIMIT, 20),
    uploadRateWindowMs: durationOf(env.UPLOAD_RATE_WINDOW, '1m'),
    uploadQuotaBytes: parseByteSize(env.UPLOAD_QUOTA ?? '1GB') as number,
    uploadOrphanGraceMs: optionalDurationOf(env.UPLOAD_ORPHAN_TTL, '24h'),
    uploadCleanupIntervalMs: durationOf(env.UPLOAD_CLEANUP_INTERVAL, '1h'),
    fileUrlTtlMs: durationOf(env.FILE_URL_TTL, '1h'),
    shareLinkTtlMs: optionalDurationOf(env.SHARE_LINK_TTL),
  };
}

/**
 * Parses and validates the whole environment into `AppConfig`: every rule is checked first, then
 * each section is built from the (now valid) variables.
 * @throws ConfigValidationError naming every variable that breaks its rule.
 */
export function loadConfig(rawEnv: Environment, overrides: Partial<ProtocolLimits> = {}): AppConfig {
  const env = withoutBlanks(rawEnv);
  const nodeEnv = (env.NODE_ENV ?? 'development') as NodeEnv;
  const isProduction = nodeEnv === 'production';
  const origins = originsOf(env);
  const { problems: providerProblems, providers } = providerProblemsAndList(env);
  const effectiveProviders = providers.length > 0 ? providers : [DEMO_PROVIDER];
  const defaultModel = env.LLM_DEFAULT_MODEL ?? effectiveProviders[0].id;
  const canned = cannedRepliesOf(env.ADMIN_CANNED_REPLIES);

  const problems = [
    ...schemaProblems(env),
    ...placeholderProblems(env),
    ...keyProblems(env),
    ...providerProblems,
    ...canned.problems,
    ...originProblems('ALLOWED_ORIGINS', origins.allowedOrigins, false),
    ...originProblems('CORS_ALLOWED_ORIGINS', origins.corsAllowedOrigins, true),
    ...originProblems('WEB_CLIENT_API_ORIGINS', origins.webClientApiOrigins, false),
    ...(isProduction ? productionProblems(env, origins.allowedOrigins, origins.corsAllowedOrigins) : []),
    ...modelChoiceProblems(env, effectiveProviders, defaultModel),
    ...livenessProblems(env),
    ...storageDriverProblems(env),
  ];
  if (problems.length > 0) throw new ConfigValidationError(problems);

  return {
    env: nodeEnv,
    isProduction,
    port: intOf(env.PORT ?? env.SERVER_PORT, 8080),
    pathPrefix: (env.CHATBOX_PATH_PREFIX ?? '/chatbox').replace(/\/+$/, '') || '',
    logLevel: env.LOG_LEVEL ?? 'info',
    ...securitySections(env),
    ...databaseSections(env),
    ...origins,
    trustedProxies: parseList(env.TRUSTED_PROXIES ?? PRIVATE_NETWORKS),
    metricsAllowedNetworks: parseList(env.METRICS_ALLOWED_NETWORKS ?? `${PRIVATE_NETWORKS},::1/128`),
    limits: limitsSection(env),
    session: {
      reconnectTimeoutMs: durationOf(env.RECONNECT_TIMEOUT, '15m'),
      cleanupIntervalMs: durationOf(env.SESSION_CLEANUP_INTERVAL, '1m'),
    },
    llm: llmSection(env, effectiveProviders, defaultModel),
    notify: notifySection(env),
    admin: { cannedReplies: canned.replies },
    storage: storageSection(env),
    protocol: { ...DEFAULT_PROTOCOL_LIMITS, ...overrides },
  };
}
