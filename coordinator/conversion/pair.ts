/**
 * The lossless wrapper around a field-by-field mapping between a hub version (stored) and a spoke version.
 *
 * Algorithm (after Cluster API's conversion-data annotation): converting, the source's spec and status are each
 * mapped; when mapping the result back would not give the source again, the source's part rides along in an
 * annotation of the result (the stash). Converting back, a stash whose mapping equals what arrived (nothing was
 * edited in between) is taken as is; a stale one (the other shape was edited) gives only the fields that shape
 * cannot express (`restoreHub`/`restoreSpoke`), over the fresh mapping.
 *
 * Invariant: for objects without the reserved annotations, down(up(x)) = x and up(down(x)) = x (spec, status,
 * annotations), whatever the mappings lose.
 */
import { canonicalJson, sameJson } from './canonical.js';

/** An API object as the apiserver sends it in a ConversionReview. */
export interface KubeObjectLike {
  apiVersion: string;
  kind: string;
  metadata?: { annotations?: Record<string, string>; [k: string]: unknown };
  spec?: unknown;
  status?: unknown;
  [k: string]: unknown;
}

/** The hub's parts: spec, status, and the annotations the mapping owns (e.g. Datum's placements). */
export interface Hub {
  spec: Record<string, unknown> | undefined;
  status: Record<string, unknown> | undefined;
  annotations: Record<string, string>;
}

/** The spoke's parts. */
export interface Spoke {
  spec: Record<string, unknown> | undefined;
  status: Record<string, unknown> | undefined;
}

/** A field-by-field mapping and its stash annotations. */
export interface Pair {
  /** On spoke objects: the hub's parts the spoke cannot express. */
  hubStashAnnotation: string;
  /** On hub objects: the spoke's parts the hub cannot express. */
  spokeStashAnnotation: string;
  /** Annotations of hub objects that `up` writes and `down` reads (never shown on the spoke). */
  hubAnnotations: string[];
  /** Spoke → hub, field by field. */
  up(s: Spoke): Hub;
  /** Hub → spoke, field by field. */
  down(h: Hub): Spoke;
  /** The fresh hub spec with the hub-only fields of a stale stashed spec. */
  restoreHub(fresh: Record<string, unknown>, stale: Record<string, unknown>): Record<string, unknown>;
  /** The fresh spoke spec with the spoke-only fields of a stale stashed spec. */
  restoreSpoke(fresh: Record<string, unknown>, stale: Record<string, unknown>): Record<string, unknown>;
}

/** A stashed part; null stands for a part the object did not have. */
interface Stash {
  spec?: Record<string, unknown> | null;
  annotations?: Record<string, string>;
  status?: Record<string, unknown> | null;
}

/** A stashed part as the object had it (null: absent). */
const part = (p: Record<string, unknown> | null | undefined) => p ?? undefined;

function readStash(text: string | undefined): Stash {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as Stash) : {};
  } catch {
    return {};
  }
}

function pick(annotations: Record<string, string>, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (annotations[k] !== undefined) out[k] = annotations[k];
  return out;
}

function withParts(
  obj: KubeObjectLike,
  apiVersion: string,
  spec: unknown,
  status: unknown,
  annotations: Record<string, string>,
): KubeObjectLike {
  const { spec: _s, status: _st, metadata, ...rest } = obj;
  const meta = { ...(metadata ?? {}) };
  if (Object.keys(annotations).length) meta.annotations = annotations;
  else delete meta.annotations;
  const out: KubeObjectLike = { ...rest, apiVersion, metadata: meta };
  if (spec !== undefined) out.spec = spec;
  if (status !== undefined) out.status = status;
  return out;
}

/** Converts `obj` up (spoke → hub) or down (hub → spoke), losslessly, to `apiVersion`. */
export function convertPair(
  pair: Pair,
  obj: KubeObjectLike,
  direction: 'up' | 'down',
  apiVersion: string,
): KubeObjectLike {
  const anns = { ...(obj.metadata?.annotations ?? {}) };
  const spec = obj.spec as Record<string, unknown> | undefined;
  const status = obj.status as Record<string, unknown> | undefined;
  if (direction === 'up') {
    const stash = readStash(anns[pair.hubStashAnnotation]);
    const fresh = pair.up({ spec, status });
    let hubSpec = fresh.spec;
    let hubAnns = fresh.annotations;
    if (stash.spec !== undefined) {
      const back = pair.down({
        spec: part(stash.spec),
        status: stash.status !== undefined ? part(stash.status) : fresh.status,
        annotations: stash.annotations ?? {},
      });
      if (sameJson(back.spec, spec)) {
        hubSpec = part(stash.spec);
        hubAnns = stash.annotations ?? {};
      } else if (hubSpec && stash.spec) hubSpec = pair.restoreHub(hubSpec, stash.spec);
    }
    let hubStatus = fresh.status;
    if (
      stash.status !== undefined &&
      sameJson(pair.down({ spec: hubSpec, status: part(stash.status), annotations: hubAnns }).status, status)
    )
      hubStatus = part(stash.status);
    const back = pair.down({ spec: hubSpec, status: hubStatus, annotations: hubAnns });
    const spokeStash: Stash = {};
    if (!sameJson(back.spec, spec)) spokeStash.spec = spec ?? null;
    if (!sameJson(back.status, status)) spokeStash.status = status ?? null;
    for (const k of [pair.hubStashAnnotation, pair.spokeStashAnnotation, ...pair.hubAnnotations])
      delete anns[k];
    Object.assign(anns, hubAnns);
    if (Object.keys(spokeStash).length) anns[pair.spokeStashAnnotation] = canonicalJson(spokeStash);
    return withParts(obj, apiVersion, hubSpec, hubStatus, anns);
  }
  const stash = readStash(anns[pair.spokeStashAnnotation]);
  const hubAnns = pick(anns, pair.hubAnnotations);
  const fresh = pair.down({ spec, status, annotations: hubAnns });
  let spokeSpec = fresh.spec;
  if (stash.spec !== undefined) {
    const back = pair.up({
      spec: part(stash.spec),
      status: stash.status !== undefined ? part(stash.status) : fresh.status,
    });
    if (sameJson(back.spec, spec) && sameJson(back.annotations, hubAnns)) spokeSpec = part(stash.spec);
    else if (spokeSpec && stash.spec) spokeSpec = pair.restoreSpoke(spokeSpec, stash.spec);
  }
  let spokeStatus = fresh.status;
  if (
    stash.status !== undefined &&
    sameJson(pair.up({ spec: spokeSpec, status: part(stash.status) }).status, status)
  )
    spokeStatus = part(stash.status);
  const back = pair.up({ spec: spokeSpec, status: spokeStatus });
  const hubStash: Stash = {};
  if (!sameJson(back.spec, spec) || !sameJson(back.annotations, hubAnns)) {
    hubStash.spec = spec ?? null;
    hubStash.annotations = hubAnns;
  }
  if (!sameJson(back.status, status)) hubStash.status = status ?? null;
  for (const k of [pair.hubStashAnnotation, pair.spokeStashAnnotation, ...pair.hubAnnotations])
    delete anns[k];
  if (Object.keys(hubStash).length) anns[pair.hubStashAnnotation] = canonicalJson(hubStash);
  return withParts(obj, apiVersion, spokeSpec, spokeStatus, anns);
}
