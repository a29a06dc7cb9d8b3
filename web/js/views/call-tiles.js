// The call's video tiles: one per participant (ours first marked `local`), ordered and sized to fill the stage.
//
// Largest 16:9 tiles that fit; while one person presents, their tile takes the stage and the
// others line up beside it (spotlight). The recorder gets no tile.
//
// In an SFU call (calls.media 'sfu', web/js/call/sfu.js) a shared screen is a stream of its
// own and gets its own tile (`<peer_id>:screen`), which takes the stage; each remote tile asks
// for the simulcast layer its size needs (wants()), and with more than LAST_N remote cameras
// only visible tiles of the LAST_N most recent speakers get video (the others show the avatar
// and receive audio only). The active speaker (Janus's talking events) is highlighted.

import { h, initials, hueFor } from '../dom.js';
import { icon } from '../icons.js';
import { useSpeaker } from '../call/device-prefs.js';

const TILE_GAP = 10;
const TILE_RATIO = 16 / 9;
export const LAST_N = 6; // remote cameras with video at once in a big SFU call (calls.lastN overrides)
const SCREEN = ':screen';

/** The simulcast layer (0 smallest … 2 full size) a tile `width` CSS pixels wide needs. */
export function layerForWidth(width, ratio = window.devicePixelRatio || 1) {
  const px = width * ratio;
  if (px > 640) return 2;
  if (px > 320) return 1;
  return 0;
}

/** The tile area: {el, sync(), update(peerId), layout(), destroy()}; `overlays` sit on top of the grid. */
export function createTileGrid(app, ...overlays) {
  const calls = app.calls;
  const tiles = new Map(); // peer_id → tile ('local' for ours)
  const grid = h('div', { class: 'tile-grid', role: 'list', 'aria-label': 'Video' });
  const el = h('div', { class: 'tile-area' }, grid, ...overlays);

  function sync() {
    const wanted = new Map();
    if (calls.self || calls.state !== 'idle') wanted.set('local', null);
    for (const p of calls.participants.values()) {
      if (p.recorder) continue;
      wanted.set(p.peer_id, p);
      if (calls.screenOf?.(p.peer_id)) wanted.set(p.peer_id + SCREEN, p);
    }
    for (const [id, tile] of tiles) {
      if (!wanted.has(id)) {
        tile.destroy();
        tiles.delete(id);
      }
    }
    for (const id of wanted.keys()) {
      if (!tiles.has(id)) {
        const tile = createTile(id === 'local', pictureOf);
        tiles.set(id, tile);
        grid.append(tile.el);
        seen.observe(tile.el);
      }
    }
    for (const [id, tile] of tiles) updateTile(id, tile);
    // Someone presenting goes first, then raised hands; the rest keep their order.
    const ordered = [...tiles.entries()].sort(([a, ta], [b, tb]) => tileRank(b, tb) - tileRank(a, ta));
    ordered.forEach(([, tile], i) => { tile.el.style.order = String(i); });
    grid.dataset.count = String(tiles.size);
    layout();
  }

  /** A participant's picture (their avatar, from the room's members or our own profile), or null. */
  function pictureOf(userId) {
    if (!userId) return null;
    if (String(userId) === String(app.me.id)) return app.me.avatar?.large || null;
    const room = calls.session && app.store.room(String(calls.session.room));
    return room?.members.get(String(userId))?.user?.avatar?.large || null;
  }

  function tileRank(id, tile) {
    return (tile.participant?.media?.screen ? 4 : 0) + (id === 'local' ? 0 : 1);
  }

  function updateTile(id, tile) {
    if (id.endsWith(SCREEN)) { // an SFU call's shared screen: its own stream, presenting
      const p = calls.participants.get(id.slice(0, -SCREEN.length));
      tile.update({ participant: p && { ...p, media: { audio: true, video: false, screen: true } }, stream: calls.streamOf(id), local: false, connection: calls.peerState(id) });
      tile.el.dataset.source = 'screen';
      return;
    }
    if (id === 'local') {
      const p = calls.self || { user: app.me, media: calls.mediaState(), hand: calls.hand };
      tile.update({ participant: { ...p, media: calls.mediaState(), hand: calls.hand }, stream: calls.preview, local: true, connection: 'connected' });
      return;
    }
    let p = calls.participants.get(id);
    // Its screen has a tile of its own in an SFU call: this one shows the camera.
    if (p && tiles.has(id + SCREEN)) p = { ...p, media: { ...p.media, screen: false } };
    tile.update({ participant: p, stream: calls.streamOf(id), local: false, connection: calls.peerState(id) });
    tile.el.classList.toggle('talking', !!calls.talking.isTalking(id));
    tile.el.dataset.talking = calls.talking.isTalking(id) ? 'yes' : 'no';
    tile.el.style.outline = calls.talking.isTalking(id) ? '3px solid #3ddc84' : '';
  }

  /**
   * SFU calls: each remote tile's wish for its participant's video — the layer its size needs,
   * and video at all only for visible tiles of the LAST_N most recent speakers (a shared
   * screen always). The session sends sfu.configure for what changed.
   */
  function wants() {
    if (calls.media !== 'sfu') return;
    const cams = [...tiles.entries()].filter(([id]) => id !== 'local' && !id.endsWith(SCREEN));
    const order = new Map([...tiles.entries()].map(([id, t]) => [id, Number(t.el.style.order) || 0]));
    const ranked = cams.map(([id]) => id)
      .sort((x, y) => (calls.talking.lastSpokeAt(y) - calls.talking.lastSpokeAt(x)) || (order.get(x) - order.get(y)));
    const withVideo = new Set(ranked.slice(0, calls.lastN ?? LAST_N));
    for (const [id, tile] of tiles) {
      if (id === 'local') continue;
      const send = tile.visible !== false && (id.endsWith(SCREEN) || withVideo.has(id));
      const layer = layerForWidth(tile.el.clientWidth);
      calls.sfu.want(id, { layer, send });
      tile.setVideoPaused(!send);
      tile.el.dataset.layer = String(layer);
    }
  }

  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const tile = [...tiles.values()].find((t) => t.el === e.target);
      if (tile) tile.visible = e.isIntersecting;
    }
    wants();
  });

  function layout() {
    const n = Math.max(1, tiles.size);
    const W = el.clientWidth - 2 * TILE_GAP;
    const H = el.clientHeight - 2 * TILE_GAP;
    if (W <= 0 || H <= 0) return;
    const presenters = [...tiles.values()].filter((t) => t.participant?.media?.screen);
    const spotlight = presenters.length === 1 && n > 1 && W > 480;
    grid.classList.toggle('spotlight', spotlight);
    for (const t of tiles.values()) t.el.classList.toggle('spotlit', spotlight && t === presenters[0]);
    const sides = [...tiles.values()].filter((t) => t !== presenters[0]).sort((x, y) => Number(x.el.style.order) - Number(y.el.style.order));
    sides.forEach((t, i) => {
      t.el.style.gridRow = spotlight ? String(i + 2) : '';
      t.el.style.gridColumn = spotlight ? '2' : '';
    });
    if (spotlight) spotlightSizes(grid, W, H, sides.length);
    else gridSizes(grid, W, H, n);
    requestAnimationFrame(wants); // once the tiles have their new sizes
  }

  const resize = new ResizeObserver(() => layout());
  resize.observe(el);

  return {
    el,
    sync,
    layout,
    /** A remote participant's stream or connection state changed. */
    update(peerId) {
      const id = String(peerId);
      if (id.endsWith(SCREEN)) {
        sync(); // a shared screen came or went (SFU calls): the tiles change
        return;
      }
      const t = tiles.get(id);
      if (!t) return;
      updateTile(id, t);
      wants();
    },
    /** Who talks changed (SFU calls): the highlight, and who gets video. */
    talking() {
      for (const [id, t] of tiles) if (id !== 'local') updateTile(id, t);
      wants();
    },
    destroy() {
      resize.disconnect();
      seen.disconnect();
      for (const tile of tiles.values()) tile.destroy();
    },
  };
}

