import { inspectHead, RefusedContent } from './content-inspector';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

describe('inspectHead', () => {
  it('accepts a PNG whatever the declared name and type', async () => {
    await expect(inspectHead(PNG, 'x.bin', 'application/octet-stream')).resolves.toEqual({
      mime: 'image/png',
      inline: true,
      text: false,
    });
  });

  it.each([
    [Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)]), 'Windows executable'],
    [Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(200)]), 'ELF executable'],
    [Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0, 0, 0, 0]), 'Mach-O'],
    [Buffer.from('#!/bin/sh\nrm -rf /\n'), 'script'],
  ])('refuses executables even when named .png (%#)', async (bytes, reason) => {
    await expect(inspectHead(bytes, 'cat.png', 'image/png')).rejects.toThrow(reason);
  });

  it('refuses markup with scripts, whatever the extension', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    await expect(inspectHead(svg, 'image.svg', 'image/svg+xml')).rejects.toBeInstanceOf(RefusedContent);
    await expect(inspectHead(svg, 'notes.txt', 'text/plain')).rejects.toThrow('HTML, SVG or script');
    await expect(inspectHead(Buffer.from('<!DOCTYPE html><p>x'), 'a.md', 'text/markdown')).rejects.toThrow(
      'HTML, SVG or script',
    );
  });

  it('accepts UTF-8 text only with a text extension and without NUL', async () => {
    await expect(inspectHead(Buffer.from('a,b\n1,2\n'), 'data.csv', 'text/csv')).resolves.toMatchObject({
      mime: 'text/csv',
      text: true,
    });
    await expect(inspectHead(Buffer.from('héllo'), 'hello.txt', '')).resolves.toMatchObject({
      mime: 'text/plain',
    });
    await expect(inspectHead(Buffer.from('hello'), 'hello.exe', '')).rejects.toThrow('Unrecognised');
    await expect(inspectHead(Buffer.from('a\u0000b'), 'nul.txt', '')).rejects.toThrow('UTF-8');
    await expect(inspectHead(Buffer.from([0x41, 0xc3, 0x28]), 'bad.txt', '')).rejects.toThrow('UTF-8');
  });

  it('keeps a declared audio type for audio-capable containers (voice notes recorded as webm)', async () => {
    const webm = Buffer.from(
      '1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810442858102',
      'hex',
    );
    await expect(inspectHead(webm, 'voice.webm', 'audio/webm')).resolves.toMatchObject({
      mime: 'audio/webm',
    });
    await expect(inspectHead(webm, 'clip.webm', 'video/webm')).resolves.toMatchObject({ mime: 'video/webm' });
  });
});
