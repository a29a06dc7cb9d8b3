// The profile dialog: one's picture (upload, remove), display name and password.

import { h, avatarFor } from '../dom.js';
import { openModal } from './modal.js';

const MAX_PICTURE_BYTES = 5 * 1024 * 1024; // the server's limit (server/accounts/avatars.py)

export function openProfile(app) {
  const picture = h('div', { class: 'profile-picture', testid: 'profile-avatar' });
  const fileInput = h('input', {
    type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', testid: 'avatar-input', class: 'sr-only',
    id: 'profile-avatar-file', onchange: () => upload(),
  });
  const removeBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'avatar-remove', onclick: () => remove() }, 'Remove');
  const pictureNote = h('p', { class: 'form-note', role: 'status' });

  const nameInput = h('input', { id: 'profile-name', testid: 'profile-name', maxlength: '128', autocomplete: 'name', value: app.me.display_name || '' });
  const nameNote = h('p', { class: 'form-note', role: 'status' });
  const nameForm = h('form', { class: 'profile-section', onsubmit: (ev) => { ev.preventDefault(); rename(); } },
    h('div', { class: 'field' }, h('label', { for: 'profile-name' }, 'Display name'), nameInput),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'profile-name-save' }, 'Save name')),
    nameNote);

  const oldPw = h('input', { id: 'profile-old-password', type: 'password', testid: 'old-password', autocomplete: 'current-password' });
  const newPw = h('input', { id: 'profile-new-password', type: 'password', testid: 'new-password', autocomplete: 'new-password' });
  const pwNote = h('p', { class: 'form-note', role: 'status', testid: 'password-note' });
  const pwForm = h('form', { class: 'profile-section', onsubmit: (ev) => { ev.preventDefault(); changePassword(); } },
    h('div', { class: 'field' }, h('label', { for: 'profile-old-password' }, 'Current password'), oldPw),
    h('div', { class: 'field' }, h('label', { for: 'profile-new-password' }, 'New password'), newPw),
    h('p', { class: 'muted form-hint' }, 'Changing it signs you out everywhere else.'),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'password-save' }, 'Change password')),
    pwNote);

  const body = h('div', { class: 'modal-body profile-body' },
    h('section', { class: 'profile-section profile-picture-row' },
      picture,
      h('div', {},
        h('label', { for: 'profile-avatar-file', class: 'btn btn-small btn-secondary', testid: 'avatar-choose' }, 'Upload picture'),
        fileInput, removeBtn,
        h('p', { class: 'muted form-hint' }, 'PNG, JPEG, GIF or WebP, up to 5 MB.'),
        pictureNote)),
    nameForm,
    pwForm);

  function showPicture() {
    picture.replaceChildren(avatarFor(app.me.avatar ? { ...app.me, avatar: { small: app.me.avatar.large } } : app.me, { cls: 'avatar-lg' }));
    removeBtn.hidden = !app.me.avatar;
  }

  function note(el, text, error = false) {
    el.textContent = text;
    el.classList.toggle('error', error);
  }

  async function upload() {
    const file = fileInput.files?.[0];
    fileInput.value = '';
    if (!file) return;
    if (file.size > MAX_PICTURE_BYTES) return note(pictureNote, 'That picture is over 5 MB.', true);
    note(pictureNote, 'Uploading…');
    try {
      await app.profile.setAvatar(file);
      note(pictureNote, 'Picture updated.');
    } catch (err) {
      note(pictureNote, err.message || 'Could not upload the picture.', true);
    }
  }

  async function remove() {
    try {
      await app.profile.removeAvatar();
      note(pictureNote, 'Picture removed.');
    } catch (err) {
      note(pictureNote, err.message || 'Could not remove the picture.', true);
    }
  }

  async function rename() {
    const name = nameInput.value.trim();
    if (!name) return note(nameNote, 'Your name cannot be empty.', true);
    try {
      await app.profile.rename(name);
      note(nameNote, 'Name saved.');
    } catch (err) {
      note(nameNote, err.message || 'Could not save the name.', true);
    }
  }

  async function changePassword() {
    if (!oldPw.value || !newPw.value) return note(pwNote, 'Enter your current and your new password.', true);
    try {
      await app.profile.changePassword(oldPw.value, newPw.value);
      oldPw.value = '';
      newPw.value = '';
      note(pwNote, 'Password changed. Your other sessions are signed out.');
    } catch (err) {
      note(pwNote, err.message || 'Could not change the password.', true);
    }
  }

  const off = app.on('me', showPicture);
  showPicture();
  return openModal({
    testid: 'profile-dialog', className: 'profile-modal', titleId: 'profile-title', title: 'Your profile',
    subtitle: `Signed in as ${app.me.username || app.me.display_name}`, closeTestid: 'profile-close',
    body: [body], onClose: off,
  });
}
