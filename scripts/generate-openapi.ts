/**
 * Writes docs/openapi.json from the running application's controllers (`make openapi`).
 * The document needs a booted Nest application (and so a database): `make openapi` runs this
 * through the integration Jest project (test/integration/openapi.test.ts with OPENAPI_WRITE=1),
 * which starts the app on the test FerretDB. The same test fails when the file has drifted.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { INestApplication } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import { createOpenApiDocument } from '../apps/chatbox/src/openapi';

export const OPENAPI_FILE = resolve(__dirname, '../docs/openapi.json');

/** The document as committed: plain JSON (no undefined values), 2-space indentation. */
export function renderOpenApi(document: OpenAPIObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

export function generateOpenApi(app: INestApplication): OpenAPIObject {
  return JSON.parse(renderOpenApi(createOpenApiDocument(app))) as OpenAPIObject;
}

export function writeOpenApi(app: INestApplication, file = OPENAPI_FILE): OpenAPIObject {
  const document = generateOpenApi(app);
  writeFileSync(file, renderOpenApi(document));
  return document;
}
