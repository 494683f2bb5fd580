/**
 * Generators the fuzz tests share (fast-check): hostile JSON values, mutations of a valid message or manifest
 * (a field set to a hostile value, removed, or an unknown field added), and arbitrary bytes. Runs are seeded:
 * `npm test` runs a short, fixed-seed subset; `npm run chaos` (EDGE_CHAOS=full) runs many more with a fresh seed
 * each time, printed on failure so that `EDGE_FUZZ_SEED=<seed>` replays it.
 */
import fc from 'fast-check';
import { CHAOS_FULL } from '../settings.js';

/** The seed of `npm test`'s short runs: fixed, so a failure there is the same failure on every machine. */
const SHORT_SEED = 20_261_202;

/**
 * fast-check parameters: `short` runs with the fixed seed in `npm test`, `long` runs with a fresh seed under
 * `npm run chaos`; EDGE_FUZZ_SEED replays a seed, EDGE_FUZZ_RUNS overrides the count.
 */
export function fuzzParams(
  short: number,
  long: number,
): { numRuns: number; seed: number; endOnFailure: boolean } {
  const seed = process.env.EDGE_FUZZ_SEED
    ? Number(process.env.EDGE_FUZZ_SEED)
    : CHAOS_FULL
      ? Date.now() ^ (Math.random() * 2 ** 31)
      : SHORT_SEED;
  const numRuns = process.env.EDGE_FUZZ_RUNS ? Number(process.env.EDGE_FUZZ_RUNS) : CHAOS_FULL ? long : short;
  // No shrinking: against real daemons a failure often leaves them dead, and every shrink step would time out.
  return { numRuns, seed, endOnFailure: true };
}

/** A JSON path: object keys and array indexes from the root. */
export type JsonPath = Array<string | number>;

/** Every path of `value` (the root included) down to `maxDepth` levels, objects and arrays walked. */
export function jsonPaths(value: unknown, maxDepth = 12, prefix: JsonPath = []): JsonPath[] {
  const out: JsonPath[] = [prefix];
  if (prefix.length >= maxDepth) return out;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) out.push(...jsonPaths(v, maxDepth, [...prefix, i]));
  } else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, maxDepth, [...prefix, k]));
  return out;
}

/** A copy of `value` with `path` set to `to` (or removed when `to` is {@link REMOVE}); only the path is copied. */
export function setPath(value: unknown, path: JsonPath, to: unknown): unknown {
  if (path.length === 0) return to === REMOVE ? undefined : to;
  const [key, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  if (rest.length) copy[key!] = setPath(copy[key!], rest, to);
  else if (to !== REMOVE) copy[key!] = to;
  else if (Array.isArray(copy)) copy.splice(key as number, 1);
  else delete copy[key!];
  return copy;
}

/** Marker of {@link setPath}: remove the field. */
export const REMOVE = Symbol('remove');

/** Strings that break naive code: empty, huge, unicode of every plane, NATS/K8s metacharacters, control bytes. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('', ' ', 'a b', '*', '>', 'x.>', 'a\tb', 'UPPER', '-lead') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'a b',
      '*',
      '>',
      'a.b',
      '..',
      '\u0000',
      '\n',
      '💥',
      'é',
      '\u202e',
      '\ud800',
      '__proto__',
      'constructor',
      '-1',
      '1e309',
      'NaN',
      'null',
      'x'.repeat(70),
      'x'.repeat(300),
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.string({ minLength: 1000, maxLength: 70_000, unit: fc.constantFrom('a', 'é', '💥') }),
  },
);

/** Numbers at and beyond the edges: huge, negative, fractional, unsafe integers, -0. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    1.5,
    2 ** 31,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
    -1e308,
    5e-324,
    65_536,
    16_777_216,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Nesting deeper than any schema expects (arrays or objects, up to `depth` levels). */
export function deeplyNested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { n: v };
  return v;
}

/** A hostile JSON value: wrong types, huge values, unicode, deep nesting, arbitrary JSON. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { '': '' }), weight: 2 },
  { arbitrary: hostileString, weight: 3 },
  { arbitrary: hostileNumber, weight: 3 },
  { arbitrary: fc.integer({ min: 50, max: 1000 }).map(deeplyNested), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
);

/** One mutation of a JSON document. */
export type Mutation =
  | { op: 'set'; path: JsonPath; value: unknown }
  | { op: 'remove'; path: JsonPath }
  | { op: 'unknown-field'; path: JsonPath; key: string; value: unknown };

