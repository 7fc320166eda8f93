import { contentDisposition, extensionOf, sanitizeFilename } from './filename';
import { FILENAME_MAX_CHARS } from './files.constants';

describe('sanitizeFilename', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\windows\\system32\\cmd.exe', 'cmd.exe'],
    ['photo.png', 'photo.png'],
    ['a\u0000b\u001fc\u007f.txt', 'abc.txt'],
    ['evil\u202egnp.exe', 'evilgnp.exe'],
    ['.hidden', 'hidden'],
    ['..', 'file'],
    ['', 'file'],
    [undefined, 'file'],
    ['  spaced name.pdf  ', 'spaced name.pdf'],
  ])('%j → %j', (raw, expected) => {
    expect(sanitizeFilename(raw)).toBe(expected);
  });

  it('limits the length and keeps the extension, never splitting a character', () => {
    const name = sanitizeFilename(`${'é'.repeat(500)}.mp3`);
    expect(Array.from(name)).toHaveLength(FILENAME_MAX_CHARS);
    expect(name.endsWith('.mp3')).toBe(true);
  });
});

describe('extensionOf / contentDisposition', () => {
  it('reads the lower-case extension', () => {
    expect(extensionOf('Notes.TXT')).toBe('txt');
    expect(extensionOf('noext')).toBe('');
  });

  it('has an ASCII fallback and an RFC 5987 filename*', () => {
    expect(contentDisposition('attachment', 'résumé "final".pdf')).toBe(
      `attachment; filename="r_sum_ _final_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`,
    );
  });
});
