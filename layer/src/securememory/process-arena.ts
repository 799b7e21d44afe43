/**
 * The arena that every SecretFactory of this thread shares unless given its own. Made on first use; shut down
 * (every page zeroed, unlocked and unmapped) once the last factory holding it has closed with all its secrets,
 * and when the thread exits, so that VmLck goes back to where it was. A factory that uses secure memory after that
 * gets a new arena.
 */
import { SecretArena, type ArenaOptions } from './secret-arena.js';

let current: SecretArena | undefined;
/** Factories that hold `current`: they have used it and not yet closed. */
let holders = 0;
let exitHooked = false;

/** The shared arena, counted as held by one more factory until letGo(). Options apply only if it is made now. */
export function holdProcessArena(options: ArenaOptions): SecretArena {
  if (current === undefined || current.isShutDown) {
    current = new SecretArena(options);
    holders = 0;
    hookThreadExit();
  }
  holders++;
  return current;
}

/** A factory that held `arena` has closed and none of its secrets is open any more. */
export function letGoOfProcessArena(arena: SecretArena): void {
  if (arena !== current || --holders > 0) return;
  current = undefined;
  arena.shutdown();
}

// 'exit' also fires in a worker thread that ends or calls process.exit(): its pages are process memory, which
// would otherwise stay mapped and locked after the thread is gone.
function hookThreadExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => current?.shutdown());
}
