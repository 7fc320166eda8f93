import { fileTypeFromBuffer } from 'file-type/core';
import { extensionOf } from './filename';

// 'file-type/core' (buffer detection only) resolves under both Node's require(esm) and Jest's CommonJS
// conditions; the package root exports only 'import'/'module-sync', which Jest cannot resolve.

/** What a sniffed upload is stored and served as. */
export interface AcceptedType {
  mime: string;
  /** Inline for media the browser shows or plays; everything else downloads. */
  inline: boolean;
  /** Plain text has no magic number: every later chunk must stay valid UTF-8 without NUL. */
  text: boolean;
}

export class RefusedContent extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedContent';
  }
}

/** Sniffed file-type extension → served MIME type (the allow-list of SPEC 6). */
const ALLOWED: Record<string, { mime: string; inline: boolean }> = {
  png: { mime: 'image/png', inline: true },
  jpg: { mime: 'image/jpeg', inline: true },
  gif: { mime: 'image/gif', inline: true },
  webp: { mime: 'image/webp', inline: true },
  pdf: { mime: 'application/pdf', inline: false },
  docx: { mime: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', inline: false },
  xlsx: { mime: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', inline: false },
  pptx: { mime: 'application/vnd.openxmlformats-officedocument.presentationml.presentation', inline: false },
  odt: { mime: 'application/vnd.oasis.opendocument.text', inline: false },
  webm: { mime: 'video/webm', inline: true },
  ogg: { mime: 'audio/ogg', inline: true },
  oga: { mime: 'audio/ogg', inline: true },
  opus: { mime: 'audio/ogg', inline: true },
  mp3: { mime: 'audio/mpeg', inline: true },
  mp2: { mime: 'audio/mpeg', inline: true },
  m4a: { mime: 'audio/mp4', inline: true },
  wav: { mime: 'audio/wav', inline: true },
  mp4: { mime: 'video/mp4', inline: true },
};

/** Containers that hold audio only as well as video: a declared `audio/…` type is kept for them. */
const AUDIO_CAPABLE_CONTAINERS: Record<string, string> = { webm: 'audio/webm', mp4: 'audio/mp4' };

const TEXT_EXTENSIONS: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
};

/** Magic numbers of executables, checked before anything else so the refusal names the reason. */
const EXECUTABLE_MAGIC: { bytes: number[]; name: string }[] = [
  { bytes: [0x4d, 0x5a], name: 'Windows executable (MZ)' },
  { bytes: [0x7f, 0x45, 0x4c, 0x46], name: 'ELF executable' },
  { bytes: [0xfe, 0xed, 0xfa, 0xce], name: 'Mach-O executable' },
  { bytes: [0xfe, 0xed, 0xfa, 0xcf], name: 'Mach-O executable' },
  { bytes: [0xce, 0xfa, 0xed, 0xfe], name: 'Mach-O executable' },
  { bytes: [0xcf, 0xfa, 0xed, 0xfe], name: 'Mach-O executable' },
  { bytes: [0xca, 0xfe, 0xba, 0xbe], name: 'Mach-O universal binary or Java class' },
  { bytes: [0x23, 0x21], name: 'script (#!)' },
];

/** Markup a browser would run if it ever rendered the text (HTML, SVG, XML with scripts). */
const ACTIVE_MARKUP = /<\s*(script|svg|html|!doctype|iframe|object|embed)\b|<\?xml|javascript:/i;

function startsWith(head: Buffer, bytes: number[]): boolean {
  return head.length >= bytes.length && bytes.every((byte, index) => head[index] === byte);
}

/** True when `bytes` decode as UTF-8 without NUL; a multi-byte sequence cut at the end is carried by `decoder`. */
export function isUtf8Text(bytes: Buffer, decoder = new TextDecoder('utf-8', { fatal: true })): boolean {
  if (bytes.includes(0)) return false;
  try {
    decoder.decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides from the first bytes (and the declared name and type) whether an upload is allowed and
 * what it is served as. Never trusts the client's type or extension alone.
 * @throws RefusedContent naming the reason.
 */
export async function inspectHead(
  head: Buffer,
  filename: string,
  declaredMime: string,
): Promise<AcceptedType> {
  const executable = EXECUTABLE_MAGIC.find(({ bytes }) => startsWith(head, bytes));
  if (executable) throw new RefusedContent(`Executable content is not allowed: ${executable.name}`);

  const sniffed = await fileTypeFromBuffer(head);
  if (sniffed) {
    const allowed = ALLOWED[sniffed.ext];
    if (!allowed) throw new RefusedContent(`File type ${sniffed.mime} is not allowed`);
    const audioMime = AUDIO_CAPABLE_CONTAINERS[sniffed.ext];
    const mime = audioMime && declaredMime.toLowerCase().startsWith('audio/') ? audioMime : allowed.mime;
    return { mime, inline: allowed.inline, text: false };
  }

  const utf8 = isUtf8Text(head);
  if (utf8 && ACTIVE_MARKUP.test(head.toString('utf8')))
    throw new RefusedContent('HTML, SVG or script content is not allowed');
  const extension = extensionOf(filename);
  const textMime = TEXT_EXTENSIONS[extension];
  if (!textMime)
    throw new RefusedContent(
      'Unrecognised file type: only images, PDF, office, text, audio and video are allowed',
    );
  if (!utf8) throw new RefusedContent(`A .${extension} file must be UTF-8 text without NUL bytes`);
  return { mime: textMime, inline: false, text: true };
}

/**
 * Reads at least `bytes` from the start of a stream (less when it ends first) for sniffing, leaving
 * the iterator positioned after what was read so the caller streams the rest.
 */
export async function readHead(
  chunks: AsyncIterator<Uint8Array>,
  bytes: number,
): Promise<{ head: Buffer; ended: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < bytes) {
    const next = await chunks.next();
    if (next.done) return { head: Buffer.concat(parts), ended: true };
    parts.push(Buffer.from(next.value));
    size += next.value.length;
  }
  return { head: Buffer.concat(parts), ended: false };
}
