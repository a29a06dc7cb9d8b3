// LTI platform storage (1EdTech "LTI Client Side postMessages", lti.put_data / lti.get_data):
// for a browser that refuses Podium's state cookie even partitioned, the login's state is kept
// by the LMS, in its frame named by lti_storage_target (server/lti/binding.py, pages.py).
// - At login (#podium-lti-login): put lti_state_<state> there, then go on to the LMS's
//   authorization endpoint (also when the LMS does not answer: the cookie may still work).
// - podiumLtiStorage.get() is what /lti-launch.js uses to check a launch that came without the
//   cookie: only the browser that started the login finds the state in its LMS's storage.
// Messages go to that frame with the platform's origin as targetOrigin; an answer counts only
// from that frame and origin, with our message_id and the .response subject.
(() => {
  const TIMEOUT_MS = 3000;

  function storageFrame(target) {
    const parent = window.opener || window.parent;
    if (!parent || parent === window) return null; // not framed nor opened by the LMS
    if (target === '_parent') return parent;
    try { return parent.frames[target] || null; } catch { return null; }
  }

  function send(target, origin, message) {
    return new Promise((resolve, reject) => {
      const frame = storageFrame(target);
      if (!frame) { reject(new Error('no platform storage frame')); return; }
      const id = 'podium-' + Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(36)).join('');
      const timer = setTimeout(() => { window.removeEventListener('message', onMessage); reject(new Error('no answer')); }, TIMEOUT_MS);
      function onMessage(event) {
        const data = event.data;
        if (event.origin !== origin || event.source !== frame || !data || typeof data !== 'object'
            || data.message_id !== id || data.subject !== message.subject + '.response') return;
        clearTimeout(timer);
        window.removeEventListener('message', onMessage);
        if (data.error) reject(new Error(String(data.error.message || data.error.code || 'error')));
        else resolve(data);
      }
      window.addEventListener('message', onMessage);
      frame.postMessage({ ...message, message_id: id }, origin);
    });
  }

  window.podiumLtiStorage = {
    put: (target, origin, key, value) => send(target, origin, { subject: 'lti.put_data', key, value }),
    get: (target, origin, key) => send(target, origin, { subject: 'lti.get_data', key }).then((d) => d.value),
  };

  const login = document.getElementById('podium-lti-login');
  if (login) {
    const { target, origin, state, next } = login.dataset;
    window.podiumLtiStorage.put(target, origin, `lti_state_${state}`, state)
      .catch(() => {})
      .then(() => location.replace(next));
  }
})();
