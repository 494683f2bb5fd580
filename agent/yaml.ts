/**
 * YAML parsing, loaded on first use: most agents are configured by flags and environment and have no VM image
 * catalog, and the parser costs ~1 MB of resident memory on every edge host that never reads a YAML file.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let yaml: typeof Yaml | undefined;

/** `yaml`'s `parse`. */
export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml.parse(text);
}

/** `yaml`'s `stringify`. */
export function stringifyYaml(value: unknown): string {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml.stringify(value);
}
