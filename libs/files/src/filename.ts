import { FALLBACK_FILENAME, FILENAME_MAX_CHARS } from './files.constants';

// Control characters (C0, DEL, C1) and characters that are unsafe in names on common file systems.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f<>:"|?*\u202a-\u202e\u2066-\u2069]/g;

/**
 * A display name for an uploaded file: basename only (both separators), no control or
 * bidi-override characters, no leading dots, length-limited with the extension kept. It is only
 * ever shown and sent in Content-Disposition: storage keys are server-generated ids.
 */
export function sanitizeFilename(raw: string | undefined): string {
  const base = (raw ?? '').split(/[\\/]/).pop() ?? '';
  let name = base.normalize('NFC').replace(UNSAFE_CHARS, '').trim().replace(/^\.+/, '').trim();
  if (name === '') return FALLBACK_FILENAME;
  const chars = Array.from(name);
  if (chars.length > FILENAME_MAX_CHARS) {
    const dot = name.lastIndexOf('.');
    const extension = dot > 0 ? Array.from(name.slice(dot)).slice(0, FILENAME_MAX_CHARS / 2) : [];
    name = chars.slice(0, FILENAME_MAX_CHARS - extension.length).join('') + extension.join('');
  }
  return name;
}

/** Lower-case extension without the dot ('' when none). */
export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? filename.slice(dot + 1).toLowerCase() : '';
}

/** `Content-Disposition` with an ASCII fallback and the RFC 5987 `filename*`. */
export function contentDisposition(type: 'inline' | 'attachment', filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
