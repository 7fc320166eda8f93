import { IsIn, IsOptional, Matches, ValidateBy, ValidationOptions, buildMessage } from 'class-validator';
import { isCidr } from './network';
import { parseByteSize, parseDuration, parseList } from './parse';

function rule(
  name: string,
  test: (value: string) => boolean,
  describe: string,
  options?: ValidationOptions,
): PropertyDecorator {
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && test(value),
        defaultMessage: buildMessage((prefix) => `${prefix}$property ${describe}`, options),
      },
    },
    options,
  );
}

const IsDuration = () =>
  rule('isDuration', (v) => parseDuration(v) !== undefined, 'must be a duration like 150ms, 30s, 15m or 2h');
const IsDurationOrNever = () =>
  rule(
    'isDurationOrNever',
    (v) => v.trim() === '0' || parseDuration(v) !== undefined,
    'must be 0 (never) or a duration like 30s, 15m or 2h',
  );
const IsByteSize = () =>
  rule('isByteSize', (v) => parseByteSize(v) !== undefined, 'must be a size like 1048576, 512KB or 25MB');
const IsWholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  rule(
    'isWholeNumber',
    (v) => /^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= max,
    `must be a whole number from ${min} to ${max}`,
  );
const IsBooleanText = () =>
  rule('isBooleanText', (v) => /^(true|false|1|0|yes|no|on|off)$/i.test(v.trim()), 'must be true or false');
const IsCidrList = () =>
  rule(
    'isCidrList',
    (v) => parseList(v).every(isCidr),
    'must be a comma list of IP networks like 10.0.0.0/8',
  );
const IsUrl = (protocols: string[]) =>
  rule(
    'isUrl',
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol.replace(':', ''));
      } catch {
        return false;
      }
    },
    `must be a URL (${protocols.join(', ')})`,
  );

