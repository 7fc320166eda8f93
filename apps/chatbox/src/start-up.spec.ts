import { createServer, Server } from 'node:net';
import { loadConfig } from '@chatbox/common';
import { StartupError, assertPortFree, listenProblem, startBanner } from './start-up';

describe('start-up', () => {
  describe('banner', () => {
    it('names the chat and admin URLs with their tokens, the database, the models and how to stop', () => {
      const banner = startBanner({
        config: loadConfig({ PORT: '9123' }),
        database: 'embedded FerretDB on mongodb://127.0.0.1:4000/, data in /srv/data/db',
        userToken: 'user.jwt',
        adminToken: 'admin.jwt',
      });
      expect(banner).toContain('http://localhost:9123/chatbox/?token=user.jwt');
      expect(banner).toContain('http://localhost:9123/chatbox/admin-page?token=admin.jwt');
      expect(banner).toContain(
        'Database: embedded FerretDB on mongodb://127.0.0.1:4000/, data in /srv/data/db',
      );
      expect(banner).toContain('Demo model');
      expect(banner).toContain(`Ctrl+C (or kill ${process.pid})`);
      expect(banner).toContain('random JWT_SECRET');
      expect(banner.split('\n').filter((line) => /^ {2}-{20,}$/.test(line))).toHaveLength(2);
    });

    it('lists configured models and says nothing about a random secret when one is set', () => {
      const banner = startBanner({
        config: loadConfig({
          JWT_SECRET: 'x'.repeat(40),
          LLM_PROVIDER_1_ID: 'gpt',
          LLM_PROVIDER_1_NAME: 'GPT',
          LLM_PROVIDER_1_TYPE: 'openai',
          LLM_PROVIDER_1_ENDPOINT: 'https://api.openai.com/v1',
          LLM_PROVIDER_1_MODEL: 'gpt-4o-mini',
        }),
        database: 'MongoDB at mongodb://db:27017/ (database chat)',
      });
      expect(banner).toContain('Models:   GPT (openai)');
      expect(banner).toContain('Chat:     http://localhost:8080/chatbox/\n');
      expect(banner).not.toContain('JWT_SECRET');
    });
  });

  describe('port', () => {
    let taken: Server;
    beforeAll(async () => {
      taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, resolve));
    });
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    it('refuses a port another program listens on, in one line', async () => {
      const port = (taken.address() as { port: number }).port;
      const refusal = assertPortFree(port);
      await expect(refusal).rejects.toBeInstanceOf(StartupError);
      await expect(refusal).rejects.toThrow(`port ${port} is already in use`);
    });

    it('accepts a free port and leaves it free', async () => {
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, resolve));
      const port = (probe.address() as { port: number }).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      await expect(assertPortFree(port)).resolves.toBeUndefined();
      await expect(assertPortFree(port)).resolves.toBeUndefined();
    });

    it('maps listen errors to one line and leaves other errors alone', () => {
      const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
      expect(listenProblem(inUse, 80)).toBeInstanceOf(StartupError);
      const denied = Object.assign(new Error('listen EACCES'), { code: 'EACCES' });
      expect((listenProblem(denied, 80) as Error).message).toContain('above 1023');
      const other = new Error('boom');
      expect(listenProblem(other, 80)).toBe(other);
    });
  });
});
