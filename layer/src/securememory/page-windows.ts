/**
 * When key pages are readable, and what a view handed out can reach. Pages are PROT_NONE except during the turn of
 * the event loop in which a secret in them is read or written: the first access opens the page and schedules a
 * setImmediate that closes every open page. That keeps mprotect off the per-record path (one pair per page per
 * turn, not per access) while an idle process has no readable key page.
 *
 * A view lent to withBytes covers its secret's bytes only and is detached (zero-length) as the call returns. If
 * the callback moved it instead (ArrayBuffer transfer), some buffer the library cannot reach now points into the
 * page: the page's contents move, leaving zeros behind (LockedRegion.relocate), so that buffer never reads a
 * secret.
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
  /** Views lent to withBytes calls in progress (more than one when calls nest). */
  readonly #lent: { view: Uint8Array; region: LockedRegion; length: number }[] = [];

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

  /** A view of the allocation's bytes alone for one withBytes call; its page must be open. Give it back after. */
  lend(a: Allocation): Uint8Array {
    const region = a.region!;
    const view = region.viewOf(a.first * UNIT_BYTES, a.length);
    this.#lent.push({ view, region, length: a.length });
    return view;
  }

  /**
   * Detaches a view lent for a call that has returned. Returns the region to relocate if the view was moved out
   * (it is detached, yet the library did not detach it), else undefined.
   */
  takeBack(a: Allocation, view: Uint8Array): LockedRegion | undefined {
    const lent = this.#lent;
    // Calls nest, so the view is almost always the last one lent.
    for (let i = lent.length - 1; i >= 0; i--) {
      if (lent[i].view === view) {
        lent.splice(i, 1);
        break;
      }
    }
    // A view of a secret of length 0 reaches no byte: nothing can escape through it.
    if (a.length > 0 && view.buffer.byteLength === 0) return a.region ?? undefined;
    this.#native.detach(view.buffer as ArrayBuffer);
    return undefined;
  }

  /** Before `region`'s pages move: views still lent over it (calls in progress around this one) are detached. */
  detachLentOver(region: LockedRegion): void {
    for (const lent of this.#lent) if (lent.region === region) this.#native.detach(lent.view.buffer as ArrayBuffer);
  }

  /** Ends the turn's window: closes every page opened since the last call. Never throws. */
  closeOpenRegions(): void {
    this.#closeScheduled = false;
    const open = this.#openRegions.splice(0);
    for (const region of open) if (region.isOpen && this.#mapped.has(region)) region.close();
  }

  readonly #endTurn = (): void => this.closeOpenRegions();

  /**
   * At shutdown (inside a withBytes call, if any is running): every view still lent is detached, and nothing is
   * left to close (the regions are about to be unmapped). Returns the regions a lent view was already moved out
   * of: they must be relocated before they are unmapped, or the moved buffer would reach whatever is mapped there
   * next.
   */
  shutdown(): Set<LockedRegion> {
    const moved = new Set<LockedRegion>();
    for (const { view, region, length } of this.#lent.splice(0)) {
      // Detached, yet not by the library (a detached view reads length 0, so the length lent is compared).
      if (length > 0 && view.buffer.byteLength === 0) moved.add(region);
      else this.#native.detach(view.buffer as ArrayBuffer);
    }
    this.#openRegions.length = 0;
    return moved;
  }
}

// Captured at load so that a test's fake timers can never keep key pages readable.
const realSetImmediate = setImmediate;
