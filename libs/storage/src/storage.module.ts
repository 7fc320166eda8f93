import { Global, Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig, APP_CONFIG } from '@chatbox/common';
import { ContentCipher } from './content-cipher';
import { ConversationStore } from './conversation-store';
import { LegacyMigration } from './legacy-migration';
import { CHECKPOINT_MODEL, CheckpointSchema, MESSAGE_MODEL, MessageSchema } from './message.schema';
import { MessageRepository } from './message.repository';
import { MongoHealth } from './mongo-health';
import { MongoRetry } from './mongo-retry';
import { SESSION_MODEL, SessionSchema } from './session.schema';
import { SessionRepository } from './session.repository';

const SERVER_SELECTION_TIMEOUT_MS = 5_000;

/**
 * MongoDB through Mongoose. `config.mongo.uri` is always resolved before the app is built:
 * either the operator's MONGO_URI or the embedded FerretDB started by main.ts.
 *
 * The pool is bounded (mongoMaxPoolSize, 20) rather than the driver's 100: FerretDB on PostgreSQL
 * deadlocks for good once as many operations as its own pool (50) wait for a second connection,
 * and a bounded pool queues excess work in the driver instead (docs/decisions/0008).
 */
@Global()
@Module({
  imports: [
    MongooseModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        uri: config.mongo.uri,
        dbName: config.mongo.database,
        autoIndex: false,
        autoCreate: false,
        serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
        // A stalled database must fail an operation (retried, or queued in the outbox), not hang it.
        socketTimeoutMS: config.protocol.mongoSocketTimeoutMs,
        ...(/[?&]maxPoolSize=/i.test(config.mongo.uri ?? '')
          ? {}
          : { maxPoolSize: config.protocol.mongoMaxPoolSize }),
      }),
    }),
    MongooseModule.forFeatureAsync([
      {
        name: SESSION_MODEL,
        inject: [APP_CONFIG],
        useFactory: (config: AppConfig) => SessionSchema.clone().set('collection', config.mongo.collection),
      },
      { name: MESSAGE_MODEL, useFactory: () => MessageSchema },
      { name: CHECKPOINT_MODEL, useFactory: () => CheckpointSchema },
    ]),
  ],
  providers: [
    {
      provide: ContentCipher,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new ContentCipher(config.encryption.key, config.encryption.oldKeys),
    },
    MongoRetry,
    SessionRepository,
    MessageRepository,
    LegacyMigration,
    ConversationStore,
    MongoHealth,
  ],
  exports: [
    ContentCipher,
    MongoRetry,
    SessionRepository,
    MessageRepository,
    ConversationStore,
    MongoHealth,
    MongooseModule,
  ],
})
export class StorageModule {}
