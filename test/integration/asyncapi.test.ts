/**
 * docs/asyncapi.yaml (the WebSocket protocol, SPEC 4) agrees with the code: the client message
 * types and their validated properties (the class-validator DTOs the gateway uses), the limits,
 * the error codes and every frame type the server emits. Needs no database: it parses files.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getMetadataStorage, ValidationTypes } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';
import { parse } from 'yaml';
import {
  CLIENT_ID_PATTERN,
  DEFAULT_PROTOCOL_LIMITS as LIMITS,
  ErrorCode,
  FATAL_SOCKET_CODES,
  loadConfig,
  STORABLE_TEXT_PATTERN,
} from '@chatbox/common';
import { INBOUND_TYPES } from '@chatbox/session';
import { DTO_BY_TYPE, METADATA_DTO_BY_TYPE } from '../../libs/gateway/src/dto/inbound-frame.dto';
import { DASHBOARD_EVENTS, NOTICE_REASONS, renderFrame } from '../../libs/gateway/src/frame-mapper';
import { parseFrame } from '../../libs/gateway/src/frame-parser';
import { FRAME_CASES } from '../support/frame-cases';

const root = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

type Schema = {
  $ref?: string;
  allOf?: Schema[];
  type?: string;
  const?: string;
  enum?: string[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  propertyNames?: Schema;
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  maxProperties?: number;
  format?: string;
  description?: string;
};
type Message = { name: string; payload: Schema };

const doc = parse(read('docs/asyncapi.yaml'));

/** Follows local `$ref`s (`#/a/b/c`). */
function deref<T>(node: T): T {
  const ref = (node as { $ref?: string })?.$ref;
  if (!ref) return node;
  expect(ref.startsWith('#/')).toBe(true);
  const target = ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key], doc);
  expect(target).toBeDefined();
  return deref(target as T);
}

/** One object schema from `allOf` parts: properties merged (later parts refine earlier ones). */
function flatten(schema: Schema): Required<Pick<Schema, 'properties' | 'required'>> {
  const resolved = deref(schema);
  const parts = resolved.allOf ? resolved.allOf.map(flatten) : [];
  const properties: Record<string, Schema> = {};
  const required = new Set<string>(resolved.required ?? []);
  for (const part of parts) {
    for (const [name, property] of Object.entries(part.properties))
      properties[name] = { ...properties[name], ...deref(property) };
    part.required.forEach((name) => required.add(name));
  }
  for (const [name, property] of Object.entries(resolved.properties ?? {}))
    properties[name] = { ...properties[name], ...deref(property) };
  return { properties, required: [...required] };
}

function operationMessages(action: 'send' | 'receive'): Message[] {
  const operations = Object.values(doc.operations as Record<string, { action: string; messages: Schema[] }>);
  return operations
    .filter((operation) => operation.action === action)
    .flatMap((operation) => operation.messages.map((ref) => deref(ref) as unknown as Message));
}

function typeOf(message: Message): string {
  const type = flatten(message.payload).properties.type?.const;
  expect(type).toBe(message.name);
  return type as string;
}

function validations(dto: new () => object): Map<string, ValidationMetadata[]> {
  const byProperty = new Map<string, ValidationMetadata[]>();
  for (const metadata of getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false))
    byProperty.set(metadata.propertyName, [...(byProperty.get(metadata.propertyName) ?? []), metadata]);
  return byProperty;
}

/** Required = `@IsDefined`, or validated without `@IsOptional`/`@ValidateIf`. */
function isRequired(rules: ValidationMetadata[]): boolean {
  return (
    rules.some((rule) => rule.type === ValidationTypes.IS_DEFINED) ||
    !rules.some((rule) => rule.type === ValidationTypes.CONDITIONAL_VALIDATION)
  );
}

/** The frame of every kind of event the server sends (the gateway's mapper renders them all). */
const serverFrames = Object.values(FRAME_CASES)
  .flat()
  .map(([event]) => renderFrame(event));

