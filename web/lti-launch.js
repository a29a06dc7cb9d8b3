// LTI launch hand-off (server/lti/pages.py): open the course room in the web client, handing it
// the token in the URL fragment (never sent to a server; js/lti-handoff.js keeps it as api.js
// does and removes it from the address). No cookie and no storage here: a cross-site frame
// may have neither.
// A launch that came without the login's state cookie is wrapped in #podium-lti-check: it is
// handed off (or its Deep Linking form shown) only when the LMS's platform storage of this
// browser holds the same state (/lti-storage.js); otherwise the page says why and stops.
function handOff() {
  const el = document.getElementById('podium-lti');
  if (!el) return;
  const { token, room, recording } = el.dataset;
  const extra = recording ? `&recording=${encodeURIComponent(recording)}` : '';
  location.replace(`/#lti-token=${encodeURIComponent(token)}&room=${encodeURIComponent(room)}${extra}`);
}

const check = document.getElementById('podium-lti-check');
if (!check) {
  handOff();
} else {
  const { target, origin, state } = check.dataset;
  const note = document.getElementById('podium-lti-checking');
  const found = window.podiumLtiStorage
    ? window.podiumLtiStorage.get(target, origin, `lti_state_${state}`).then((v) => v === state, () => false)
    : Promise.resolve(false);
  found.then((ok) => {
    if (ok) {
      note.remove();
      check.hidden = false;
      handOff();
      return;
    }
    check.remove(); // the token of a launch this browser did not start goes nowhere
    note.id = 'lti-error';
    note.textContent = 'This launch did not start in this browser, so Podium does not sign you in: '
      + 'open Podium again from the course in your learning platform.';
    const h1 = document.createElement('h1');
    h1.textContent = 'Podium could not open this course';
    note.before(h1);
  });
}
