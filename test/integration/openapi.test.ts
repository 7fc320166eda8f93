/**
 * The OpenAPI document (SPEC 5): generated from the controllers, served at {prefix}/docs and
 * {prefix}/docs-json outside production without a token, and committed as docs/openapi.json.
 * `make openapi` runs this file with OPENAPI_WRITE=1 to rewrite docs/openapi.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { OpenAPIObject } from '@nestjs/swagger';
import { OPENAPI_FILE, generateOpenApi, writeOpenApi } from '../../scripts/generate-openapi';
import { startTestApp, TestApp } from '../support/app';

type Operation = {
  tags?: string[];
  summary?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>;
};

/** Every REST route of SPEC 5, with whether it takes the Bearer token. */
const ROUTES: { method: string; path: string; bearer: boolean; ok: string }[] = [
  { method: 'get', path: '/sessions', bearer: true, ok: '200' },
  { method: 'get', path: '/sessions/{id}', bearer: true, ok: '200' },
  { method: 'post', path: '/sessions/{id}/end', bearer: true, ok: '200' },
  { method: 'post', path: '/sessions/{id}/share', bearer: true, ok: '200' },
  { method: 'delete', path: '/sessions/{id}/share', bearer: true, ok: '204' },
  { method: 'patch', path: '/sessions/{id}', bearer: true, ok: '204' },
  { method: 'delete', path: '/sessions/{id}', bearer: true, ok: '204' },
  { method: 'get', path: '/shared/{token}', bearer: false, ok: '200' },
  { method: 'get', path: '/models', bearer: true, ok: '200' },
  { method: 'post', path: '/upload', bearer: true, ok: '200' },
  { method: 'get', path: '/files/{id}', bearer: true, ok: '200' },
  { method: 'get', path: '/admin/sessions', bearer: true, ok: '200' },
  { method: 'get', path: '/admin/users/{userId}/sessions', bearer: true, ok: '200' },
  { method: 'get', path: '/admin/sessions/{id}', bearer: true, ok: '200' },
  { method: 'get', path: '/admin/metrics', bearer: true, ok: '200' },
  { method: 'get', path: '/admin/metrics/timeseries', bearer: true, ok: '200' },
  { method: 'post', path: '/admin/takeover/{id}', bearer: true, ok: '200' },
  { method: 'delete', path: '/admin/takeover/{id}', bearer: true, ok: '204' },
  { method: 'post', path: '/admin/sessions/{id}/resolve', bearer: true, ok: '204' },
  { method: 'get', path: '/admin/canned-replies', bearer: true, ok: '200' },
  { method: 'get', path: '/healthz', bearer: false, ok: '200' },
  { method: 'get', path: '/readyz', bearer: false, ok: '200' },
  { method: 'get', path: '/metrics/prometheus', bearer: false, ok: '200' },
];

const ERROR_REF = '#/components/schemas/ErrorBodyDto';

describe('OpenAPI document', () => {
  let server: TestApp;
  let document: OpenAPIObject;
  let prefix: string;

  beforeAll(async () => {
    server = await startTestApp();
    prefix = server.config.pathPrefix;
    document = process.env.OPENAPI_WRITE === '1' ? writeOpenApi(server.app) : generateOpenApi(server.app);
  });
  afterAll(() => server.close());

  const operation = (method: string, path: string): Operation =>
    (document.paths[`${prefix}${path}`] as Record<string, Operation> | undefined)?.[method] as Operation;

  it('docs/openapi.json is the document the code generates (run `make openapi` after API changes)', () => {
    expect(existsSync(OPENAPI_FILE)).toBe(true);
    expect(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'))).toEqual(document);
  });

  it('documents exactly the REST routes of SPEC 5 (plus the /api/upload alias), nothing of the web client', () => {
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method} ${path}`),
    );
    const expected = [...ROUTES.map(({ method, path }) => `${method} ${prefix}${path}`), 'post /api/upload'];
    expect(documented.sort()).toEqual(expected.sort());
  });

  it.each(ROUTES)(
    '$method $path has a tag, a summary, its success response and the right security',
    (route) => {
      const op = operation(route.method, route.path);
      expect(op).toBeDefined();
      expect(op.tags?.length).toBeGreaterThan(0);
      expect(op.summary).toBeTruthy();
      expect(op.responses[route.ok]).toBeDefined();
      const bearer = (op.security ?? []).some((requirement) => 'bearer' in requirement);
      expect(bearer).toBe(route.bearer);
      // Every non-public route documents its 401 with the error body.
      if (route.bearer && route.path !== '/files/{id}')
        expect(op.responses['401']?.content?.['application/json']?.schema).toEqual({ $ref: ERROR_REF });
    },
  );

  it('describes the SPEC 5 bodies: error body, sessions list, admin bare array with X-Total-Count', () => {
    const schemas = document.components?.schemas as Record<string, { properties: Record<string, unknown> }>;
    expect(Object.keys(schemas.ErrorBodyDto.properties).sort()).toEqual([
      'code',
      'error',
      'message',
      'retry_after_ms',
    ]);
    expect(Object.keys(schemas.SessionListDto.properties).sort()).toEqual([
      'count',
      'limit',
      'sessions',
      'truncated',
      'user_id',
    ]);
    const adminList = operation('get', '/admin/sessions').responses['200'] as {
      headers?: Record<string, unknown>;
      content: Record<string, { schema: { type: string; items: unknown } }>;
    };
    expect(adminList.content['application/json'].schema).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/SessionRowDto' },
    });
    expect(adminList.headers?.['X-Total-Count']).toBeDefined();
    expect(Object.keys(operation('get', '/metrics/prometheus').responses['200'].content ?? {})).toContain(
      'text/plain; version=0.0.4; charset=utf-8',
    );
  });

  it('serves {prefix}/docs-json and {prefix}/docs without a token (outside the Nest guards)', async () => {
    const variants: Record<string, string>[] = [{}, { Authorization: 'Bearer not-a-jwt' }];
    for (const headers of variants) {
      const json = await fetch(`${server.baseUrl}/docs-json`, { headers });
      expect(json.status).toBe(200);
      expect(json.headers.get('content-type')).toMatch(/application\/json/);
      expect(await json.json()).toEqual(document);
      const ui = await fetch(`${server.baseUrl}/docs`, { headers });
      expect(ui.status).toBe(200);
      expect(ui.headers.get('content-type')).toMatch(/text\/html/);
      expect(await ui.text()).toMatch(/swagger/i);
    }
    // A guarded route on the same app still refuses the anonymous caller.
    expect((await fetch(`${server.baseUrl}/sessions`)).status).toBe(401);
  });
});

describe('OpenAPI in production', () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await startTestApp({
      NODE_ENV: 'production',
      JWT_SECRET: 'Qx7vLm2Rb9Kp4Tz8Wn3Yh6Jc1Fd5Gs0AeUo',
      ENCRYPTION_KEY: 'k'.repeat(32),
      ALLOWED_ORIGINS: 'https://chat.example.com',
    });
  });
  afterAll(() => server?.close());

  it('serves neither {prefix}/docs nor {prefix}/docs-json', async () => {
    expect(server.config.isProduction).toBe(true);
    for (const path of ['/docs', '/docs-json'])
      expect((await fetch(`${server.baseUrl}${path}`)).status).toBe(404);
  });
});
