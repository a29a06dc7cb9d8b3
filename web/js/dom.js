// DOM helpers: build elements (never innerHTML), links in text, initials and hues, times, ids, lists of names.
//
// DOM helpers. Everything user-supplied goes through text nodes or attributes,
// never through HTML parsing (no innerHTML anywhere in the client).

/**
 * Build an element. `props` keys:
 *   class, text, testid, dataset{}, on<event>: fn, boolean props (hidden, disabled, checked…),
 *   value, anything else → setAttribute (attribute values are never parsed as HTML).
 * Children: strings/numbers become text nodes, null/false are skipped, arrays are flattened.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (typeof value === 'boolean' || key === 'value') el[key] = value;
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all children of `el`. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

/**
 * Text with http(s) links made clickable. Returns a DocumentFragment of text nodes and
 * <a> elements; the href is only ever an http(s) URL parsed by the URL constructor.
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url;
    try {
      url = new URL(match[0]);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    frag.append(document.createTextNode(text.slice(last, match.index)));
    frag.append(h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer' }, match[0]));
    last = match.index + match[0].length;
  }
  frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/**
 * A person's avatar: their picture (`user.avatar.small`) when they have one, else coloured
 * initials of `name` (default: their display name). `cls` adds classes (e.g. avatar-sm).
 */
export function avatarFor(user, { name, cls = '' } = {}) {
  const label = name || user?.display_name || user?.username || '?';
  const el = h('span', { class: `avatar ${cls}`.trim(), style: `--hue:${hueFor(user?.id)}`, 'aria-hidden': 'true' });
  if (user?.avatar?.small) el.append(h('img', { class: 'avatar-img', src: user.avatar.small, alt: '', testid: 'avatar-img' }));
  else el.append(initials(label));
  return el;
}

/** A stable hue for a user id, so avatars keep their colour across reloads. */
export function hueFor(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return Math.round((hash * 137.508) % 360); // golden angle: neighbours get distant hues
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? timeFmt.format(d) : `${dayFmt.format(d)}, ${timeFmt.format(d)}`;
}

export function formatFullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : fullFmt.format(d);
}

/** A random id for client_msg_id; crypto.randomUUID needs a secure context, this does not. */
export function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** "Ana", "Ana and Ben", "Ana, Ben and Chloé", "Ana, Ben and 3 others". */
export function joinNames(names, max = 3) {
  if (names.length <= 1) return names.join('');
  if (names.length <= max) return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  const rest = names.length - (max - 1);
  return `${names.slice(0, max - 1).join(', ')} and ${rest} others`;
}
