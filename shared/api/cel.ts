/**
 * Cross-field rules, stated once for both validators: each rule carries its CEL text (the CRD's
 * `x-kubernetes-validations`, enforced by the API server) and the same check in TypeScript (enforced by zod), so
 * our schema and the API server give the same verdict. Before, zod knew nothing of the CEL rules: a template with
 * neither image nor containers parsed, while `kubectl apply` refused it (found by the differential fuzzing of
 * test/chaos/fuzz/manifests.test.ts). Use: `z.object({…}).apply(cel([{ rule, message, holds }]))`.
 */
import type { z } from 'zod';

/** One rule. */
export interface CelRule<T> {
  /** The CEL expression, over `self`. */
  rule: string;
  /** The message both validators give when it does not hold. */
  message: string;
  /** Field the API server reports the error on (`.field`); zod reports it there too. */
  fieldPath?: string;
  /** The same rule in TypeScript: true when `self` satisfies it. */
  holds(self: T): boolean;
}

/**
 * A function for zod's `.apply`: the schema with the rules checked (a zod issue per broken rule) and listed as
 * `x-kubernetes-validations` in its metadata (with `meta`, e.g. a description, beside them).
 */
export function cel<S extends z.ZodType>(
  rules: Array<CelRule<z.output<S>>>,
  meta: Record<string, unknown> = {},
): (schema: S) => S {
  return (schema) =>
    schema
      .superRefine((value, ctx) => {
        for (const r of rules) {
          if (r.holds(value)) continue;
          const field = r.fieldPath?.replace(/^\./, '');
          ctx.addIssue({ code: 'custom', message: r.message, ...(field ? { path: field.split('.') } : {}) });
        }
      })
      .meta({
        ...meta,
        'x-kubernetes-validations': rules.map(({ holds: _holds, ...r }) => r),
      }) as S;
}

/** CEL's `has(self.field)`: the field is present. */
export function has(value: unknown, field: string): boolean {
  return (
    typeof value === 'object' && value !== null && (value as Record<string, unknown>)[field] !== undefined
  );
}

/** How many of `fields` are present (the `(has(a) ? 1 : 0) + …` of the rules). */
export function countPresent(value: unknown, fields: string[]): number {
  return fields.filter((f) => has(value, f)).length;
}

/** CEL's `self.all(x, self.exists_one(y, key(y) == key(x)))`: every key appears once. */
export function unique<T>(items: readonly T[], key: (item: T) => unknown): boolean {
  const keys = items.map(key);
  return new Set(keys).size === keys.length;
}