/** Applies a mutation (a no-op where it does not apply, e.g. an unknown field on a string). */
export function applyMutation(doc: unknown, m: Mutation): unknown {
  if (m.op === 'set') return setPath(doc, m.path, m.value);
  if (m.op === 'remove') return m.path.length ? setPath(doc, m.path, REMOVE) : doc;
  const target = m.path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)?.[k], doc);
  if (!target || typeof target !== 'object' || Array.isArray(target)) return doc;
  return setPath(doc, [...m.path, m.key], m.value);
}

/** 1 to `max` mutations of `doc`, each at a path of the document as mutated so far. */
export function mutations(doc: unknown, max = 3): fc.Arbitrary<{ doc: unknown; applied: Mutation[] }> {
  const one = (d: unknown): fc.Arbitrary<Mutation> => {
    const paths = jsonPaths(d);
    // Half the time a field at the top: identity fields (host, location, names) are where handlers differ.
    const top = paths.filter((p) => p.length === 1);
    const path = top.length
      ? fc.oneof(fc.constantFrom(...top), fc.constantFrom(...paths))
      : fc.constantFrom(...paths);
    return fc.oneof(
      {
        // Mostly a value of the same type (a string where a string was: it passes the schema and reaches the
        // handler's logic), else anything.
        arbitrary: path.chain((p) => {
          const current = p.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)?.[k], d);
          const like =
            typeof current === 'string'
              ? hostileString
              : typeof current === 'number'
                ? hostileNumber
                : hostileValue;
          return fc.record({
            op: fc.constant('set' as const),
            path: fc.constant(p),
            value: fc.oneof({ weight: 2, arbitrary: like }, { weight: 1, arbitrary: hostileValue }),
          });
        }),
        weight: 5,
      },
      { arbitrary: fc.record({ op: fc.constant('remove' as const), path }), weight: 2 },
      {
        arbitrary: fc.record({
          op: fc.constant('unknown-field' as const),
          path,
          key: fc.oneof(fc.constantFrom('extra', 'x-unknown', 'Image', 'spec'), hostileString),
          value: hostileValue,
        }),
        weight: 2,
      },
    );
  };
  const step = (
    state: { doc: unknown; applied: Mutation[] },
    left: number,
  ): fc.Arbitrary<{ doc: unknown; applied: Mutation[] }> =>
    left === 0
      ? fc.constant(state)
      : one(state.doc).chain((m) =>
          step({ doc: applyMutation(state.doc, m), applied: [...state.applied, m] }, left - 1),
        );
  // One mutation most often, so the document stays valid elsewhere and the hostile value reaches the logic.
  const count = fc.oneof(
    { weight: 3, arbitrary: fc.constant(1) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max }) },
  );
  return count.chain((n) => step({ doc, applied: [] }, n));
}

/** Bytes a message might be: arbitrary, arbitrary JSON text, truncated JSON of `valid`, or huge. */
export function hostileBytes(valid: unknown): fc.Arbitrary<Uint8Array> {
  const text = JSON.stringify(valid);
  const enc = (s: string) => new TextEncoder().encode(s);
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.jsonValue({ maxDepth: 4 }).map((v) => enc(JSON.stringify(v) ?? 'null')),
    fc.integer({ min: 0, max: text.length }).map((n) => enc(text.slice(0, n))),
    fc.constantFrom(
      enc(''),
      enc('null'),
      enc('[]'),
      enc('"report"'),
      enc('{"v":1}'),
      enc(`${'['.repeat(100_000)}${']'.repeat(100_000)}`),
      enc(`{"v":1,"pad":"${'x'.repeat(600_000)}"}`),
      new Uint8Array([0xff, 0xfe, 0x00, 0x7b]),
    ),
  );
}

/** A short description of mutations for a failure message (long and deep values summarised). */
export function describeMutations(applied: Mutation[]): string {
  const brief = (v: unknown): string => {
    const text = JSON.stringify(v) ?? String(v);
    return text.length > 80 ? `${text.slice(0, 60)}…(${text.length} chars)` : text;
  };
  return applied
    .map((m) =>
      m.op === 'remove'
        ? `remove ${m.path.join('.')}`
        : m.op === 'set'
          ? `set ${m.path.join('.')}=${brief(m.value)}`
          : `add ${[...m.path, m.key].join('.')}=${brief(m.value)}`,
    )
    .join('; ');
}
