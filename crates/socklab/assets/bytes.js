// socklab dashboard: bytes as people read and type them. Pure functions, no DOM; imports nothing.
//
// Typing: the send boxes and the rule editor understand the console's escapes
// \r \n \t \0 \\ \xHH, so every byte can be typed and shown on one line.
// Showing: printable text as is, the same escapes for everything else.

export const HEX = '0123456789abcdef';
export const hex2 = (b) => HEX[b >> 4] + HEX[b & 15];

/** The escapes the send boxes and the rule editor understand (shown as a hint). */
export const ESCAPE_HINT = 'Text understands \\r \\n \\t \\0 \\\\ \\xHH';

/** Line endings a send box can append, as bytes. */
export const LINE_ENDINGS = {
  none: new Uint8Array(0),
  lf: new Uint8Array([0x0a]),
  crlf: new Uint8Array([0x0d, 0x0a]),
  cr: new Uint8Array([0x0d]),
};

export function hexToBytes(hex) {
  const clean = hex.length % 2 ? hex.slice(0, -1) : hex;
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(b, sep = ' ') {
  const parts = new Array(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = hex2(b[i]);
  return parts.join(sep);
}

export function concatBytes(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Hex digits typed by a person (spaces, colons, commas, dashes and 0x prefixes allowed)
 * as bytes; an Error says what is wrong.
 */
export function parseHex(value) {
  const digits = value.replace(/0x/gi, '').replace(/[\s:,-]/g, '');
  if (digits.length % 2) throw new Error('hex needs two digits per byte');
  if (!/^[0-9a-fA-F]*$/.test(digits)) throw new Error('invalid hex digits in "' + value + '"');
  return hexToBytes(digits);
}

/**
 * Text with the console's escapes as bytes: \r \n \t \0 \\ and \xHH; everything else as
 * UTF-8. Any other backslash sequence is an Error, as in the console.
 */
export function parseEscapes(value) {
  const enc = new TextEncoder();
  const out = [];
  let plain = '';
  const flush = () => {
    if (plain) for (const b of enc.encode(plain)) out.push(b);
    plain = '';
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== '\\') {
      plain += c;
      continue;
    }
    flush();
    const n = value[i + 1];
    i += 1;
    if (n === 'r') out.push(0x0d);
    else if (n === 'n') out.push(0x0a);
    else if (n === 't') out.push(0x09);
    else if (n === '0') out.push(0x00);
    else if (n === '\\') out.push(0x5c);
    else if (n === 'x') {
      const pair = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(pair)) throw new Error('bad escape \\x' + pair + ': write \\xHH with two hex digits');
      out.push(parseInt(pair, 16));
      i += 2;
    } else if (n === undefined) throw new Error('trailing backslash: write \\\\ for a backslash');
    else throw new Error('unknown escape \\' + n + ': write \\\\ for a backslash');
  }
  flush();
  return new Uint8Array(out);
}

/** Code points shown escaped although valid UTF-8: invisible or reordering characters. */
export function invisible(cp) {
  return (
    cp < 0xa0 ||
    cp === 0xad ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x206f) ||
    cp === 0xfeff ||
    (cp >= 0xfff0 && cp <= 0xffff)
  );
}

/**
 * Bytes as readable text: printable ASCII and valid, visible UTF-8 as is; \r \n \t and the
 * backslash escaped; every other byte as \xNN. `parseEscapes` turns it back into the same
 * bytes.
 */
export function escapeBytes(b) {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else if (c === 0x5c) out += '\\\\';
      else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
      else out += '\\x' + hex2(c);
      i += 1;
      continue;
    }
    let need = 0;
    let cp = 0;
    let min = 0;
    if (c >= 0xc2 && c <= 0xdf) [need, cp, min] = [1, c & 0x1f, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, cp, min] = [2, c & 0x0f, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, cp, min] = [3, c & 0x07, 0x10000];
    let ok = need > 0 && i + need < b.length;
    for (let j = 1; ok && j <= need; j++) {
      const cc = b[i + j];
      if ((cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && !invisible(cp);
    if (ok) {
      out += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      out += '\\x' + hex2(c);
      i += 1;
    }
  }
  return out;
}

/** A string as the escaped form the editor shows (the string's UTF-8 bytes, escaped). */
export const escapeText = (s) => escapeBytes(new TextEncoder().encode(s || ''));

/** Bytes as a string when they are valid UTF-8, else null. */
export function utf8OrNull(b) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch (e) {
    return null;
  }
}

/**
 * The bytes a send box describes: `mode` 'text' (escapes understood) or 'hex', plus a line
 * ending from LINE_ENDINGS. Throws an Error saying what is wrong.
 */
export function payloadBytes(mode, value, eol) {
  const body = mode === 'hex' ? parseHex(value) : parseEscapes(value);
  const bytes = concatBytes(body, LINE_ENDINGS[eol] || LINE_ENDINGS.none);
  if (!bytes.length) throw new Error('nothing to send');
  return bytes;
}

/** The API body for those bytes: always hex, so every byte arrives as typed. */
export const payloadBody = (mode, value, eol) => ({ hex: bytesToHex(payloadBytes(mode, value, eol), '') });
