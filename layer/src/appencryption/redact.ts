/**
 * What logging or serializing an SDK object shows: a one-line summary, never its fields. The objects reach key
 * material (secrets in locked pages) through their private fields; a logger that walks them (Powertools,
 * util.inspect, JSON.stringify) would copy live key bytes into a log, or touch a PROT_NONE page and end the process.
 */
import { inspect } from 'node:util';

export type Summary = Record<string, string | number | boolean | undefined>;

/** Adds toJSON and util.inspect's hook to a class's prototype, both built from `summary`. */
export function redactWith<T extends object>(cls: { prototype: T; name: string }, summary: (self: T) => Summary): void {
  Object.defineProperties(cls.prototype, {
    toJSON: {
      value(this: T) {
        return { [cls.name]: summary(this) };
      },
    },
    [inspect.custom]: {
      value(this: T) {
        return `${cls.name} ${inspect(summary(this))}`;
      },
    },
  });
}