/** Raw environment, one property per variable of SPEC section 2. All optional: defaults live in loadConfig. */
export class EnvironmentVariables {
  @IsOptional() @IsWholeNumber(1, 65535) PORT?: string;
  @IsOptional() @IsWholeNumber(1, 65535) SERVER_PORT?: string;
  @IsOptional()
  @Matches(/^\/[A-Za-z0-9._~\-/]*$/, {
    message: 'CHATBOX_PATH_PREFIX must start with "/" and hold only URL path characters',
  })
  CHATBOX_PATH_PREFIX?: string;
  @IsOptional() @IsIn(['development', 'production', 'test']) NODE_ENV?: string;
  @IsOptional() JWT_SECRET?: string;
  @IsOptional() ENCRYPTION_KEY?: string;
  @IsOptional() ENCRYPTION_KEYS_OLD?: string;
  // Not parsed with URL: replica-set URIs list several hosts (`mongodb://h1:27017,h2:27017/db`).
  @IsOptional()
  @Matches(/^mongodb(\+srv)?:\/\/[^\s/]+(\/[^\s]*)?$/, {
    message: 'MONGO_URI must be a URL (mongodb, mongodb+srv)',
  })
  MONGO_URI?: string;
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,63}$/, { message: 'MONGO_DATABASE must be 1-63 letters, digits, _ or -' })
  MONGO_DATABASE?: string;
  @IsOptional()
  @Matches(/^[A-Za-z0-9_.-]{1,120}$/, {
    message: 'MONGO_COLLECTION must be 1-120 letters, digits, _, . or -',
  })
  MONGO_COLLECTION?: string;
  @IsOptional() @IsWholeNumber(0, 20) MONGO_RETRY_ATTEMPTS?: string;
  @IsOptional() @IsDuration() MONGO_RETRY_DELAY?: string;
  /** [ext] How long start-up waits for MONGO_URI to answer before it stops with one line. */
  @IsOptional() @IsDuration() MONGO_CONNECT_TIMEOUT?: string;
  @IsOptional() @IsUrl(['redis', 'rediss']) REDIS_URL?: string;
  @IsOptional()
  @Matches(/^[A-Za-z0-9_.:-]{1,60}$/, {
    message: 'REDIS_KEY_PREFIX must be 1-60 letters, digits, _, ., : or -',
  })
  REDIS_KEY_PREFIX?: string;
  /** [ext] How often an instance tells the others it is alive (multi-instance mode). */
  @IsOptional() @IsDuration() INSTANCE_HEARTBEAT_INTERVAL?: string;
  /** [ext] An instance silent this long counts as gone (checked against the interval in loadConfig). */
  @IsOptional() @IsDuration() INSTANCE_LIVENESS_TTL?: string;
  @IsOptional() ALLOWED_ORIGINS?: string;
  @IsOptional() WS_ALLOWED_ORIGINS?: string;
  @IsOptional() CORS_ALLOWED_ORIGINS?: string;
  /** [ext] Origins the served web client may use as its `api` parameter. */
  @IsOptional() WEB_CLIENT_API_ORIGINS?: string;
  @IsOptional() @IsCidrList() TRUSTED_PROXIES?: string;
  @IsOptional() @IsCidrList() METRICS_ALLOWED_NETWORKS?: string;
  @IsOptional() @IsWholeNumber(1024) MAX_MESSAGE_SIZE?: string;
  @IsOptional() @IsByteSize() MAX_PENDING_BYTES?: string;
  @IsOptional() @IsWholeNumber(1) MAX_CONNECTIONS?: string;
  @IsOptional() @IsWholeNumber(1) MAX_CONNECTIONS_PER_USER?: string;
  @IsOptional() @IsWholeNumber(1) RATE_LIMIT?: string;
  @IsOptional() @IsWholeNumber(1) ADMIN_RATE_LIMIT?: string;
  @IsOptional() @IsDuration() ADMIN_RATE_WINDOW?: string;
  /** [ext] Budget for admin reads (GET), separate from ADMIN_RATE_LIMIT, which counts actions. */
  @IsOptional() @IsWholeNumber(1) ADMIN_READ_RATE_LIMIT?: string;
  /** [ext] JSON array of reply texts offered to admins in a takeover (checked in loadConfig). */
  @IsOptional() ADMIN_CANNED_REPLIES?: string;
  @IsOptional() @IsWholeNumber(1) PUBLIC_RATE_LIMIT?: string;
  @IsOptional() @IsDuration() RECONNECT_TIMEOUT?: string;
  @IsOptional() @IsDuration() SESSION_CLEANUP_INTERVAL?: string;
  @IsOptional() @IsDuration() LLM_STREAM_TIMEOUT?: string;
  @IsOptional() @IsDuration() LLM_FIRST_TOKEN_TIMEOUT?: string;
  @IsOptional() @IsWholeNumber(0, 1000) LLM_HISTORY_MESSAGES?: string;
  @IsOptional() @IsByteSize() LLM_MAX_REPLY_SIZE?: string;
  @IsOptional() LLM_SYSTEM_PROMPT?: string;
  @IsOptional() LLM_DEFAULT_MODEL?: string;
  @IsOptional() @IsBooleanText() AI_DURING_TAKEOVER?: string;
  @IsOptional() STT_PROVIDER_ID?: string;
  @IsOptional() TTS_PROVIDER_ID?: string;
  @IsOptional() TTS_VOICE?: string;
  @IsOptional() ADMIN_EMAILS?: string;
  @IsOptional() ADMIN_PHONES?: string;
  @IsOptional() @IsUrl(['http', 'https']) ADMIN_PANEL_URL?: string;
  @IsOptional() SMTP_HOST?: string;
  @IsOptional() @IsWholeNumber(1, 65535) SMTP_PORT?: string;
  @IsOptional() SMTP_USER?: string;
  @IsOptional() SMTP_PASS?: string;
  @IsOptional() @IsBooleanText() SMTP_SECURE?: string;
  @IsOptional() EMAIL_FROM?: string;
  @IsOptional() @IsIn(['twilio']) SMS_PROVIDER?: string;
  @IsOptional() SMS_ACCOUNT_SID?: string;
  @IsOptional() SMS_AUTH_TOKEN?: string;
  @IsOptional() SMS_FROM_NUMBER?: string;
  @IsOptional() @IsUrl(['http', 'https']) SMS_API_BASE?: string;
  @IsOptional() @IsUrl(['http', 'https']) NOTIFY_WEBHOOK_URL?: string;
  @IsOptional() @IsWholeNumber(1) NOTIFY_RATE_LIMIT?: string;
  @IsOptional() @IsDuration() NOTIFY_RATE_WINDOW?: string;
  @IsOptional() @IsIn(['local', 's3']) STORAGE_DRIVER?: string;
  @IsOptional() DATA_DIR?: string;
  @IsOptional() S3_BUCKET?: string;
  @IsOptional() S3_REGION?: string;
  @IsOptional() @IsUrl(['http', 'https']) S3_ENDPOINT?: string;
  @IsOptional() S3_ACCESS_KEY_ID?: string;
  @IsOptional() S3_SECRET_ACCESS_KEY?: string;
  @IsOptional() @IsBooleanText() S3_FORCE_PATH_STYLE?: string;
  @IsOptional() @IsByteSize() UPLOAD_MAX_SIZE?: string;
  @IsOptional() @IsWholeNumber(1) UPLOAD_RATE_LIMIT?: string;
  @IsOptional() @IsDuration() UPLOAD_RATE_WINDOW?: string;
  @IsOptional() @IsByteSize() UPLOAD_QUOTA?: string;
  @IsOptional() @IsDurationOrNever() UPLOAD_ORPHAN_TTL?: string;
  @IsOptional() @IsDuration() UPLOAD_CLEANUP_INTERVAL?: string;
  @IsOptional() @IsDuration() FILE_URL_TTL?: string;
  @IsOptional() @IsDurationOrNever() SHARE_LINK_TTL?: string;
  @IsOptional() @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) LOG_LEVEL?: string;
  /** [ext] Where the embedded FerretDB binary lives (default `.tools/bin/ferretdb`). */
  @IsOptional() FERRETDB_BIN?: string;
  /** [ext] FerretDB's storage for the embedded database (docs/decisions/0008). */
  @IsOptional() @IsIn(['postgresql', 'sqlite']) EMBEDDED_DB_BACKEND?: string;
}

/** Variables read by `loadConfig` beyond the schema: the provider families. */
export const PROVIDER_FIELDS = [
  'ID',
  'NAME',
  'TYPE',
  'ENDPOINT',
  'API_KEY',
  'MODEL',
  'SYSTEM_PROMPT',
] as const;
export const MAX_PROVIDERS = 20;
