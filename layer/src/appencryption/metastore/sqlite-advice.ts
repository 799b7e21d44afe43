// What SqliteMetastore (sqlite-metastore.ts) makes of a SQLite error: whether it is one, and what to do about it.

/** What to do about a SQLite error, by its primary result code (extended codes such as SQLITE_BUSY_SNAPSHOT included). */
export function advice(code: string, busyTimeoutMs: number): string {
  if (code === 'SQLITE_READONLY_DBMOVED') {
    return (
      'the database file was deleted, moved or replaced while this process had it open, so SQLite will not write ' +
      'to it; find what removed it, put the right file back, and reopen it (close the SessionFactory and build a ' +
      'new one, or restart the process)'
    );
  }
  const primary = /^SQLITE_[A-Z]+/.exec(code)?.[0];
  switch (primary) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return (
        `the database stayed locked by another connection for longer than the busy timeout (${busyTimeoutMs} ms); ` +
        'retry, raise busyTimeoutMs, or find the process that keeps a transaction open on the file'
      );
    case 'SQLITE_READONLY':
      return (
        'this process cannot write the database; make the file and its directory writable by this process ' +
        '(SQLite writes a journal file next to the database)'
      );
    case 'SQLITE_CANTOPEN':
      return (
        'check that the path names a file (not a directory) in an existing directory, and that the file and the ' +
        'directory are readable and writable by this process'
      );
    case 'SQLITE_NOTADB':
      return (
        'the file is not an SQLite database (or is encrypted); check the path. Do not delete it before checking: ' +
        'a metastore holds the only copies of the keys that old records need'
      );
    case 'SQLITE_CORRUPT':
      return 'the database file is damaged; restore it from a backup (old records need every key in it)';
    case 'SQLITE_FULL':
      return 'the disk is full; free some space and retry';
    case 'SQLITE_IOERR':
      return (
        'the operating system reported an I/O error; check the disk and the filesystem (SQLite locking does not ' +
        'work reliably on network filesystems)'
      );
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return 'access was denied; check the permissions of the file and its directory';
    default:
      return 'see the cause for details';
  }
}

/** Not `instanceof Error` either: an error made in another realm (a test runner's sandbox) is not one. */
export function isSqliteError(err: unknown): err is Error & { code: string } {
  const e = err as { name?: unknown; code?: unknown } | null;
  return typeof e === 'object' && e !== null && e.name === 'SqliteError' && typeof e.code === 'string';
}
