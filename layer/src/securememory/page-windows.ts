/**
 * When key pages are readable, and what a kept view can reach. Pages are PROT_NONE except during the turn of the
 * event loop in which a secret in them is read or written: the first access opens the page and schedules a
 * setImmediate that closes every open page. That keeps mprotect off the per-record path (one pair per page per
 * turn, not per access) while an idle process has no readable key page.
 *
 * The view a secret hands out covers its own bytes only, is made on its first read in a turn, and is detached
 * (zero-length) when the turn's pages close or the secret's bytes move, so a kept view never reaches a closed page
 * or another secret.
 */
import type { Allocation } from './allocation.js';
import { UNIT_BYTES as UNIT, type LockedRegion } from './locked-region.js';
import type { NativeMemory } from './native.js';

// A local copy: imported bindings compile to property reads through getters.
const UNIT_BYTES = UNIT;

export class PageWindows {
  readonly #native: NativeMemory;
  /** The regions still mapped (owned by placement): only those are closed at the end of a turn. */
  readonly #mapped: ReadonlySet<LockedRegion>;
  readonly #openRegions: LockedRegion[] = [];
  #closeScheduled = false;
  /** Allocations given a view in this turn. */
  readonly #viewed: Allocation[] = [];

  constructor(native: NativeMemory, mapped: ReadonlySet<LockedRegion>) {
    this.#native = native;
    this.#mapped = mapped;
  }

  /** Whether some page is open now (one a per-access settle would close). */
  get anyOpen(): boolean {
    return this.#openRegions.length > 0;
  }

  ensureOpen(region: LockedRegion): void {
    if (region.isOpen) return;
    region.open();
    this.trackOpen(region);
  }

  /** Counts an open region (newly mapped ones come back open) among those the end of this turn closes. */
  trackOpen(region: LockedRegion): void {
    this.#openRegions.push(region);
    if (!this.#closeScheduled) {
      this.#closeScheduled = true;
      // Its own macrotask, so no withBytes is mid-flight when it runs.
      realSetImmediate(this.#endTurn).unref();
    }
  }

  /** The allocation's view for this turn, over its own bytes only; its page must be open. */
  viewOf(a: Allocation): Uint8Array {
    const view = a.region!.viewOf(a.first * UNIT_BYTES, a.length);
    a.view = view;
    a.viewSlot = this.#viewed.length;
    this.#viewed.push(a);
    return view;
  }

  /** Ends the turn's window: detaches the views handed out and closes every page opened since the last call. */
  closeOpenRegions(): void {
    this.#closeScheduled = false;
    this.#dropAllViews();
    const open = this.#openRegions.splice(0);
    for (const region of open) if (region.isOpen && this.#mapped.has(region)) region.close();
  }

  readonly #endTurn = (): void => this.closeOpenRegions();

  /** Detaches the allocation's view, if it has one: its bytes are about to move or be zeroed. */
  dropView(a: Allocation): void {
    const view = a.view;
    if (view === null) return;
    a.view = null;
    // Out of the turn's list at once (swap-remove): a turn that never yields (a loop of warm encrypts awaiting
    // only resolved promises) frees as many secrets as it views, and the list must not grow with them.
    const viewed = this.#viewed;
    const last = viewed.pop()!;
    if (last !== a) {
      viewed[a.viewSlot] = last;
      last.viewSlot = a.viewSlot;
    }
    a.viewSlot = -1;
    this.#native.detach(view.buffer as ArrayBuffer);
  }

  /** At shutdown: every view handed out is detached, and nothing is left to close (the regions are unmapped). */
  shutdown(): void {
    this.#dropAllViews();
    this.#openRegions.length = 0;
  }

  #dropAllViews(): void {
    while (this.#viewed.length > 0) this.dropView(this.#viewed[this.#viewed.length - 1]);
  }
}

// Captured at load so that a test's fake timers can never keep key pages readable.
const realSetImmediate = setImmediate;