/** The presenter's tile beside a column of the `others`. */
function spotlightSizes(grid, W, H, others) {
  const sideW = Math.min(260, Math.max(140, W * 0.22));
  let mainW = W - sideW - TILE_GAP;
  const mainH = Math.min(H, mainW / TILE_RATIO);
  mainW = Math.min(mainW, mainH * TILE_RATIO);
  const sideH = Math.max(24, Math.min(sideW / TILE_RATIO, (mainH - TILE_GAP * (others + 1)) / others));
  grid.style.setProperty('--main-w', `${Math.floor(mainW)}px`);
  grid.style.setProperty('--main-h', `${Math.floor(mainH)}px`);
  grid.style.setProperty('--side-w', `${Math.floor(sideW)}px`);
  grid.style.setProperty('--side-h', `${Math.floor(sideH)}px`);
  grid.style.setProperty('--rows', String(others));
}

/** `n` equal tiles: try every column count, keep the biggest tile. */
function gridSizes(grid, W, H, n) {
  let best = { cols: 1, w: 0, hgt: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - TILE_GAP * (cols - 1)) / cols;
    let hgt = (H - TILE_GAP * (rows - 1)) / rows;
    if (w / hgt > TILE_RATIO) w = hgt * TILE_RATIO;
    else hgt = w / TILE_RATIO;
    if (w > best.w) best = { cols, w, hgt };
  }
  grid.style.setProperty('--cols', String(best.cols));
  grid.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
  grid.style.setProperty('--tile-h', `${Math.floor(best.hgt)}px`);
}

// ---- one video tile ---------------------------------------------------------------------------