describe('docs/asyncapi.yaml', () => {
  const clientMessages = operationMessages('receive');
  const serverMessages = operationMessages('send');

  it('is an AsyncAPI 3 document for the channel {prefix}/ws with token and session_id query', () => {
    expect(doc.asyncapi).toMatch(/^3\.0\./);
    const channels = Object.values(doc.channels as Record<string, any>);
    expect(channels).toHaveLength(1);
    const [channel] = channels;
    expect(channel.address).toBe(`${loadConfig({}).pathPrefix}/ws`);
    const query = channel.bindings.ws.query.properties;
    expect(Object.keys(query).sort()).toEqual(['session_id', 'token']);
    expect(query.session_id.maxLength).toBe(LIMITS.sessionIdChars);
    for (const status of ['400', '401', '403', '429']) expect(channel.description).toContain(`- ${status}:`);
    // Every message of the operations is one of the channel's messages.
    const channelMessages = Object.values(channel.messages as Record<string, Schema>).map(deref);
    for (const message of [...clientMessages, ...serverMessages]) expect(channelMessages).toContain(message);
  });

  it('documents exactly the client message types of the code (INBOUND_TYPES)', () => {
    expect(clientMessages.map(typeOf).sort()).toEqual([...INBOUND_TYPES].sort());
    expect(Object.keys(DTO_BY_TYPE).sort()).toEqual([...INBOUND_TYPES].sort());
  });

  it.each([...INBOUND_TYPES])('%s: documented properties, required ones and limits match its DTO', (type) => {
    const message = clientMessages.find((candidate) => candidate.name === type) as Message;
    const { properties, required } = flatten(message.payload);
    const rules = validations(DTO_BY_TYPE[type]);
    expect(Object.keys(properties).sort()).toEqual([...rules.keys()].sort());
    expect(required.sort()).toEqual(
      [...rules.entries()]
        .filter(([, propertyRules]) => isRequired(propertyRules))
        .map(([name]) => name)
        .sort(),
    );
    for (const [name, propertyRules] of rules) {
      const documented = properties[name];
      const maxLength = propertyRules.find((rule) => rule.name === 'maxLength')?.constraints[0];
      expect({ name, maxLength: documented.maxLength }).toEqual({ name, maxLength });
      const pattern = propertyRules.find((rule) => rule.name === 'matches')?.constraints[0] as RegExp;
      expect({ name, pattern: documented.pattern }).toEqual({ name, pattern: pattern?.source });
      if (name !== 'type' && propertyRules.some((rule) => rule.name === 'isNotEmpty'))
        expect({ name, minLength: documented.minLength }).toEqual({ name, minLength: 1 });
      const isIn = propertyRules.find((rule) => rule.name === 'isIn')?.constraints[0];
      if (isIn) expect(documented.enum).toEqual(isIn);
      if (propertyRules.some((rule) => rule.name === 'isIso8601'))
        expect(documented.format).toBe('date-time');
      if (propertyRules.some((rule) => rule.name === 'isObject')) expect(documented.type).toBe('object');
    }
  });

  it.each(Object.keys(METADATA_DTO_BY_TYPE))(
    '%s: the documented metadata keys and rules match its DTO',
    (type) => {
      const message = clientMessages.find((candidate) => candidate.name === type) as Message;
      const metadata = flatten(message.payload).properties.metadata;
      const rules = validations(METADATA_DTO_BY_TYPE[type as keyof typeof METADATA_DTO_BY_TYPE]!);
      expect(Object.keys(metadata.properties ?? {}).sort()).toEqual([...rules.keys()].sort());
      expect([...(metadata.required ?? [])].sort()).toEqual(
        [...rules.entries()]
          .filter(([, propertyRules]) => isRequired(propertyRules))
          .map(([name]) => name)
          .sort(),
      );
      for (const [name, propertyRules] of rules) {
        const pattern = propertyRules.find((rule) => rule.name === 'matches')?.constraints[0] as RegExp;
        expect({ name, pattern: metadata.properties![name].pattern }).toEqual({
          name,
          pattern: pattern?.source,
        });
      }
    },
  );

  it.each([...INBOUND_TYPES])('%s: the gateway refuses values past the documented limits', (type) => {
    const message = clientMessages.find((candidate) => candidate.name === type) as Message;
    const { properties } = flatten(message.payload);
    const valid: Record<string, unknown> = {
      type,
      content: 'hi',
      model_id: 'demo',
      file_id: 'f1',
      metadata: { message_id: 'm1', last_seq: '0' },
    };
    expect(() => parseFrame(JSON.stringify(valid))).not.toThrow();
    for (const [name, property] of Object.entries(properties)) {
      if (property.maxLength === undefined) continue;
      expect(() =>
        parseFrame(JSON.stringify({ ...valid, [name]: 'x'.repeat(property.maxLength!) })),
      ).not.toThrow();
      expect(() =>
        parseFrame(JSON.stringify({ ...valid, [name]: 'x'.repeat(property.maxLength! + 1) })),
      ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_FORMAT }));
      expect(() => parseFrame(JSON.stringify({ ...valid, [name]: 42 }))).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_FORMAT }),
      );
    }
    for (const [name, property] of Object.entries(properties)) {
      if (property.pattern === undefined) continue;
      expect(() => parseFrame(JSON.stringify({ ...valid, [name]: 'x\u0000' }))).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_FORMAT, message: expect.stringContaining(name) }),
      );
    }
  });

  it('states the limits of DEFAULT_PROTOCOL_LIMITS (SPEC 4.2)', () => {
    const envelope = doc.components.schemas.ClientEnvelope.properties;
    expect(envelope.content.maxLength).toBe(LIMITS.contentChars);
    expect(envelope.session_id.maxLength).toBe(LIMITS.sessionIdChars);
    expect(envelope.file_id.maxLength).toBe(LIMITS.fileIdChars);
    expect(envelope.file_url.maxLength).toBe(LIMITS.fileUrlChars);
    expect(envelope.model_id.maxLength).toBe(LIMITS.modelIdChars);
    const metadata = deref(envelope.metadata as Schema);
    expect(metadata.maxProperties).toBe(LIMITS.metadataKeys);
    expect(metadata.propertyNames?.maxLength).toBe(LIMITS.metadataKeyChars);
    expect((metadata.additionalProperties as Schema).maxLength).toBe(LIMITS.metadataValueChars);
    expect((metadata.additionalProperties as Schema).pattern).toBe(STORABLE_TEXT_PATTERN.source);
    const query = Object.values(doc.channels as Record<string, any>)[0].bindings.ws.query.properties;
    expect(query.session_id.pattern).toBe(CLIENT_ID_PATTERN.source);
  });

  it('lists exactly the WebSocket error codes of ErrorCode (SPEC 4.9) and the fatal ones with their close codes', () => {
    // ErrorCode lists the WebSocket codes first, then the REST-only ones after this comment.
    const source = read('libs/common/src/errors/error-codes.ts');
    const enumBody = source.slice(source.indexOf('export enum ErrorCode'), source.indexOf('REST-only'));
    const socketCodes = [...enumBody.matchAll(/^\s+([A-Z_]+) = '/gm)].map((match) => match[1]);
    expect(socketCodes.length).toBeGreaterThan(10);
    for (const code of socketCodes) expect(Object.values(ErrorCode)).toContain(code);
    const errorBody = doc.components.schemas.ErrorBody;
    expect([...errorBody.properties.code.enum].sort()).toEqual([...socketCodes].sort());
    for (const [code, closeCode] of Object.entries(FATAL_SOCKET_CODES))
      expect(errorBody.properties.code.description).toContain(`${code} (close ${closeCode})`);
    expect(Object.keys(errorBody.properties).sort()).toEqual([
      'code',
      'message',
      'recoverable',
      'retry_after',
    ]);
  });

  it('documents every frame type the server emits, and no other', () => {
    const emitted = new Set(serverFrames.map((frame) => frame.type));
    expect(emitted.size).toBeGreaterThan(5);
    expect(serverMessages.map(typeOf).sort()).toEqual([...emitted].sort());
  });

  it('the server envelope has exactly the fields of the ServerFrame interface, and frames only those', () => {
    const source = read('libs/gateway/src/frame-mapper.ts');
    const body = source.slice(source.indexOf('export interface ServerFrame {'));
    const fields = [...body.slice(0, body.indexOf('\n}')).matchAll(/^ {2}([a-z_]+)\??:/gm)].map((m) => m[1]);
    expect(fields).toContain('session_id');
    const envelope = doc.components.schemas.ServerEnvelope;
    expect(Object.keys(envelope.properties).sort()).toEqual(fields.sort());
    expect(deref(envelope.properties.error)).toBe(doc.components.schemas.ErrorBody);
    for (const frame of serverFrames) {
      expect(Object.keys(frame).filter((key) => !fields.includes(key))).toEqual([]);
      for (const key of envelope.required as string[]) expect(frame).toHaveProperty(key);
    }
  });

  it('documents the streaming metadata of ai_response, including the done frame (SPEC 4.5, 4.6)', () => {
    const message = serverMessages.find((candidate) => candidate.name === 'ai_response') as Message;
    const metadata = flatten(message.payload).properties.metadata;
    expect(Object.keys(metadata.properties ?? {}).sort()).toEqual(
      [
        'streaming',
        'done',
        'message_id',
        'seq',
        'catch_up',
        'tokens',
        'prompt_tokens',
        'completion_tokens',
        'response_time_ms',
        'first_token_ms',
        'stopped',
        'status',
        'error',
      ].sort(),
    );
  });

  it('documents every notification event and reason the code sends (dashboards, SPEC 4.8)', () => {
    const message = serverMessages.find((candidate) => candidate.name === 'notification') as Message;
    const metadata = flatten(message.payload).properties.metadata.properties ?? {};
    const alertSource = read('libs/notification/src/notification.types.ts');
    const alertUnion = alertSource.slice(alertSource.indexOf('export type AlertEvent'));
    const alertEvents = [...alertUnion.slice(0, alertUnion.indexOf(';')).matchAll(/'([a-z_]+)'/g)].map(
      (match) => match[1],
    );
    const notifications = serverFrames.filter((frame) => frame.type === 'notification');
    const sent = (key: string) => notifications.flatMap((frame) => frame.metadata?.[key] ?? []);
    // Every dashboard update and notice the mapper knows, the alerts of the notification module, and
    // what the rendered notifications carry.
    const events = new Set([...Object.values(DASHBOARD_EVENTS), ...alertEvents, ...sent('event')]);
    expect(events).toContain('takeover_started');
    expect([...(metadata.event.enum ?? [])].sort()).toEqual([...events].sort());
    const reasons = new Set([...Object.values(NOTICE_REASONS), ...sent('reason')]);
    expect(reasons).toContain('session_ended_elsewhere');
    for (const reason of reasons) expect(metadata.reason.enum).toContain(reason);
  });
});
