// Our own profile's actions: display name, picture and password (views/profile.js, as `app.profile`).

import * as api from './api.js';

export class ProfileActions {
  constructor(app) {
    this.app = app;
  }

  async rename(displayName) {
    const { user } = await api.rename(displayName);
    this.app.onUserUpdated(user);
  }

  async setAvatar(file) {
    const { user } = await api.uploadAvatar(file);
    this.app.onUserUpdated(user);
  }

  async removeAvatar() {
    const { user } = await api.removeAvatar();
    this.app.onUserUpdated(user);
  }

  /**
   * Change the password. The server signs out every other token and socket of ours, this
   * tab's socket too: we carry on with the token it returns and reconnect with it
   * (`app.rekeying` tells the sign-out paths that meanwhile a 401 is not an expiry).
   */
  async changePassword(oldPassword, newPassword) {
    const { app } = this;
    app.rekeying = true;
    try {
      const { token, user } = await api.changePassword(oldPassword, newPassword);
      api.setToken(token);
      app.onUserUpdated(user);
    } finally {
      app.rekeying = false;
    }
    app.socket.restart();
  }
}
