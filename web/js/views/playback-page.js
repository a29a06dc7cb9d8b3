// The playback page of a recording (#/recordings/<id>): the class video, its chapters, the chat replayed in sync, the speaker timeline, speed, captions, shortcuts and links to a moment.
//
// Everything comes from GET /api/recordings/{id}/playback (playback.js); times are seconds from
// the video's start. The video plays through its signed inline link; when that link has
// expired (a long session), the page fetches fresh links and resumes where it was.

import { h } from '../dom.js';
import { formatDuration } from '../recordings.js';
import { SPEEDS, chatMatches, indexAt, loadPlayback, playbackLink } from '../playback.js';

const SEEK_SMALL_S = 5;
const SEEK_BIG_S = 10;
const RELOAD_MIN_MS = 30_000; // fetching fresh links after a media error, at most this often
const FOLLOW_PAUSE_MS = 4000; // after the reader scrolls the chat, it stops following for this long

export const SHORTCUTS = [
  ['Space or K', 'Play / pause'],
  ['J / L', `Back / forward ${SEEK_BIG_S} s`],
  ['← / →', `Back / forward ${SEEK_SMALL_S} s`],
  ['< / >', 'Slower / faster'],
  ['F', 'Full screen'],
  ['C', 'Captions on / off'],
];

/** Build the page for recording `id`, seeking to `t` (seconds) once the video can: {el, id, seek(t), destroy()}. */
export function createPlaybackPage(app, { id, t = null }) {
  const el = h('section', { class: 'pb-page', testid: 'playback-page', 'aria-labelledby': 'pb-title' },
    h('p', { class: 'pb-loading muted', testid: 'playback-loading' }, 'Loading the recording…'));
  let destroyed = false;
  let view = null;
  let pendingSeek = t;

  loadPlayback(id).then((data) => {
    if (destroyed) return;
    view = buildView(app, id, data, el);
    if (pendingSeek !== null) view.seek(pendingSeek);
    pendingSeek = null;
  }, (err) => {
    if (destroyed) return;
    el.replaceChildren(
      h('div', { class: 'pb-error', role: 'alert', testid: 'playback-error', dataset: { code: err.code || 'error' } },
        h('h1', {}, 'This recording cannot be played'),
        h('p', {}, err.message || 'Something went wrong.'),
        h('a', { class: 'btn btn-secondary', href: '#/' }, 'Back to Podium')));
    document.title = 'Recording · Podium';
  });

  return {
    el,
    id: String(id),
    seek(seconds) {
      if (view) view.seek(seconds);
      else pendingSeek = seconds;
    },
    destroy() {
      destroyed = true;
      view?.destroy();
      el.remove();
    },
  };
}

