import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '@chatbox/storage';

const ROOT = join(__dirname, '..', '..');
const BINARY = join(ROOT, '.tools', 'bin', 'gofakes3');
const PROVISION = join(ROOT, 'scripts', 'provision-gofakes3.sh');
const START_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const CREDENTIALS = { accessKeyId: 'test-access-key', secretAccessKey: 'test-secret-key' };

export interface FakeS3 {
  endpoint: string;
  bucket: string;
  /** Environment for the app: STORAGE_DRIVER=s3 against this server, path style. */
  env: Record<string, string>;
  /** Keys currently in the bucket. */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A real S3-compatible server (gofakes3, Go, in-memory backend) on a free port, for one test file. */
export async function startFakeS3(bucket = 'chatbox-test'): Promise<FakeS3> {
  if (!existsSync(BINARY)) execFileSync(PROVISION, [BINARY], { stdio: 'inherit' });
  const port = await freePort();
  const child: ChildProcess = spawn(
    BINARY,
    ['-backend', 'memory', '-initialbucket', bucket, '-host', `127.0.0.1:${port}`, '-quiet'],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await listening(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill();
      throw new Error(`gofakes3 did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  return {
    endpoint,
    bucket,
    env: {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      S3_ENDPOINT: endpoint,
      S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
    keys: async () => {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (listed.Contents ?? []).map((object) => object.Key ?? '');
    },
    close: async () => {
      client.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }
    },
  };
}
