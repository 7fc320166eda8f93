import type { IncomingMessage } from 'node:http';
import { loadConfig, redactUrl } from '@chatbox/common';
import { correlationIdOf, loggerOptions } from './logging';

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

  it('logs JSON in production (no pretty transport) and redacts credentials', () => {
    const production = loggerOptions(
      loadConfig({
        NODE_ENV: 'production',
        JWT_SECRET: 'Zq8vN3rT6yW1mK4pL7sX0cB2nH5jD9fG',
        ENCRYPTION_KEY: 'abcdefghijklmnopqrstuvwxyz012345',
        ALLOWED_ORIGINS: 'https://app.example.org',
      }),
    );
    const http = production.pinoHttp as { transport?: unknown; redact?: { paths: string[] } };
    expect(http.transport).toBeUndefined();
    expect(http.redact?.paths).toEqual(expect.arrayContaining(['req.headers.authorization']));
    const development = loggerOptions(loadConfig({})).pinoHttp as { transport?: { target: string } };
    expect(development.transport?.target).toBe('pino-pretty');
  });
});
