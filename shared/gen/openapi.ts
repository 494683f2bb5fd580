/**
 * Turns a zod schema into a Kubernetes structural OpenAPI v3 schema: every node typed, no $ref, no
 * additionalProperties:false, int-or-string quantities marked as Kubernetes marks its own.
 */
import { z } from 'zod';

/** A JSON Schema node as Kubernetes accepts it in a CRD. */
export type JSONSchema = { [key: string]: unknown };

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Converts a zod schema into a structural schema usable as a CRD's openAPIV3Schema fragment. */
export function toStructuralSchema(schema: z.ZodType): JSONSchema {
  const raw = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'any',
    reused: 'inline',
    cycles: 'throw',
  }) as JSONSchema;
  return clean(raw);
}

function clean(node: JSONSchema): JSONSchema {
  const out: JSONSchema = {};
  if (node['x-kubernetes-int-or-string']) {
    const r: JSONSchema = {
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
    };
    if (typeof node.description === 'string') r.description = node.description;
    if (node.default !== undefined) r.default = node.default;
    // As controller-gen does for resource.Quantity: the string branch's pattern and the number branch's minimum
    // go next to anyOf (JSON Schema applies each only to values of its type).
    const branches = (node.anyOf ?? node.oneOf ?? []) as JSONSchema[];
    const pattern = branches.find((b) => b.type === 'string' && typeof b.pattern === 'string')?.pattern;
    if (pattern) r.pattern = pattern;
    const minimum = branches.find((b) => b.type === 'integer' || b.type === 'number')?.minimum;
    if (typeof minimum === 'number' && minimum !== -MAX_SAFE) r.minimum = minimum;
    return r;
  }
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'id':
      case '$id':
        break;
      case 'properties': {
        const props: JSONSchema = {};
        for (const [name, child] of Object.entries(value as Record<string, JSONSchema>))
          props[name] = clean(child);
        out.properties = props;
        break;
      }
      case 'items':
        out.items = clean(value as JSONSchema);
        break;
      case 'additionalProperties':
        if (value === false) break; // structural schemas prune unknown fields already
        if (value === true || (typeof value === 'object' && value && Object.keys(value).length === 0)) {
          out['x-kubernetes-preserve-unknown-fields'] = true;
          break;
        }
        out.additionalProperties = clean(value as JSONSchema);
        break;
      case 'propertyNames':
        break; // zod emits it for records keyed by string; Kubernetes does not accept it
      case 'maximum':
        if (value !== MAX_SAFE) out.maximum = value;
        break;
      case 'minimum':
        if (value !== -MAX_SAFE) out.minimum = value;
        break;
      case 'anyOf':
      case 'oneOf':
        throw new Error(
          `unions other than int-or-string are not structural: ${JSON.stringify(node).slice(0, 200)}`,
        );
      default:
        out[key] = value;
    }
  }
  if (!out.type && !out['x-kubernetes-preserve-unknown-fields']) {
    if (out.properties || out.additionalProperties) out.type = 'object';
    else out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  if (out.type === 'object' && !out.properties && !out.additionalProperties) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}
