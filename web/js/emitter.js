// Minimal event emitter: on() returns an unsubscribe function.

export class Emitter {
  #handlers = new Map();

  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.#handlers.get(type)?.delete(fn);
  }

  emit(type, payload) {
    // Iterate over a copy: a handler may unsubscribe itself while we dispatch.
    for (const fn of [...(this.#handlers.get(type) || [])]) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`handler for "${type}" failed`, err);
      }
    }
  }
}
