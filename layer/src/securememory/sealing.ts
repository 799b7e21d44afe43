/**
 * What happens when the locked units are all taken: the least recently used secrets are sealed, AES-256-GCM under
 * a wrapping key that itself lives in locked memory, and unsealed into a locked unit only while in use. So any
 * number of secrets fit in Lambda's 64 KiB, and reaching the limit never crashes.
 *
 * It keeps the list of resident secrets and picks victims from it with CLOCK (a hand sweeping the list, sparing
 * secrets used since it last passed); pinned secrets (in a withBytes) and secrets larger than a page are never
 * sealed. Each blob is bound to its secret by the AAD and takes a fresh counter nonce.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { bytesOf, type Allocation } from './allocation.js';
import { SecureMemoryError } from './errors.js';
import { UNIT_BYTES as UNIT, type LockedRegion } from './locked-region.js';
import type { PageWindows } from './page-windows.js';
import type { Placement } from './placement.js';
import type { SecureMemoryLogger } from './types.js';

// A local copy: imported bindings compile to property reads through getters.
const UNIT_BYTES = UNIT;

export const WRAP_KEY_BYTES = 32;
const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

export class Sealer {
  readonly #windows: PageWindows;
  readonly #placement: Placement;
  readonly #logger: SecureMemoryLogger;
  /** Secrets whose bytes are in a region, that sealing may take (not the arena's own pinned units). */
  readonly #resident: Allocation[] = [];
  #hand = 0;
  /** A pinned unit, never sealed nor in the resident list; undefined until the first secret (and at shutdown). */
  #wrapKey: Allocation | undefined;
  readonly #nonce = Buffer.alloc(GCM_NONCE_BYTES);
  readonly #aad = Buffer.alloc(8);
  #warnedSealing = false;
  readonly #counters = { sealed: 0, seals: 0, unseals: 0 };

  constructor(windows: PageWindows, placement: Placement, logger: SecureMemoryLogger) {
    this.#windows = windows;
    this.#placement = placement;
    this.#logger = logger;
  }

  get residentSecrets(): number {
    return this.#resident.length;
  }

  get sealedSecrets(): number {
    return this.#counters.sealed;
  }

  get seals(): number {
    return this.#counters.seals;
  }

  get unseals(): number {
    return this.#counters.unseals;
  }

  /** Counts a newly placed allocation among those sealing may take. */
  admit(a: Allocation): void {
    if (a.slot === -1) {
      a.slot = this.#resident.length;
      this.#resident.push(a);
    }
  }

  /** Takes an allocation out of the resident list: it is being freed or sealed. */
  evict(a: Allocation): void {
    const list = this.#resident;
    const last = list.pop()!;
    if (last !== a) {
      list[a.slot] = last;
      last.slot = a.slot;
    }
    a.slot = -1;
  }

  /** Frees a sealed allocation: its blob is zeroed and dropped. */
  discard(a: Allocation): void {
    a.sealed!.fill(0);
    a.sealed = null;
    this.#counters.sealed--;
  }

  /**
   * Seals least recently used secrets until a run of `units` is free in the region of one of them, and returns
   * it; undefined if every candidate is in use. Call only for runs within a page: sealing frees units, not pages.
   */
  makeRoom(units: number, strict: boolean): [LockedRegion, number] | undefined {
    this.#warnSealing();
    for (let attempts = this.#resident.length; attempts > 0; attempts--) {
      const victim = this.#pickVictim(strict);
      if (victim === undefined) break;
      const region = victim.region!;
      this.#seal(victim);
      const first = region.findRun(units);
      // seal() keeps the region mapped (no spare release), so the freed run is usable here.
      if (first !== -1) return [region, first];
    }
    return undefined;
  }

  /**
   * Decrypts a sealed allocation into the units the arena has just given it. If the blob fails authentication,
   * the units are given back (zeroed) and it stays sealed, so every later read fails the same way.
   */
  unsealInto(a: Allocation): void {
    const sealed = a.sealed!;
    const bodyLength = sealed.length - GCM_TAG_BYTES - GCM_NONCE_BYTES;
    const wrap = this.#wrapKey!;
    this.#windows.ensureOpen(wrap.region!);
    const decipher = createDecipheriv('aes-256-gcm', bytesOf(wrap), sealed.subarray(sealed.length - GCM_NONCE_BYTES));
    decipher.setAAD(this.#aadFor(a));
    decipher.setAuthTag(sealed.subarray(bodyLength, bodyLength + GCM_TAG_BYTES));
    // node:crypto can only return plaintext in a buffer of its own: copy it into the locked unit, then zero it.
    const plain = decipher.update(sealed.subarray(0, bodyLength));
    try {
      this.#write(a, plain);
      decipher.final();
    } catch (err) {
      // Undo the placement (zeroing the unit) and stay sealed: every later read fails the same way.
      this.evict(a);
      this.#placement.release(a, true);
      throw new SecureMemoryError(
        'a sealed secret failed authentication: process memory was corrupted; restart the process',
        { cause: err },
      );
    } finally {
      plain.fill(0);
    }
    sealed.fill(0);
    a.sealed = null;
    this.#counters.unseals++;
    this.#counters.sealed--;
  }

  /**
   * Makes a newly placed pinned unit the wrapping key: random bytes for the first one; a later one (moved into
   * locked pages for the first strict secret) keeps the old key's bytes, which sealed secrets need, and the old
   * unit is given back.
   */
  useWrapKey(wrap: Allocation): void {
    const old = this.#wrapKey;
    if (old === undefined) {
      randomFillSync(wrap.region!.bytes, wrap.first * UNIT_BYTES, WRAP_KEY_BYTES);
    } else {
      this.#windows.ensureOpen(old.region!);
      this.#write(wrap, bytesOf(old));
      this.#placement.release(old, true);
    }
    this.#wrapKey = wrap;
  }

  /** At shutdown: resident secrets lose their place (the regions are about to be unmapped). */
  shutdown(): void {
    for (const a of this.#resident) a.region = null;
    this.#resident.length = 0;
    this.#wrapKey = undefined;
  }

  /** CLOCK: the first unpinned secret the hand finds not used since it last passed (clearing the marks it passes). */
  #pickVictim(strict: boolean): Allocation | undefined {
    const list = this.#resident;
    const pageUnits = this.#placement.unitsPerPage;
    for (let step = 0; step < 2 * list.length; step++) {
      if (this.#hand >= list.length) this.#hand = 0;
      const candidate = list[this.#hand++];
      if (candidate.pins > 0 || (strict && !candidate.region!.locked)) continue;
      // Once sealed, a secret larger than a page could come back only into whole free pages, which may never be
      // there again: it stays resident, so that an open secret always stays readable.
      if (candidate.units > pageUnits) continue;
      if (candidate.referenced) {
        candidate.referenced = false;
        continue;
      }
      return candidate;
    }
    return undefined;
  }

  #seal(a: Allocation): void {
    const wrap = this.#wrapKey!;
    this.#windows.ensureOpen(a.region!);
    this.#windows.ensureOpen(wrap.region!);
    const nonce = this.#nextNonce();
    const cipher = createCipheriv('aes-256-gcm', bytesOf(wrap), nonce);
    cipher.setAAD(this.#aadFor(a));
    const body = cipher.update(bytesOf(a));
    cipher.final();
    // A blob of its own, not a slice of Node's shared 8 KiB pool: a long-lived sealed secret would otherwise keep a
    // whole pool slab alive for as long as it stays sealed.
    const tag = cipher.getAuthTag();
    const sealed = Buffer.allocUnsafeSlow(body.length + tag.length + nonce.length);
    body.copy(sealed, 0);
    tag.copy(sealed, body.length);
    nonce.copy(sealed, body.length + tag.length);
    a.sealed = sealed;
    this.evict(a);
    this.#placement.release(a, false);
    this.#counters.seals++;
    this.#counters.sealed++;
  }

  /** Copies `source` (of the allocation's length) into its resident units. */
  #write(a: Allocation, source: Uint8Array): void {
    const region = a.region!;
    this.#windows.ensureOpen(region);
    region.bytes.set(source, a.first * UNIT_BYTES);
  }

  #nextNonce(): Buffer {
    // A counter nonce: the wrapping key is fresh for each process, so (key, nonce) never repeats.
    const nonce = this.#nonce;
    const low = nonce.readUInt32LE(0) + 1;
    nonce.writeUInt32LE(low >>> 0, 0);
    if (low > 0xffffffff) nonce.writeUInt32LE(nonce.readUInt32LE(4) + 1, 4);
    return Buffer.from(nonce);
  }

  /** Binds a sealed blob to its secret, so blobs cannot be swapped between secrets. */
  #aadFor(a: Allocation): Buffer {
    this.#aad.writeDoubleLE(a.id, 0);
    return this.#aad;
  }

  #warnSealing(): void {
    if (this.#warnedSealing) return;
    this.#warnedSealing = true;
    const placement = this.#placement;
    this.#logger.warn('secure memory: locked-memory budget reached; least recently used secrets are now sealed', {
      lockedBytes: placement.lockedBytes,
      maxLockedBytes: placement.maxLockedBytes,
      memlockSoft: placement.facts.memlockSoft,
    });
  }
}
