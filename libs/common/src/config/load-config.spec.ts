import { getMetadataStorage } from 'class-validator';
import { EnvironmentVariables, MAX_PROVIDERS, PROVIDER_FIELDS } from './env.schema';
import { ConfigValidationError, loadConfig } from './load-config';
import { parseByteSize, parseDuration, parseList } from './parse';

const STRONG_SECRET = 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5jD9fG';
const KEY_32 = 'abcdefghijklmnopqrstuvwxyz012345';
const PRODUCTION = {
  NODE_ENV: 'production',
  JWT_SECRET: STRONG_SECRET,
  ENCRYPTION_KEY: KEY_32,
  ALLOWED_ORIGINS: 'https://app.example.org',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigValidationError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      env: 'development',
      port: 8080,
      pathPrefix: '/chatbox',
      mongo: {
        database: 'chat',
        collection: 'sessions',
        retryAttempts: 3,
        retryDelayMs: 100,
        connectTimeoutMs: 10_000,
      },
      limits: {
        maxMessageSize: 1_048_576,
        maxConnections: 10_000,
        maxConnectionsPerUser: 10,
        rateLimit: 100,
        adminRateLimit: 20,
        adminRateWindowMs: 60_000,
        adminReadRateLimit: 300,
        publicRateLimit: 60,
      },
      admin: { cannedReplies: [] },
      session: { reconnectTimeoutMs: 900_000, cleanupIntervalMs: 60_000 },
      llm: {
        streamTimeoutMs: 120_000,
        firstTokenTimeoutMs: 30_000,
        historyMessages: 20,
        maxReplyBytes: 256 * 1024,
        defaultModel: 'demo',
      },
      notify: { rateLimit: 5, rateWindowMs: 300_000 },
      storage: {
        driver: 'local',
        uploadMaxSize: 25 * 1024 * 1024,
        fileUrlTtlMs: 3_600_000,
        shareLinkTtlMs: 0,
      },
    });
    expect(config.jwt.generated).toBe(true);
    expect(config.jwt.secret).toHaveLength(64);
    expect(config.llm.providers).toEqual([{ index: 0, id: 'demo', name: 'Demo model', type: 'demo' }]);
    expect(config.mongo.uri).toBeUndefined();
  });

  it('reads the limits of issue 13 (pending bytes, uploads, web client API origins) with their defaults', () => {
    const defaults = loadConfig({});
    expect(defaults.limits.maxPendingBytes).toBe(2 * 1024 * 1024);
    expect(defaults.storage).toMatchObject({
      uploadRateLimit: 20,
      uploadRateWindowMs: 60_000,
      uploadQuotaBytes: 1024 ** 3,
      uploadOrphanGraceMs: 24 * 3_600_000,
      uploadCleanupIntervalMs: 3_600_000,
    });
    expect(defaults.webClientApiOrigins).toEqual([]);
    const set = loadConfig({
      MAX_PENDING_BYTES: '512KB',
      UPLOAD_RATE_LIMIT: '3',
      UPLOAD_RATE_WINDOW: '30s',
      UPLOAD_QUOTA: '0',
      UPLOAD_ORPHAN_TTL: '0',
      UPLOAD_CLEANUP_INTERVAL: '5m',
      WEB_CLIENT_API_ORIGINS: 'https://api.example.org, http://localhost:8081',
    });
    expect(set.limits.maxPendingBytes).toBe(512 * 1024);
    expect(set.storage).toMatchObject({
      uploadRateLimit: 3,
      uploadRateWindowMs: 30_000,
      uploadQuotaBytes: 0,
      uploadOrphanGraceMs: 0,
      uploadCleanupIntervalMs: 300_000,
    });
    expect(set.webClientApiOrigins).toEqual(['https://api.example.org', 'http://localhost:8081']);
    expect(
      problemsOf({
        MAX_PENDING_BYTES: 'lots',
        UPLOAD_RATE_LIMIT: '0',
        UPLOAD_ORPHAN_TTL: 'soon',
        WEB_CLIENT_API_ORIGINS: 'api.example.org',
      }),
    ).toEqual([
      expect.stringContaining('MAX_PENDING_BYTES'),
      expect.stringContaining('UPLOAD_RATE_LIMIT'),
      expect.stringContaining('UPLOAD_ORPHAN_TTL'),
      expect.stringContaining('WEB_CLIENT_API_ORIGINS entry "api.example.org"'),
    ]);
  });

  it('reads the instance liveness of issue 14 and refuses a TTL a late heartbeat would outlive', () => {
    expect(loadConfig({}).instances).toEqual({ heartbeatIntervalMs: 2_000, livenessTtlMs: 6_000 });
    expect(
      loadConfig({ INSTANCE_HEARTBEAT_INTERVAL: '500ms', INSTANCE_LIVENESS_TTL: '1500ms' }).instances,
    ).toEqual({ heartbeatIntervalMs: 500, livenessTtlMs: 1_500 });
    expect(problemsOf({ INSTANCE_HEARTBEAT_INTERVAL: '5s' })).toEqual([
      expect.stringContaining('INSTANCE_LIVENESS_TTL must be at least 3 × INSTANCE_HEARTBEAT_INTERVAL'),
    ]);
    // Two intervals would let one late heartbeat (a busy event loop) take a live instance for gone.
    expect(problemsOf({ INSTANCE_HEARTBEAT_INTERVAL: '2s', INSTANCE_LIVENESS_TTL: '4s' })).toEqual([
      expect.stringContaining('INSTANCE_LIVENESS_TTL must be at least 3 × INSTANCE_HEARTBEAT_INTERVAL'),
    ]);
    expect(problemsOf({ INSTANCE_LIVENESS_TTL: 'soon' })).toEqual([
      expect.stringContaining('INSTANCE_LIVENESS_TTL must be a duration'),
    ]);
  });

  it('accepts the aliases SERVER_PORT and WS_ALLOWED_ORIGINS', () => {
    const config = loadConfig({ SERVER_PORT: '9000', WS_ALLOWED_ORIGINS: 'https://a.example.org' });
    expect(config.port).toBe(9000);
    expect(config.allowedOrigins).toEqual(['https://a.example.org']);
  });

  it('reads ADMIN_CANNED_REPLIES as a JSON array of texts and names the variable when it is not one', () => {
    const config = loadConfig({ ADMIN_CANNED_REPLIES: '["Hello, how can I help?", " Thanks, bye. "]' });
    expect(config.admin.cannedReplies).toEqual(['Hello, how can I help?', 'Thanks, bye.']);
    for (const bad of ['Hello, world', '{"a":1}', '["ok", ""]', '[1]', JSON.stringify(['x'.repeat(10_001)])])
      expect(problemsOf({ ADMIN_CANNED_REPLIES: bad }).join('\n')).toContain(
        'ADMIN_CANNED_REPLIES must be a JSON array',
      );
    expect(problemsOf({ ADMIN_CANNED_REPLIES: JSON.stringify(Array(51).fill('x')) })).toHaveLength(1);
    expect(problemsOf({ ADMIN_READ_RATE_LIMIT: '0' }).join('\n')).toContain('ADMIN_READ_RATE_LIMIT');
  });

  it('trims comma lists and drops empties', () => {
    const config = loadConfig({ ADMIN_EMAILS: ' a@x.org, ,b@x.org,', ADMIN_PHONES: '+15550001' });
    expect(config.notify.adminEmails).toEqual(['a@x.org', 'b@x.org']);
    expect(config.notify.adminPhones).toEqual(['+15550001']);
  });

  it('accepts a replica-set MONGO_URI with several hosts', () => {
    const uri = 'mongodb://app:pw@mongo-0.db:27017,mongo-1.db:27017,mongo-2.db:27017/chat?replicaSet=rs0';
    expect(loadConfig({ MONGO_URI: uri }).mongo.uri).toBe(uri);
  });

  it('accepts a valid production environment', () => {
    expect(() => loadConfig(PRODUCTION)).not.toThrow();
  });

  it.each([
    [{ CHATBOX_PATH_PREFIX: 'chatbox' }, 'CHATBOX_PATH_PREFIX must start with "/"'],
    [{ RECONNECT_TIMEOUT: '15 minutes' }, 'RECONNECT_TIMEOUT must be a duration'],
    [{ LLM_STREAM_TIMEOUT: '10d' }, 'LLM_STREAM_TIMEOUT must be a duration'],
    [{ MONGO_RETRY_DELAY: '-5ms' }, 'MONGO_RETRY_DELAY must be a duration'],
    [{ MONGO_CONNECT_TIMEOUT: 'soon' }, 'MONGO_CONNECT_TIMEOUT must be a duration'],
    [{ PORT: 'eighty' }, 'PORT must be a whole number'],
    [{ PORT: '70000' }, 'PORT must be a whole number from 1 to 65535'],
    [{ MAX_CONNECTIONS_PER_USER: '0' }, 'MAX_CONNECTIONS_PER_USER must be a whole number from 1'],
    [{ ENCRYPTION_KEY: 'too-short' }, 'ENCRYPTION_KEY must be exactly 32 bytes'],
    [{ ENCRYPTION_KEY: 'é'.repeat(32) }, 'ENCRYPTION_KEY must be exactly 32 bytes (UTF-8), got 64'],
    [{ ENCRYPTION_KEYS_OLD: `${KEY_32},short` }, 'ENCRYPTION_KEYS_OLD entry 2 must be exactly 32 bytes'],
    [{ JWT_SECRET: 'REPLACE_WITH_A_REAL_SECRET_OF_32_CHARS' }, 'JWT_SECRET holds a placeholder value'],
    [{ ALLOWED_ORIGINS: 'https://YOUR-DOMAIN.example' }, 'ALLOWED_ORIGINS holds a placeholder value'],
    [{ SMTP_PASS: 'change_me' }, 'SMTP_PASS holds a placeholder value'],
    [
      { ALLOWED_ORIGINS: 'app.example.org' },
      'ALLOWED_ORIGINS entry "app.example.org" must be an exact origin',
    ],
    [{ ALLOWED_ORIGINS: '*' }, 'ALLOWED_ORIGINS entry "*" must be an exact origin'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV must be one of the following values'],
    [{ STORAGE_DRIVER: 'ftp' }, 'STORAGE_DRIVER must be one of the following values'],
    [{ STORAGE_DRIVER: 's3' }, 'S3_BUCKET is required when STORAGE_DRIVER=s3'],
    [{ UPLOAD_MAX_SIZE: 'lots' }, 'UPLOAD_MAX_SIZE must be a size'],
    [{ TRUSTED_PROXIES: '10.0.0.0/33' }, 'TRUSTED_PROXIES must be a comma list of IP networks'],
    [{ MONGO_URI: 'postgres://x' }, 'MONGO_URI must be a URL (mongodb, mongodb+srv)'],
    [{ LLM_DEFAULT_MODEL: 'nope' }, 'LLM_DEFAULT_MODEL "nope" is not the ID of a configured provider'],
    [
      { LLM_PROVIDER_1_ID: 'x', LLM_PROVIDER_1_TYPE: 'cohere' },
      'LLM_PROVIDER_1_TYPE must be one of openai, anthropic, dify, demo',
    ],
    [
      {
        LLM_PROVIDER_2_ID: 'gpt',
        LLM_PROVIDER_2_TYPE: 'openai',
        LLM_PROVIDER_2_MODEL: 'm',
        LLM_PROVIDER_2_ENDPOINT: 'http://api.openai.com/v1',
      },
      'LLM_PROVIDER_2_ENDPOINT must use https unless the host is loopback',
    ],
    [{ LLM_PROVIDER_1_TYPE: 'demo' }, 'LLM_PROVIDER_1_ID is required'],
    [
      { STT_PROVIDER_ID: 'demo' },
      'STT_PROVIDER_ID "demo" must be the ID of a configured openai-type provider',
    ],
  ])('refuses %j with a message naming the variable and rule', (env, expected) => {
    const problems = problemsOf(env as Record<string, string>);
    expect(problems.join('\n')).toContain(expected);
  });

  it.each([
    [{ ...PRODUCTION, JWT_SECRET: undefined }, 'JWT_SECRET is required in production'],
    [
      { ...PRODUCTION, JWT_SECRET: 'Zq8vN3rT6yW1mK4p' },
      'JWT_SECRET must be at least 32 characters in production',
    ],
    [
      { ...PRODUCTION, JWT_SECRET: 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5jSecret' },
      'JWT_SECRET must not contain weak words in production (found: secret)',
    ],
    [{ ...PRODUCTION, JWT_SECRET: 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5j12345x' }, 'found: 12345'],
    [{ ...PRODUCTION, JWT_SECRET: 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5jDEMOxx' }, 'found: demo'],
    [{ ...PRODUCTION, ENCRYPTION_KEY: undefined }, 'ENCRYPTION_KEY is required in production'],
    [
      { ...PRODUCTION, ALLOWED_ORIGINS: undefined },
      'ALLOWED_ORIGINS must list the WebSocket origins in production',
    ],
    [{ ...PRODUCTION, CORS_ALLOWED_ORIGINS: '*' }, 'CORS_ALLOWED_ORIGINS must not be "*" in production'],
  ])('enforces production rule: %j', (env, expected) => {
    const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    expect(problemsOf(defined).join('\n')).toContain(expected);
  });

  it('does not apply production rules in development', () => {
    expect(problemsOf({ JWT_SECRET: 'short' })).toEqual([]);
  });

  it('never echoes a secret value in an error', () => {
    const problems = problemsOf({ MONGO_URI: 'postgres://user:hunter2@db' });
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reports every problem at once', () => {
    expect(problemsOf({ CHATBOX_PATH_PREFIX: 'x', PORT: 'y', RECONNECT_TIMEOUT: 'z' })).toHaveLength(3);
  });

  describe('placeholder values in secrets', () => {
    const OPENAI_PROVIDER = {
      LLM_PROVIDER_1_ID: 'gpt',
      LLM_PROVIDER_1_TYPE: 'openai',
      LLM_PROVIDER_1_ENDPOINT: 'https://api.openai.com/v1',
      LLM_PROVIDER_1_MODEL: 'gpt-4o-mini',
    };

    it('refuses the provider key of the Kubernetes secret template, without echoing it', () => {
      const problems = problemsOf({
        ...OPENAI_PROVIDER,
        LLM_PROVIDER_1_API_KEY: 'REPLACE_WITH_PROVIDER_API_KEY',
      });
      expect(problems).toEqual(['LLM_PROVIDER_1_API_KEY holds a placeholder value; set a real one']);
    });

    it('checks the API key of every provider slot', () => {
      const problems = problemsOf({
        ...OPENAI_PROVIDER,
        [`LLM_PROVIDER_${MAX_PROVIDERS}_ID`]: 'claude',
        [`LLM_PROVIDER_${MAX_PROVIDERS}_TYPE`]: 'anthropic',
        [`LLM_PROVIDER_${MAX_PROVIDERS}_ENDPOINT`]: 'https://api.anthropic.com/v1',
        [`LLM_PROVIDER_${MAX_PROVIDERS}_MODEL`]: 'claude-x',
        [`LLM_PROVIDER_${MAX_PROVIDERS}_API_KEY`]: 'your-anthropic-key',
      });
      expect(problems).toEqual([
        `LLM_PROVIDER_${MAX_PROVIDERS}_API_KEY holds a placeholder value; set a real one`,
      ]);
    });

    it.each([
      ['SMTP_PASS', 'REPLACE_WITH_SMTP_PASSWORD'],
      ['SMS_AUTH_TOKEN', 'CHANGE_ME'],
      ['S3_SECRET_ACCESS_KEY', 'REPLACE_WITH_SECRET_ACCESS_KEY'],
      ['S3_ACCESS_KEY_ID', 'REPLACE_WITH_ACCESS_KEY_ID'],
      ['SMS_ACCOUNT_SID', 'placeholder'],
      ['SMTP_USER', 'YOUR-SMTP-USER'],
      ['REDIS_URL', 'redis://:REPLACE_WITH_PASSWORD@redis:6379'],
      ['MONGO_URI', 'mongodb://chatbox:REPLACE_WITH_PASSWORD@mongo:27017/'],
      ['NOTIFY_WEBHOOK_URL', 'https://hooks.slack.com/services/REPLACE_WITH_WEBHOOK'],
    ])('refuses a placeholder in %s', (name, value) => {
      expect(problemsOf({ [name]: value })).toContain(`${name} holds a placeholder value; set a real one`);
    });

    it('covers every secret-like variable the config reads', () => {
      const names = getMetadataStorage()
        .getTargetValidationMetadatas(EnvironmentVariables, '', true, false)
        .map((metadata) => metadata.propertyName);
      for (let n = 1; n <= MAX_PROVIDERS; n++)
        for (const field of PROVIDER_FIELDS) names.push(`LLM_PROVIDER_${n}_${field}`);
      const secretLike = [...new Set(names)].filter((name) =>
        /SECRET|PASS|TOKEN|API_KEY|ENCRYPTION_KEY|_URI$|WEBHOOK/.test(name),
      );
      expect(secretLike.length).toBeGreaterThan(MAX_PROVIDERS);
      const unchecked = secretLike.filter(
        (name) => !problemsOf({ [name]: 'REPLACE_WITH_SOMETHING_REAL' }).some((p) => p.startsWith(name)),
      );
      expect(unchecked).toEqual([]);
    });

    it('never echoes a placeholder secret back', () => {
      const problems = problemsOf({ NOTIFY_WEBHOOK_URL: 'not a url REPLACE_WITH_hunter2' });
      expect(problems.join('\n')).not.toContain('hunter2');
    });
  });

  it('parses providers in order and allows http on private hosts', () => {
    const config = loadConfig({
      LLM_PROVIDER_1_ID: 'local',
      LLM_PROVIDER_1_TYPE: 'openai',
      LLM_PROVIDER_1_ENDPOINT: 'http://ollama.internal:11434/v1/',
      LLM_PROVIDER_1_MODEL: 'llama3',
      LLM_PROVIDER_3_ID: 'claude',
      LLM_PROVIDER_3_NAME: 'Claude',
      LLM_PROVIDER_3_TYPE: 'anthropic',
      LLM_PROVIDER_3_ENDPOINT: 'https://api.anthropic.com/v1',
      LLM_PROVIDER_3_MODEL: 'claude-x',
      LLM_PROVIDER_3_API_KEY: 'k',
    });
    expect(config.llm.providers.map((p) => [p.id, p.name, p.type, p.endpoint])).toEqual([
      ['local', 'local', 'openai', 'http://ollama.internal:11434/v1'],
      ['claude', 'Claude', 'anthropic', 'https://api.anthropic.com/v1'],
    ]);
    expect(config.llm.defaultModel).toBe('local');
  });
});

describe('value parsers', () => {
  it.each([
    ['150ms', 150],
    ['30s', 30_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['0s', 0],
  ])('parseDuration(%s) = %d', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '1', '1.5s', '1d', 's', '-1s', '1 s'])('parseDuration rejects %j', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );

  it('parses byte sizes', () => {
    expect(parseByteSize('25MB')).toBe(26_214_400);
    expect(parseByteSize('1048576')).toBe(1_048_576);
    expect(parseByteSize('512kb')).toBe(524_288);
    expect(parseByteSize('1.5MB')).toBeUndefined();
  });

  it('parses lists', () => expect(parseList(' a, b ,,c ')).toEqual(['a', 'b', 'c']));
});
