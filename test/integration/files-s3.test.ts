import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3FileStorageDriver } from '@chatbox/files';
import { FakeS3, startFakeS3 } from '../support/fake-s3';
import { filesSuite } from '../support/files-suite';

let s3: FakeS3;
beforeAll(async () => {
  s3 = await startFakeS3();
});
afterAll(async () => s3?.close());

filesSuite('s3', { env: () => s3.env, storedObjects: async () => (await s3.keys()).sort() });

describe('S3 driver directly', () => {
  it('streams a multipart upload (several parts), reads ranges and hands out presigned GET URLs', async () => {
    const driver = new S3FileStorageDriver({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      accessKeyId: s3.env.S3_ACCESS_KEY_ID,
      secretAccessKey: s3.env.S3_SECRET_ACCESS_KEY,
      forcePathStyle: true,
    });
    const big = Buffer.alloc(11 * 1024 * 1024);
    for (let index = 0; index < big.length; index += 4096) big[index] = index % 256;
    const { Readable } = await import('node:stream');
    await driver.put('big-object', Readable.from([big.subarray(0, 6e6), big.subarray(6e6)]), 'video/mp4');
    const range = await driver.open('big-object', { start: 8_000_000, end: 8_000_099 });
    const parts: Buffer[] = [];
    for await (const chunk of range) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(big.subarray(8_000_000, 8_000_100))).toBe(true);

    const url = await driver.presignedGetUrl('big-object', 60_000);
    expect(url).toContain('X-Amz-Signature=');
    const fetched = await fetch(url, { headers: { Range: 'bytes=0-9' } });
    expect(Buffer.from(await fetched.arrayBuffer()).equals(big.subarray(0, 10))).toBe(true);

    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(1024);
        throw new Error('body failed');
      })(),
    );
    await expect(driver.put('never-kept', failing, 'image/png')).rejects.toThrow('body failed');
    expect(await s3.keys()).not.toContain('never-kept');
    await driver.remove('big-object');
    driver.onModuleDestroy();

    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
    await expect(
      client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'big-object' })),
    ).rejects.toBeDefined();
    client.destroy();
  });
});
