import { MetastoreError } from '../errors.js';
import { checkRegionSuffix } from '../key-ids.js';
import type { Metastore } from '../ports.js';
import type { EnvelopeKeyRecord } from '../record-codec.js';

// An in-process metastore for tests and local runs, with Go `persistence.MemoryMetastore` semantics
// (docs/wire-format.md §3.4): id → created → record; loadLatest takes the greatest created; store refuses an
// existing (id, created). Nothing survives the process, so keys (and every record encrypted under them) are lost
// with it.

export interface MemoryMetastoreOptions {
  /** Reported by regionSuffix(), to exercise suffixed key ids (docs/wire-format.md §1.2) without DynamoDB. */
  regionSuffix?: string;
  /** Accept a suffix that is not an AWS region name (docs/partitions.md). */
  legacyKeyIdNames?: boolean;
}

/** One stored row, as returned by `MemoryMetastore.rows()`. */
export interface MemoryMetastoreRow {
  id: string;
  created: number;
  record: EnvelopeKeyRecord;
}

export class MemoryMetastore implements Metastore {
  private readonly keys = new Map<string, Map<number, EnvelopeKeyRecord>>();
  private readonly suffix: string | undefined;

  constructor(options: MemoryMetastoreOptions = {}) {
    checkRegionSuffix(options.regionSuffix, options.legacyKeyIdNames === true, {
      suffix: 'MemoryMetastore regionSuffix',
      optIn: 'legacyKeyIdNames: true in the MemoryMetastore options',
    });
    this.suffix = options.regionSuffix;
  }

  async load(id: string, created: number): Promise<EnvelopeKeyRecord | undefined> {
    const record = this.keys.get(id)?.get(created);
    return record === undefined ? undefined : copyRecord(record);
  }

  async loadLatest(id: string): Promise<EnvelopeKeyRecord | undefined> {
    const byCreated = this.keys.get(id);
    if (byCreated === undefined) return undefined;
    let latest: number | undefined;
    for (const created of byCreated.keys()) {
      if (latest === undefined || created > latest) latest = created;
    }
    return latest === undefined ? undefined : copyRecord(byCreated.get(latest)!);
  }

  async store(id: string, created: number, record: EnvelopeKeyRecord): Promise<boolean> {
    // As the SQLite and DynamoDB metastores: a record stored under another created than its own could never be
    // loaded by its own Created, and records naming it would be lost. Refused here, the map never holds one, so
    // load and loadLatest need no check.
    if (record.created !== created) {
      throw new MetastoreError(
        "MemoryMetastore: cannot store a key record: the record's Created differs from the created it is stored " +
          'under, so no load() by its own Created could find it; store each key record under its own Created (this ' +
          'is a bug in the caller)',
      );
    }
    let byCreated = this.keys.get(id);
    if (byCreated === undefined) {
      byCreated = new Map();
      this.keys.set(id, byCreated);
    }
    // The first writer wins, as with a primary key: racing creators of the same minute's key all end up using it
    // (docs/wire-format.md §1.3, §1.5).
    if (byCreated.has(created)) return false;
    byCreated.set(created, copyRecord(record));
    return true;
  }

  regionSuffix(): string | undefined {
    return this.suffix;
  }

  /** Every stored row, sorted by id then created, as copies: for assertions in tests. */
  rows(): MemoryMetastoreRow[] {
    const out: MemoryMetastoreRow[] = [];
    for (const id of [...this.keys.keys()].sort(compareStrings)) {
      const byCreated = this.keys.get(id)!;
      for (const created of [...byCreated.keys()].sort((a, b) => a - b)) {
        out.push({ id, created, record: copyRecord(byCreated.get(created)!) });
      }
    }
    return out;
  }
}

// Records are copied in and out so that a caller mutating what it stored or loaded (e.g. zeroing a buffer) cannot
// change the stored state, as with a real metastore. The bytes are wrapped keys, not key material, so copying
// them onto the heap is fine.
function copyRecord(record: EnvelopeKeyRecord): EnvelopeKeyRecord {
  const copy: EnvelopeKeyRecord = { created: record.created, encryptedKey: Buffer.from(record.encryptedKey) };
  if (record.parentKeyMeta !== undefined) {
    copy.parentKeyMeta = { keyId: record.parentKeyMeta.keyId, created: record.parentKeyMeta.created };
  }
  if (record.revoked === true) copy.revoked = true;
  return copy;
}

// Plain UTF-16 code-unit order: deterministic everywhere (localeCompare would depend on ICU and the locale).
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
