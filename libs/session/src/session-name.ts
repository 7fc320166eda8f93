const ELLIPSIS = '...';

/**
 * The session name from its first user message (SPEC 4.5): text up to the first line break, else
 * through the first `.`/`?`/`!`; over `maxChars` characters it is cut at the last space before
 * `maxChars - 3` and gets `...`. Counts code points, so a character is never split.
 */
export function sessionNameFrom(text: string, maxChars: number): string {
  const trimmed = text.trim();
  const lineBreak = trimmed.search(/\r?\n/);
  let name: string;
  if (lineBreak >= 0) name = trimmed.slice(0, lineBreak);
  else {
    const end = trimmed.search(/[.?!]/);
    name = end >= 0 ? trimmed.slice(0, end + 1) : trimmed;
  }
  name = name.trim();
  const characters = [...name];
  if (characters.length <= maxChars) return name;
  const head = characters.slice(0, maxChars - ELLIPSIS.length).join('');
  const lastSpace = head.lastIndexOf(' ');
  const cut = lastSpace > 0 ? head.slice(0, lastSpace) : head;
  return `${cut.trimEnd()}${ELLIPSIS}`;
}
