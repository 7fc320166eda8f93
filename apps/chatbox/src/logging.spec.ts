import type { IncomingMessage } from 'node:http';
import { loadConfig, redactUrl } from '@chatbox/common';
import { ChatboxLogger, contextLogger, correlationIdOf, logDestination, loggerOptions } from './logging';

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe('logging', () => {
  it('keeps a harmless client correlation id and replaces a hostile one', () => {
    expect(correlationIdOf(request({ 'x-request-id': 'abc-123' }))).toBe('abc-123');
    const replaced = correlationIdOf(request({ 'x-request-id': 'evil\nline' }));
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
    expect(correlationIdOf(request({}))).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('never logs share tokens (path or query) or file link signatures', () => {
    expect(redactUrl('/chatbox/shared/AbC-123_x?x=1')).toBe('/chatbox/shared/[redacted]?x=1');
    expect(redactUrl('/chatbox/chat?share_token=AbC-123')).toBe('/chatbox/chat?share_token=[redacted]');
    expect(redactUrl('/chatbox/files/f?expires=1&share_token=S&signature=sig-x')).toBe(
      '/chatbox/files/f?expires=1&share_token=[redacted]&signature=[redacted]',
    );
    expect(redactUrl('/chatbox/files/f?SIGNATURE=abc#frag')).toBe(
      '/chatbox/files/f?SIGNATURE=[redacted]#frag',
    );
  });

  it('never logs a token from the query string', () => {
    expect(redactUrl('/chatbox/ws?token=eyJhbGciOi.x.y&session_id=1')).toBe(
      '/chatbox/ws?token=[redacted]&session_id=1',
    );
    expect(redactUrl('/chatbox/chat?session_id=1&token=abc')).toBe(
      '/chatbox/chat?session_id=1&token=[redacted]',
    );
  });

  it('writes JSON in production and readable lines in development, both synchronously to stdout', () => {
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const line = JSON.stringify({ level: 30, time: Date.now(), context: 'main', msg: 'hello' });
      logDestination(loadConfig({})).write(`${line}\n`);
      expect(written.join('')).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[main\] hello\n$/);
    } finally {
      spy.mockRestore();
    }
    const production = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5jD9fG',
      ENCRYPTION_KEY: 'abcdefghijklmnopqrstuvwxyz012345',
      ALLOWED_ORIGINS: 'https://app.example.org',
    });
    const [options, destination] = loggerOptions(production).pinoHttp as [
      { redact: { paths: string[] }; transport?: unknown },
      { fd?: number },
    ];
    expect(options.transport).toBeUndefined();
    expect(options.redact.paths).toEqual(expect.arrayContaining(['req.headers.authorization']));
    expect(destination.fd).toBe(1);
  });

  it("puts Nest's start-up chatter at debug and keeps everything else", () => {
    const lines: string[] = [];
    const params = loggerOptions(loadConfig({ LOG_LEVEL: 'info', NODE_ENV: 'test' }), {
      write: (line: string) => void lines.push(line),
    });
    const nest = new ChatboxLogger(params);
    nest.log('Mapped {/chatbox/healthz, GET} route', 'RouterExplorer');
    nest.log('AppModule dependencies initialized', 'InstanceLoader');
    nest.log('Nest application successfully started', 'NestApplication');
    nest.warn('a framework warning', 'RouterExplorer');
    nest.log('Notification channels: dashboard', 'NotificationService');
    contextLogger(params, 'main').info('from main');

    const logged = lines.map((line) => JSON.parse(line) as { msg: string; context: string; level: number });
    expect(logged.map(({ context, msg }) => `${context}: ${msg}`)).toEqual([
      'RouterExplorer: a framework warning',
      'NotificationService: Notification channels: dashboard',
      'main: from main',
    ]);
  });
});
