// Sign-in / sign-up screen. Calls onAuthenticated({token, user}) on success.

import * as api from '../api.js';
import { h } from '../dom.js';

// The rule the server enforces for new passwords (server/accounts/password_rules.py
// PASSWORD_RULE), shown under the password field when signing up, before anyone fails it.
const PASSWORD_RULE = 'Use 8 or more characters that are hard to guess: not a common password, not a pattern like 12345678, qwertyui or aaaaaaaa, and not your username. A few unrelated words work well.';

export function createAuthView({ onAuthenticated, notice = null }) {
  let mode = 'login';

  const title = h('h2', { class: 'auth-title', id: 'auth-title' }, 'Sign in');
  const username = h('input', {
    id: 'auth-username', name: 'username', testid: 'username', autocomplete: 'username',
    required: true, autocapitalize: 'none', spellcheck: 'false', maxlength: '64',
  });
  const displayName = h('input', {
    id: 'auth-display-name', name: 'display_name', testid: 'display-name', autocomplete: 'name', maxlength: '80',
  });
  const password = h('input', {
    id: 'auth-password', name: 'password', type: 'password', testid: 'password',
    autocomplete: 'current-password', required: true,
  });
  const passwordHint = h('p', { class: 'hint', id: 'auth-password-hint', testid: 'password-hint', hidden: true },
    PASSWORD_RULE);
  const displayField = h('div', { class: 'field', hidden: true },
    h('label', { for: 'auth-display-name' }, 'Display name'),
    displayName,
    h('p', { class: 'hint' }, 'How students and colleagues will see you, e.g. “Dr. Ana Lima”.'));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const loginBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'login' }, 'Sign in');
  const signupBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'signup', hidden: true }, 'Create account');
  const showSignup = h('button', { type: 'button', class: 'link-btn', testid: 'show-signup', onclick: () => setMode('signup') }, 'Create an account');
  const showLogin = h('button', { type: 'button', class: 'link-btn', testid: 'show-login', onclick: () => setMode('login') }, 'Sign in instead');
  const switchLogin = h('p', { class: 'auth-switch' }, 'New to Podium? ', showSignup);
  const switchSignup = h('p', { class: 'auth-switch', hidden: true }, 'Already have an account? ', showLogin);

  const form = h('form', { class: 'auth-form', 'aria-labelledby': 'auth-title', novalidate: true, onsubmit: submit },
    title,
    notice ? h('p', { class: 'form-notice', role: 'status' }, notice) : null,
    h('div', { class: 'field' }, h('label', { for: 'auth-username' }, 'Username'), username),
    displayField,
    h('div', { class: 'field' }, h('label', { for: 'auth-password' }, 'Password'), password, passwordHint),
    error,
    loginBtn,
    signupBtn,
    switchLogin,
    switchSignup);

  const el = h('main', { class: 'auth-screen' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'P'),
        h('div', {}, h('h1', {}, 'Podium'), h('p', { class: 'muted' }, 'Live classes, course chat and recordings'))),
      form));

  function setMode(next) {
    mode = next;
    const signup = mode === 'signup';
    title.textContent = signup ? 'Create your account' : 'Sign in';
    displayField.hidden = !signup;
    loginBtn.hidden = signup;
    signupBtn.hidden = !signup;
    switchLogin.hidden = signup;
    switchSignup.hidden = !signup;
    password.autocomplete = signup ? 'new-password' : 'current-password';
    passwordHint.hidden = !signup;
    if (signup) password.setAttribute('aria-describedby', passwordHint.id);
    else password.removeAttribute('aria-describedby');
    showError(null);
    (signup && username.value ? displayName : username).focus();
  }

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  async function submit(ev) {
    ev.preventDefault();
    const u = username.value.trim();
    const p = password.value;
    if (!u || !p) return showError('Enter your username and password.');
    const button = mode === 'signup' ? signupBtn : loginBtn;
    button.disabled = true;
    showError(null);
    try {
      const result = mode === 'signup'
        ? await api.register(u, p, displayName.value.trim() || u)
        : await api.login(u, p);
      onAuthenticated(result);
    } catch (err) {
      showError(describe(err, mode));
      button.disabled = false;
    }
  }

  queueMicrotask(() => username.focus());
  return { el };
}

function describe(err, mode) {
  if (mode === 'login' && (err.status === 401 || err.code === 'unauthorized')) return 'Wrong username or password.';
  if (mode === 'signup' && err.code === 'conflict') return 'That username is taken. Try another one.';
  if (mode === 'signup' && err.status === 403) return 'Sign-up is disabled on this server. Ask your administrator for an account.';
  if (err.code === 'rate_limited' && err.message) return `${sentence(err.message)}.`;
  // A refused password: the rule is already under the field, so say only what was wrong.
  if (mode === 'signup' && err.code === 'bad_request' && err.message?.endsWith(PASSWORD_RULE)) {
    return sentence(err.message.slice(0, -PASSWORD_RULE.length).trim());
  }
  return err.message ? sentence(err.message) : 'Something went wrong. Please try again.';
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
