/**
 * An SK or IK in use: its secret bytes, Created and Revoked, and a reference count so that a cache can evict a
 * key while an operation still holds it (the secret is zeroed when the last holder releases it).
 */
import type { Secret } from '../securememory/secret.js';
import { redactWith } from './redact.js';

export class CryptoKey {
  #refs = 0;
  #retired = false;

  constructor(
    readonly secret: Secret,
    readonly created: number,
    public revoked: boolean,
  ) {}

  /** Takes `count` references; the key stays usable until each is released. */
  acquire(count = 1): this {
    this.#refs += count;
    return this;
  }

  release(): void {
    if (--this.#refs <= 0 && this.#retired) this.secret.close();
  }

  /** Zeroes the key now, even if an operation holds it: that operation's next use of it is a typed error. */
  wipe(): void {
    this.#retired = true;
    this.secret.close();
  }

  /** No cache holds the key any more: zero it once nobody uses it. */
  retire(): void {
    this.#retired = true;
    if (this.#refs <= 0) this.secret.close();
  }
}

redactWith(CryptoKey, (k) => ({ created: k.created, revoked: k.revoked }));
