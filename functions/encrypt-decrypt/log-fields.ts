/**
 * Request fields as the handler logs them. A client sets the size of every field of an event (up to Lambda's
 * 6 MiB request limit), so a field copied whole into a log line could make that line megabytes long: CloudWatch
 * splits such an event at 256 KiB, and every copy is paid for. Logged request text is therefore cut to its first
 * LOGGED_FIELD_CHARS characters, with the original length beside it, which keeps every log line under 8 KiB.
 */

/** How many UTF-16 code units (JavaScript string length) of a request field a log line keeps. */
export const LOGGED_FIELD_CHARS = 256;

/**
 * `{ [key]: the first 256 characters of value, [key + 'Length']: value.length }`, e.g.
 * `boundedField('name', 'x'.repeat(1048576))` → `{ name: 'xxx…x' (256), nameLength: 1048576 }`; the field was
 * cut when `nameLength` is larger than `name.length`. Lengths count UTF-16 code units, as the event's other
 * limits do. An absent value gives `{}`, so the log line has neither field.
 */
export function boundedField(key: string, value: string | undefined): Record<string, string | number> {
  if (value === undefined) return {};
  return { [key]: boundedText(value), [`${key}Length`]: value.length };
}

/**
 * The first LOGGED_FIELD_CHARS code units of `value`, one fewer when the cut would fall inside a surrogate pair:
 * half a pair is a lone surrogate, which cannot be encoded as UTF-8. (Lone surrogates already in the value are
 * kept; JSON.stringify writes them as \uXXXX escapes, so the log line stays valid UTF-8.)
 */
export function boundedText(value: string): string {
  if (value.length <= LOGGED_FIELD_CHARS) return value;
  let end = LOGGED_FIELD_CHARS;
  if (isHighSurrogate(value.charCodeAt(end - 1)) && isLowSurrogate(value.charCodeAt(end))) end--;
  return value.slice(0, end);
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;