function buildView(app, id, data, el) {
  let rec = data.recording;
  const chapters = data.chapters || [];
  const chat = (data.chat || []).slice().sort((a, b) => a.t_s - b.t_s);
  const speakers = (data.speakers || []).filter((s) => s.segments?.length);
  const offs = [];
  let duration = Number(data.duration_s) || 0;
  let seekWanted = null; // a seek asked for before the video could take it
  let lastReload = 0;
  let followPausedUntil = 0;
  let currentLine = -2; // the chat line and chapter last marked current
  let currentChapter = -2;

  const sourceOf = (r) => r.assets?.find((a) => a.kind === 'composite');
  const captionsOf = (r) => r.assets?.find((a) => a.kind === 'chat');
  const videoAsset = sourceOf(rec);

  // ---- the video --------------------------------------------------------------------------
  const video = h('video', {
    class: 'pb-video', testid: 'playback-video', controls: true, playsinline: true, preload: 'metadata',
    src: videoAsset ? (videoAsset.inline_url || videoAsset.url) : null,
  });
  const captionsAsset = captionsOf(rec);
  if (captionsAsset) {
    video.append(h('track', { kind: 'subtitles', label: 'Chat', srclang: 'en', src: captionsAsset.url, testid: 'playback-track' }));
  }
  const textTrack = () => video.textTracks[0] || null;
  if (textTrack()) textTrack().mode = 'hidden'; // loaded (cues readable), not shown until asked

  // ---- the timeline: progress, chapter marks, click to seek ----------------------------------
  const fill = h('div', { class: 'pb-bar-fill' });
  const marks = chapters.map((c, i) => h('button', {
    type: 'button', class: 'pb-bar-mark', testid: 'playback-chapter-mark', title: `${formatDuration(c.start_s)} ${c.title}`,
    'aria-label': `Chapter ${i + 1}: ${c.title}`, dataset: { start: String(c.start_s) },
    onclick: (ev) => { ev.stopPropagation(); seek(c.start_s); },
  }));
  const bar = h('div', {
    class: 'pb-bar', testid: 'playback-timeline', role: 'slider', tabindex: '0', 'aria-label': 'Position in the recording',
    'aria-valuemin': '0', onclick: (ev) => seek(fractionAt(ev, bar) * duration),
  }, fill, marks);

  // ---- speakers: a row each, a segment per turn ----------------------------------------------
  const speakerRows = speakers.map((sp) => {
    const track = h('div', { class: 'pb-speaker-track', onclick: (ev) => seek(fractionAt(ev, track) * duration) },
      sp.segments.map(([a, b]) => h('button', {
        type: 'button', class: 'pb-speaker-seg', testid: 'playback-speaker-segment', title: `${sp.display_name}: ${formatDuration(a)}–${formatDuration(b)}`,
        'aria-label': `${sp.display_name} speaks at ${formatDuration(a)}`, dataset: { start: String(a), end: String(b) },
        onclick: (ev) => { ev.stopPropagation(); seek(a); },
      })));
    return { sp, track, el: h('div', { class: 'pb-speaker', testid: 'playback-speaker', dataset: { userId: sp.user_id } },
      h('span', { class: 'pb-speaker-name' }, sp.display_name), track) };
  });
  const speakersEl = speakerRows.length
    ? h('div', { class: 'pb-speakers', testid: 'playback-speakers', 'aria-label': 'Who spoke when' }, speakerRows.map((r) => r.el))
    : null;

  // ---- controls --------------------------------------------------------------------------
  const timeText = h('span', { class: 'pb-time', testid: 'playback-time', 'aria-live': 'off' });
  const speed = h('select', { class: 'input-small', testid: 'playback-speed', 'aria-label': 'Playback speed',
    onchange: () => { video.playbackRate = Number(speed.value); } },
  SPEEDS.map((s) => h('option', { value: String(s), selected: s === 1 }, `${s}×`)));
  const captionsBtn = h('button', {
    type: 'button', class: 'btn btn-secondary btn-small', testid: 'playback-captions', 'aria-pressed': 'false',
    disabled: !captionsAsset, title: captionsAsset ? 'Show the chat as captions (C)' : 'This recording has no captions',
    onclick: () => toggleCaptions(),
  }, 'Captions');
  const linkOut = h('input', { type: 'text', class: 'input-small pb-link', testid: 'playback-link', readonly: true, hidden: true, 'aria-label': 'Link to this moment' });
  const linkNote = h('span', { class: 'form-note', testid: 'playback-link-note', role: 'status' });
  const copyBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'playback-copy-link', onclick: () => copyLink() },
    'Copy link at current time');

  // ---- chapters list ------------------------------------------------------------------------
  const chapterItems = chapters.map((c) => h('li', {},
    h('button', { type: 'button', class: 'pb-chapter', testid: 'playback-chapter', dataset: { start: String(c.start_s) }, onclick: () => seek(c.start_s) },
      h('span', { class: 'pb-stamp' }, formatDuration(c.start_s)), h('span', { class: 'pb-chapter-title' }, c.title))));
  const chaptersEl = h('section', { class: 'pb-section', 'aria-labelledby': 'pb-chapters-title' },
    h('h2', { id: 'pb-chapters-title', class: 'pb-h2' }, 'Chapters'),
    chapters.length
      ? h('ol', { class: 'pb-chapters', testid: 'playback-chapters' }, chapterItems)
      : h('p', { class: 'muted', testid: 'playback-no-chapters' }, 'No chapters: nobody marked a moment during this class.'));

  // ---- the chat replay --------------------------------------------------------------------
  const lineEls = chat.map((m) => h('li', { class: 'pb-line is-future', testid: 'playback-chat-line', dataset: { t: String(m.t_s), seq: String(m.seq) } },
    h('button', { type: 'button', class: 'pb-line-btn', onclick: () => seek(m.t_s), title: `Go to ${formatDuration(m.t_s)}` },
      h('span', { class: 'pb-stamp' }, formatDuration(m.t_s)),
      h('span', { class: 'pb-line-body' },
        h('span', { class: 'pb-line-author' }, m.user?.display_name || 'Someone'),
        h('span', { class: 'pb-line-text' }, m.text || (m.kind === 'text' ? '' : `(${m.kind})`))))));
  const chatList = h('ol', { class: 'pb-chat-list', testid: 'playback-chat', 'aria-label': 'Chat, in step with the video' }, lineEls);
  const search = h('input', { type: 'search', class: 'input-small pb-search', testid: 'playback-chat-search', placeholder: 'Search the chat', 'aria-label': 'Search the chat',
    oninput: () => filterChat() });
  const chatCount = h('p', { class: 'muted pb-count', testid: 'playback-chat-count' });
  const chatEl = h('aside', { class: 'pb-chat pb-section', 'aria-labelledby': 'pb-chat-title' },
    h('h2', { id: 'pb-chat-title', class: 'pb-h2' }, 'Chat'),
    chat.length ? [search, chatCount, chatList] : h('p', { class: 'muted', testid: 'playback-no-chat' }, 'Nobody wrote in the chat during this recording.'));
  for (const ev of ['wheel', 'touchmove', 'pointerdown']) {
    chatList.addEventListener(ev, () => { followPausedUntil = Date.now() + FOLLOW_PAUSE_MS; }, { passive: true });
  }

  const shortcuts = h('details', { class: 'pb-shortcuts', testid: 'playback-shortcuts' },
    h('summary', {}, 'Keyboard shortcuts'),
    h('dl', {}, SHORTCUTS.map(([k, what]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, what)])));

  const title = h('h1', { id: 'pb-title', class: 'pb-title', testid: 'playback-title' }, rec.title || 'Recording');
  const backLabel = () => `← ${app.roomTitle?.(rec.room) || 'Back to the room'}`;
  const back = h('a', { class: 'btn btn-secondary btn-small pb-back', href: `#/rooms/${encodeURIComponent(rec.room)}`, testid: 'playback-back' }, backLabel());
  // The room list (hidden under this page) retitles the tab on 'rooms'; this page's title stays.
  if (app.on) offs.push(app.on('rooms', () => { back.textContent = backLabel(); document.title = `${title.textContent} · Podium`; }));
  el.replaceChildren(
    h('header', { class: 'pb-head' },
      back,
      title),
    h('div', { class: 'pb-layout' },
      h('div', { class: 'pb-main' },
        h('div', { class: 'pb-video-wrap' }, video),
        bar,
        speakersEl,
        h('div', { class: 'pb-controls' }, timeText,
          h('label', { class: 'pb-speed' }, 'Speed ', speed), captionsBtn, copyBtn),
        h('div', { class: 'pb-linkrow' }, linkOut, linkNote),
        shortcuts,
        chaptersEl),
      chatEl));
  document.title = `${rec.title || 'Recording'} · Podium`;
  filterChat();
  update();
  // Renamed or deleted by an instructor while someone watches (recording.updated / .deleted).
  const mine = (f) => String(f.recording?.id) === String(id);
  if (app.socket?.on) {
    offs.push(app.socket.on('recording.updated', (f) => {
      if (!mine(f) || !f.recording.title) return;
      title.textContent = f.recording.title;
      document.title = `${f.recording.title} · Podium`;
    }));
    offs.push(app.socket.on('recording.deleted', (f) => {
      if (!mine(f)) return;
      video.pause();
      el.replaceChildren(h('div', { class: 'pb-error', role: 'alert', testid: 'playback-error', dataset: { code: 'deleted' } },
        h('h1', {}, 'This recording was deleted'),
        h('p', {}, 'An instructor of the room deleted it.'),
        back));
    }));
  }

  // ---- behaviour --------------------------------------------------------------------------
  function seek(seconds) {
    const s = Math.max(0, Number(seconds) || 0);
    if (video.readyState < 1) {
      seekWanted = s;
      return;
    }
    video.currentTime = duration ? Math.min(s, duration) : s;
    update();
  }

  function togglePlay() {
    if (video.paused || video.ended) video.play().catch(() => {});
    else video.pause();
  }

  function toggleCaptions() {
    const track = textTrack();
    if (!track) return;
    track.mode = track.mode === 'showing' ? 'hidden' : 'showing';
    captionsBtn.setAttribute('aria-pressed', String(track.mode === 'showing'));
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else video.requestFullscreen?.().catch(() => {});
  }

  function nudgeSpeed(step) {
    const i = SPEEDS.indexOf(video.playbackRate);
    const next = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 1 : i) + step))];
    video.playbackRate = next;
  }

  async function copyLink() {
    const url = playbackLink(id, video.currentTime);
    linkOut.value = url;
    linkOut.hidden = false;
    try {
      await navigator.clipboard.writeText(url);
      linkNote.textContent = 'Link copied.';
    } catch {
      linkOut.select();
      linkNote.textContent = 'Copy this link.';
    }
  }

  function filterChat() {
    const q = search.value;
    let shown = 0;
    chat.forEach((m, i) => {
      const ok = chatMatches(m, q);
      lineEls[i].hidden = !ok;
      if (ok) shown += 1;
    });
    chatCount.textContent = q.trim() ? `${shown} of ${chat.length} messages` : `${chat.length} message${chat.length === 1 ? '' : 's'}`;
  }

  function update() {
    const now = video.currentTime || 0;
    const total = duration || 0;
    timeText.textContent = `${formatDuration(now)} / ${formatDuration(total)}`;
    fill.style.width = total ? `${Math.min(100, (now / total) * 100)}%` : '0%';
    bar.setAttribute('aria-valuemax', String(Math.round(total)));
    bar.setAttribute('aria-valuenow', String(Math.round(now)));
    bar.setAttribute('aria-valuetext', `${formatDuration(now)} of ${formatDuration(total)}`);
    marks.forEach((m, i) => { m.style.left = total ? `${(chapters[i].start_s / total) * 100}%` : '0%'; });
    for (const row of speakerRows) {
      [...row.track.children].forEach((seg, i) => {
        const [a, b] = row.sp.segments[i];
        seg.style.left = total ? `${(Math.min(a, total) / total) * 100}%` : '0%';
        seg.style.width = total ? `${(Math.max(0, Math.min(b, total) - Math.min(a, total)) / total) * 100}%` : '0%';
        seg.classList.toggle('is-current', now >= a && now < b);
      });
    }
    const line = indexAt(chat, now, (m) => m.t_s);
    if (line !== currentLine) {
      lineEls.forEach((li, i) => {
        li.classList.toggle('is-current', i === line);
        li.classList.toggle('is-future', i > line);
        if (i === line) li.setAttribute('aria-current', 'true');
        else li.removeAttribute('aria-current');
      });
      currentLine = line;
      if (line >= 0 && Date.now() >= followPausedUntil) scrollIntoList(chatList, lineEls[line]);
    }
    const chapter = indexAt(chapters, now, (c) => c.start_s);
    if (chapter !== currentChapter) {
      chapterItems.forEach((li, i) => li.firstChild.classList.toggle('is-current', i === chapter));
      marks.forEach((m, i) => m.classList.toggle('is-current', i === chapter));
      currentChapter = chapter;
    }
  }

  async function reloadSources() {
    // Most likely the signed link expired: fetch fresh ones and carry on from here.
    if (Date.now() - lastReload < RELOAD_MIN_MS) return;
    lastReload = Date.now();
    const at = video.currentTime;
    const playing = !video.paused;
    try {
      const fresh = await loadPlayback(id);
      rec = fresh.recording;
      const src = sourceOf(rec);
      if (!src) return;
      seekWanted = at;
      video.src = src.inline_url || src.url;
      const cap = captionsOf(rec);
      const trackEl = video.querySelector('track');
      if (cap && trackEl) trackEl.src = cap.url;
      if (playing) video.play().catch(() => {});
    } catch (err) {
      console.warn(`recording ${id}: cannot fetch fresh links`, err.code);
    }
  }

  const on = (target, type, fn, opts) => {
    target.addEventListener(type, fn, opts);
    offs.push(() => target.removeEventListener(type, fn, opts));
  };
  on(video, 'timeupdate', update);
  on(video, 'seeked', update);
  on(video, 'loadedmetadata', () => {
    if (Number.isFinite(video.duration) && video.duration > 0) duration = video.duration;
    if (seekWanted !== null) {
      const s = seekWanted;
      seekWanted = null;
      seek(s);
    }
    update();
  });
  on(video, 'ratechange', () => { speed.value = String(video.playbackRate); });
  on(video, 'error', () => { reloadSources(); });
  on(window, 'keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const actions = {
      ' ': togglePlay, k: togglePlay, K: togglePlay,
      j: () => seek(video.currentTime - SEEK_BIG_S), J: () => seek(video.currentTime - SEEK_BIG_S),
      l: () => seek(video.currentTime + SEEK_BIG_S), L: () => seek(video.currentTime + SEEK_BIG_S),
      ArrowLeft: () => seek(video.currentTime - SEEK_SMALL_S), ArrowRight: () => seek(video.currentTime + SEEK_SMALL_S),
      f: toggleFullscreen, F: toggleFullscreen, c: toggleCaptions, C: toggleCaptions,
      '<': () => nudgeSpeed(-1), '>': () => nudgeSpeed(1),
    };
    const act = actions[ev.key];
    if (!act) return;
    ev.preventDefault(); // the focused control (or the video's own keys) must not act twice
    ev.stopPropagation();
    act();
  }, { capture: true });

  return {
    seek,
    destroy() {
      offs.forEach((off) => off());
      video.pause();
      video.removeAttribute('src');
      video.load();
    },
  };
}

/** Where a click fell along `el`, from 0 to 1. */
function fractionAt(ev, el) {
  const r = el.getBoundingClientRect();
  return r.width ? Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) : 0;
}

/** Scroll `list` (not the page) so `item` is in view, a little below its top. */
function scrollIntoList(list, item) {
  if (!item || item.hidden || list.scrollHeight <= list.clientHeight) return;
  const lr = list.getBoundingClientRect();
  const ir = item.getBoundingClientRect();
  if (ir.top >= lr.top && ir.bottom <= lr.bottom) return;
  list.scrollTop += ir.top - lr.top - list.clientHeight / 3;
}
