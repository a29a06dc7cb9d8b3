// Boot: restore the session or show sign-in, start the app, route #/rooms/<id> and #/recordings/<id> (the playback page).
//
// The session's token is in localStorage; the route is the hash (#/rooms/<id>, #/recordings/<id>?t=…).

import './lti-handoff.js'; // first: storage in an LMS's frame, the token of an LTI launch
import * as api from './api.js';
import { App, rememberUser, rememberedUser } from './app.js';
import { createAuthView } from './views/auth.js';
import { createShell } from './views/shell.js';
import { createPlaybackPage } from './views/playback-page.js';
import { parsePlaybackRoute } from './playback.js';

const root = document.getElementById('app');
let app = null;
let shell = null;
let playback = null; // the playback page of a recording (#/recordings/<id>), shown instead of the shell

function showAuth(notice = null) {
  const view = createAuthView({
    notice,
    onAuthenticated: ({ token, user }) => {
      api.setToken(token);
      rememberUser(user);
      startApp(user);
    },
  });
  root.replaceChildren(view.el);
  document.title = 'Sign in · Podium';
}

function startApp(user) {
  app = new App(user, {
    onLogout: (reason) => {
      closePlayback();
      shell?.destroy();
      shell = null;
      app = null;
      if (location.hash) history.replaceState(null, '', location.pathname);
      showAuth(reason);
    },
  });
  shell = createShell(app);
  root.replaceChildren(shell.el);
  app.start();
  route();
}

function route() {
  if (!app) return;
  const rec = parsePlaybackRoute(location.hash, location.search);
  if (rec) {
    if (playback?.id === rec.id) {
      if (rec.t !== null) playback.seek(rec.t);
      return;
    }
    closePlayback();
    app.selectRoom(null);
    playback = createPlaybackPage(app, rec);
    shell.el.hidden = true;
    root.append(playback.el);
    return;
  }
  closePlayback();
  const match = /^#\/rooms\/(.+)$/.exec(location.hash);
  app.selectRoom(match ? decodeURIComponent(match[1]) : null);
}

function closePlayback() {
  if (!playback) return;
  playback.destroy();
  playback = null;
  if (shell) shell.el.hidden = false;
  document.title = 'Podium';
}

async function boot() {
  // For the browser console and browser tests: podium.app (live call: podium.app.calls).
  window.podium = Object.freeze({ get app() { return app; } });
  window.addEventListener('hashchange', route);
  api.onUnauthorized(() => app?.logout('Your session has expired. Please sign in again.', { keepOutbox: true }));
  if (!api.getToken()) return showAuth();
  try {
    const { user } = await api.me();
    rememberUser(user);
    startApp(user);
  } catch (err) {
    const cached = rememberedUser();
    if (err.status === 0 && cached) {
      // Server unreachable: start from the remembered user; the socket keeps retrying.
      startApp(cached);
    } else {
      api.setToken(null);
      showAuth(err.status === 401 ? 'Your session has expired. Please sign in again.' : null);
    }
  }
}

boot();
