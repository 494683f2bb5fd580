/**
 * The instance types of Datum's compute API (`spec.template.spec.runtime.resources.instanceType` of a
 * `compute.datumapis.com/v1alpha` Workload), as data: name → vCPUs and memory. This is the one place to add a type;
 * the v1alpha schema's validation, the conversion to v1alpha1 and the docs read it.
 *
 * Datum publishes the name `datumcloud/d1-standard-2` but not its size; the `d1-standard` family here follows the
 * common "standard" ratio of 4 GiB per vCPU (GCP's n2-standard, Datum's backing provider), so d1-standard-2 is
 * 2 vCPUs and 8 GiB. Edgeplane accepts every type listed (Datum's own service offers only d1-standard-2).
 */
import { formatCpuMillis, formatMemoryBytes, type ResourceAmounts } from './resources.js';

const GiB = 1024 ** 3;

/** One instance type. */
export interface InstanceType {
  /** Full name, `<project>/<family>-<size>`, e.g. `datumcloud/d1-standard-2`. */
  name: string;
  /** vCPUs. */
  vcpus: number;
  /** Memory in GiB. */
  memoryGiB: number;
}

/** Every instance type Edgeplane knows, smallest first. */
export const INSTANCE_TYPES: readonly InstanceType[] = Object.freeze([
  { name: 'datumcloud/d1-standard-1', vcpus: 1, memoryGiB: 4 },
  { name: 'datumcloud/d1-standard-2', vcpus: 2, memoryGiB: 8 },
  { name: 'datumcloud/d1-standard-4', vcpus: 4, memoryGiB: 16 },
  { name: 'datumcloud/d1-standard-8', vcpus: 8, memoryGiB: 32 },
  { name: 'datumcloud/d1-standard-16', vcpus: 16, memoryGiB: 64 },
  { name: 'datumcloud/d1-highmem-2', vcpus: 2, memoryGiB: 16 },
  { name: 'datumcloud/d1-highmem-4', vcpus: 4, memoryGiB: 32 },
  { name: 'datumcloud/d1-highcpu-2', vcpus: 2, memoryGiB: 2 },
  { name: 'datumcloud/d1-highcpu-4', vcpus: 4, memoryGiB: 4 },
]);

/** The type a converted v1alpha1 Workload gets when its resources match no type (Datum's sample type). */
export const DEFAULT_INSTANCE_TYPE = 'datumcloud/d1-standard-2';

/** Names of every instance type. */
export const INSTANCE_TYPE_NAMES: readonly string[] = INSTANCE_TYPES.map((t) => t.name);

/** CPU and memory of an instance type, as quantities (`2`, `8Gi`), or undefined when the name is unknown. */
export function instanceTypeRequests(name: string): { cpu: string; memory: string } | undefined {
  const t = INSTANCE_TYPES.find((x) => x.name === name);
  if (!t) return undefined;
  return { cpu: formatCpuMillis(t.vcpus * 1000), memory: formatMemoryBytes(t.memoryGiB * GiB) };
}

/** The instance type with exactly these amounts, if any. */
export function instanceTypeOf(amounts: ResourceAmounts): string | undefined {
  return INSTANCE_TYPES.find(
    (t) => t.vcpus * 1000 === amounts.cpuMillis && t.memoryGiB * GiB === amounts.memoryBytes,
  )?.name;
}