function createTile(local, pictureOf = () => null) {
  const video = h('video', { testid: local ? 'local-video' : 'remote-video', autoplay: true, playsinline: '', muted: local });
  video.muted = local; // the property, not only the attribute: never play our own microphone back
  if (!local) useSpeaker(video); // the speaker chosen in the device check or menu
  const avatar = h('span', { class: 'avatar tile-avatar-circle', 'aria-hidden': 'true' });
  const avatarWrap = h('div', { class: 'tile-avatar' }, avatar);
  const name = h('span', { class: 'tile-name' });
  const mic = h('span', { class: 'tile-icon tile-mic', testid: 'mic-indicator', title: 'Microphone off' }, icon('mic-off', { size: 14, label: 'Microphone off' }));
  const cam = h('span', { class: 'tile-icon', testid: 'camera-indicator', title: 'Camera off' }, icon('video-off', { size: 14, label: 'Camera off' }));
  const screen = h('span', { class: 'tile-chip tile-screen', testid: 'screen-indicator' }, icon('screen', { size: 14 }), 'Presenting');
  const hand = h('span', { class: 'tile-chip tile-hand', testid: 'hand-indicator', role: 'img', 'aria-label': 'Hand raised' }, icon('hand', { size: 15 }), 'Hand raised');
  const conn = h('span', { class: 'tile-conn' });
  const sound = h('button', { type: 'button', class: 'tile-sound', hidden: true, onclick: () => unblock() }, icon('volume', { size: 15 }), 'Click to hear');
  const el = h('div', { class: `video-tile${local ? ' local' : ''}`, testid: 'video-tile', role: 'listitem' },
    video, avatarWrap,
    h('div', { class: 'tile-top' }, hand, screen),
    h('div', { class: 'tile-bottom' }, mic, cam, name),
    conn, sound);
  let bound = null;
  let last = null;
  const tile = { el, participant: null, videoPaused: false, visible: true };

  /** SFU calls: this tile's video is not sent to us (last-N): show the avatar instead. */
  tile.setVideoPaused = (paused) => {
    if (tile.videoPaused === paused) return;
    tile.videoPaused = paused;
    el.dataset.sfuVideo = paused ? 'off' : 'on';
    if (last) tile.update(last);
  };

  function play() {
    const p = video.play();
    if (!p) return;
    p.catch((err) => {
      if (err.name === 'NotAllowedError' && !video.muted) {
        // Autoplay with sound was refused: play muted and offer a button to hear.
        video.muted = true;
        sound.hidden = false;
        video.play().catch(() => {});
      }
    });
  }

  function unblock() {
    video.muted = false;
    sound.hidden = true;
    play();
  }

  tile.update = (state) => {
    last = state;
    const { participant, stream, connection } = state;
    tile.participant = participant;
    const user = participant?.user || {};
    const display = user.display_name || 'Guest';
    if (participant?.peer_id && !local) el.dataset.peerId = participant.peer_id;
    if (local && participant?.peer_id) el.dataset.peerId = participant.peer_id;
    el.dataset.userId = user.id || '';
    name.textContent = local ? `${display} (you)` : display;
    // Camera off: the person's picture, else their initials on their colour.
    const picture = pictureOf(user.id);
    if (picture) {
      if (avatar.querySelector('img')?.getAttribute('src') !== picture) {
        avatar.replaceChildren(h('img', { class: 'avatar-img', src: picture, alt: '', testid: 'tile-avatar-img' }));
      }
    } else {
      avatar.textContent = initials(display);
    }
    avatar.style.setProperty('--hue', String(hueFor(user.id || display)));
    const media = participant?.media || {};
    const hasVideo = !!stream && stream.getVideoTracks().some((t) => t.readyState === 'live');
    const showVideo = hasVideo && (media.video || media.screen) && !tile.videoPaused;
    el.classList.toggle('cam-off', !showVideo);
    el.classList.toggle('presenting', !!media.screen);
    el.classList.toggle('hand-up', !!participant?.hand);
    el.dataset.audio = media.audio ? 'on' : 'off';
    el.dataset.video = media.video ? 'on' : 'off';
    el.dataset.screen = media.screen ? 'on' : 'off';
    el.dataset.hand = participant?.hand ? 'up' : 'down';
    mic.hidden = !!media.audio;
    mic.dataset.muted = String(!media.audio);
    cam.hidden = !!media.video || !!media.screen;
    screen.hidden = !media.screen;
    hand.hidden = !participant?.hand;
    el.setAttribute('aria-label', `${display}${media.audio ? '' : ', muted'}${participant?.hand ? ', hand raised' : ''}`);
    if (!local) {
      const waiting = connection === 'new' || connection === 'connecting';
      const broken = connection === 'disconnected' || connection === 'failed';
      conn.textContent = waiting ? 'Connecting…' : broken ? 'Reconnecting…' : '';
      conn.hidden = !waiting && !broken;
      el.dataset.connection = connection || 'new';
    } else {
      conn.hidden = true;
    }
    if (bound !== stream) {
      bound = stream;
      video.srcObject = stream || null;
      if (stream) play();
    }
  };

  tile.destroy = () => {
    video.srcObject = null;
    el.remove();
  };
  return tile;
}
