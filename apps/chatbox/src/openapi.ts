import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AppConfig, BEARER_AUTH, ErrorBodyDto } from '@chatbox/common';

/** Routes of the OpenAPI UI and document, under the prefix (`{prefix}/docs`, `{prefix}/docs-json`). */
export const OPENAPI_UI_PATH = 'docs';
export const OPENAPI_JSON_PATH = 'docs-json';

/** The OpenAPI document of the REST API, built from the controllers' decorators (SPEC 5). */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('chatbox')
    .setDescription(
      'REST API of the chatbox service (SPEC 5). Errors are `{error, code, message}`. ' +
        'The WebSocket protocol at `{prefix}/ws` is described in docs/asyncapi.yaml.',
    )
    .setVersion('1.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, BEARER_AUTH)
    .build();
  return SwaggerModule.createDocument(app, config, { extraModels: [ErrorBodyDto] });
}

/**
 * Serves the UI and the JSON document outside production only. SwaggerModule registers plain
 * HTTP-adapter routes, so Nest guards (the global JWT guard) never see them: they are public.
 */
export function setupOpenApi(app: INestApplication, config: AppConfig): void {
  if (config.isProduction) return;
  SwaggerModule.setup(OPENAPI_UI_PATH, app, () => createOpenApiDocument(app), {
    useGlobalPrefix: true,
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    raw: ['json'],
  });
}
