/**
 * Resource quantities and machine types.
 *
 * - Kubernetes quantities (`100m`, `0.5`, `2`, `128Mi`, `4Gi`, `1G`, `1e3`) parsed exactly (no floating-point
 *   rounding), rounded up to whole millicores and bytes as Kubernetes does.
 * - The GCP-style machine types of the Workload docs (`e2-micro` … `c2-standard-8`) and the families they belong
 *   to, with GCP's vCPU and memory. GCP's "GB" of memory are GiB (2^30 bytes); so are ours.
 * - The per-instance request and limit of a Workload template: from `resources`, else summed over `containers`,
 *   else from `machineType`, else a default.
 */

/** CPU and memory, in the units the placement engine uses. */
export interface ResourceAmounts {
  /** CPU in millicores (1000 = one vCPU). */
  cpuMillis: number;
  /** Memory in bytes. */
  memoryBytes: number;
}

/** A quantity as written in a manifest: a Kubernetes quantity string or a plain number. */
export type Quantity = string | number;

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Request of an instance that names neither resources nor a machine type: 100m CPU, 128Mi memory. */
export const DEFAULT_REQUESTS: Readonly<ResourceAmounts> = Object.freeze({
  cpuMillis: 100,
  memoryBytes: 128 * MiB,
});

const DECIMAL_EXP: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_POW: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const QUANTITY_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

/**
 * Parses a Kubernetes quantity and returns it multiplied by 10^scale, rounded up to an integer
 * (scale 3 gives milli-units, scale 0 whole units). Throws on malformed, negative or too large input.
 */
function parseScaled(input: Quantity, scale: number, what: string, examples: string): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      throw new Error(
        `Invalid ${what} ${String(input)}: expected a non-negative number or a quantity such as ${examples}`,
      );
    }
    return parseScaled(numberToString(input), scale, what, examples);
  }
  if (typeof input !== 'string') {
    throw new Error(
      `Invalid ${what} ${JSON.stringify(input)}: expected a string such as ${examples}, or a number`,
    );
  }
  const m = QUANTITY_RE.exec(input.trim());
  if (!m) throw new Error(`Invalid ${what} "${input}": expected a quantity such as ${examples}`);
  const [, sign, num = '', suffix, exp] = m;
  const [intPart = '', fracPart = ''] = num.split('.');
  let digits = BigInt((intPart + fracPart).replace(/^0+(?=\d)/, '') || '0');
  if (sign === '-' && digits !== 0n) throw new Error(`Invalid ${what} "${input}": must not be negative`);
  let exp10 = scale - fracPart.length;
  if (exp !== undefined) exp10 += Number(exp);
  else if (suffix !== undefined && suffix in BINARY_POW) digits *= 1024n ** BigInt(BINARY_POW[suffix] ?? 0);
  else exp10 += DECIMAL_EXP[suffix ?? ''] ?? 0;
  if (exp10 > 60) throw new Error(`Invalid ${what} "${input}": too large`);
  let value: bigint;
  if (exp10 >= 0) value = digits * 10n ** BigInt(exp10);
  else {
    const div = 10n ** BigInt(-exp10);
    value = (digits + div - 1n) / div; // round up, as Kubernetes does for sub-milli precision
  }
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`Invalid ${what} "${input}": too large`);
  return Number(value);
}

function numberToString(n: number): string {
  // Plain notation for the numbers people write; exponent notation is understood by the parser too.
  return String(n);
}

/**
 * Parses a CPU quantity to millicores: `'100m'` → 100, `'2'` or `2` → 2000, `'0.5'` → 500, `'1.0005'` → 1001
 * (rounded up to a whole millicore).
 */
export function parseCpuMillis(input: Quantity): number {
  return parseScaled(input, 3, 'CPU quantity', '"100m", "0.5" or "2"');
}

/**
 * Parses a memory quantity to bytes: `'128Mi'` → 134217728, `'4Gi'`, `'1G'` → 10^9, `'512M'`, `'1e9'`, or a
 * number of bytes.
 */
export function parseMemoryBytes(input: Quantity): number {
  return parseScaled(input, 0, 'memory quantity', '"128Mi", "4Gi", "1G" or "512M"');
}

/** Formats millicores as a quantity: 1500 → `'1500m'`, 2000 → `'2'`. */
export function formatCpuMillis(cpuMillis: number): string {
  return cpuMillis % 1000 === 0 ? String(cpuMillis / 1000) : `${cpuMillis}m`;
}

/**
 * Amounts with their Kubernetes quantities beside them, under a Node's keys: `{cpuMillis: 64000, memoryBytes:
 * 2^38}` → also `cpu: '64'`, `memory: '256Gi'` (and `ephemeral-storage` when there is disk).
 */
export function withQuantities<
  T extends { cpuMillis: number; memoryBytes: number; ephemeralStorageBytes?: number },
>(a: T): T & { cpu: string; memory: string; 'ephemeral-storage'?: string } {
  return {
    ...a,
    cpu: formatCpuMillis(a.cpuMillis),
    memory: formatMemoryBytes(a.memoryBytes),
    ...(a.ephemeralStorageBytes !== undefined
      ? { 'ephemeral-storage': formatMemoryBytes(a.ephemeralStorageBytes) }
      : {}),
  };
}

/** Formats bytes as a quantity with the largest exact binary suffix: 134217728 → `'128Mi'`. */
export function formatMemoryBytes(bytes: number): string {
  for (const [suffix, pow] of [
    ['Ei', 6],
    ['Pi', 5],
    ['Ti', 4],
    ['Gi', 3],
    ['Mi', 2],
    ['Ki', 1],
  ] as const) {
    const unit = 1024 ** pow;
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// Machine types

/** A family of machine types: `<series>-<kind>-<vCPUs>`, with a fixed amount of memory per vCPU. */
export interface MachineFamily {
  /** Prefix of the names, e.g. `n2-standard`. */
  prefix: string;
  /** The vCPU counts GCP offers in this family. */
  vcpus: readonly number[];
  /** Memory per vCPU in GiB (GCP "GB"). */
  gibPerVcpu: number;
}

/** Shared-core E2 types, named in the docs; they have 2 vCPUs (burstable) and a fixed memory. */
const SHARED_CORE: Record<string, ResourceAmounts> = {
  'e2-micro': { cpuMillis: 2000, memoryBytes: 1 * GiB },
  'e2-small': { cpuMillis: 2000, memoryBytes: 2 * GiB },
  'e2-medium': { cpuMillis: 2000, memoryBytes: 4 * GiB },
};

const N2_SIZES = [2, 4, 8, 16, 32, 48, 64, 80, 96, 128] as const;
const N2D_SIZES = [2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224] as const;
const N1_SIZES = [1, 2, 4, 8, 16, 32, 64, 96] as const;

/** The predefined machine families, with GCP's vCPU counts and memory-to-vCPU ratios. */
export const MACHINE_FAMILIES: readonly MachineFamily[] = [
  { prefix: 'e2-standard', vcpus: [2, 4, 8, 16, 32], gibPerVcpu: 4 },
  { prefix: 'e2-highmem', vcpus: [2, 4, 8, 16], gibPerVcpu: 8 },
  { prefix: 'e2-highcpu', vcpus: [2, 4, 8, 16, 32], gibPerVcpu: 1 },
  { prefix: 'n2-standard', vcpus: N2_SIZES, gibPerVcpu: 4 },
  { prefix: 'n2-highmem', vcpus: N2_SIZES, gibPerVcpu: 8 },
  { prefix: 'n2-highcpu', vcpus: N2_SIZES.filter((n) => n <= 96), gibPerVcpu: 1 },
  { prefix: 'n2d-standard', vcpus: N2D_SIZES, gibPerVcpu: 4 },
  { prefix: 'n2d-highmem', vcpus: N2D_SIZES.filter((n) => n <= 96), gibPerVcpu: 8 },
  { prefix: 'n2d-highcpu', vcpus: N2D_SIZES, gibPerVcpu: 1 },
  { prefix: 'n1-standard', vcpus: N1_SIZES, gibPerVcpu: 3.75 },
  { prefix: 'n1-highmem', vcpus: N1_SIZES.filter((n) => n >= 2), gibPerVcpu: 6.5 },
  { prefix: 'n1-highcpu', vcpus: N1_SIZES.filter((n) => n >= 2), gibPerVcpu: 0.9 },
  { prefix: 'c2-standard', vcpus: [4, 8, 16, 30, 60], gibPerVcpu: 4 },
];

/** Custom types: `custom-<vCPUs>-<MiB>` (N1) or `<series>-custom-<vCPUs>-<MiB>` for e2, n2, n2d. */
const CUSTOM_RE = /^(?:(e2|n2|n2d)-)?custom-(\d+)-(\d+)(?:-ext)?$/;

const SUPPORTED =
  `${Object.keys(SHARED_CORE).join(', ')}; ` +
  MACHINE_FAMILIES.map((f) => `${f.prefix}-N (N = ${f.vcpus.join(', ')})`).join('; ') +
  '; custom-<vCPUs>-<MiB> and e2|n2|n2d-custom-<vCPUs>-<MiB>';

/**
 * The vCPU and memory of a GCP-style machine type: `e2-micro` → 2 vCPU 1 GiB, `n2-standard-4` → 4 vCPU 16 GiB,
 * `c2-standard-8` → 8 vCPU 32 GiB, `n1-standard-2` → 2 vCPU 7.5 GiB, `n2-custom-4-8192` → 4 vCPU 8 GiB.
 * Throws an error listing the supported families for an unknown name.
 */
export function machineTypeResources(name: string): ResourceAmounts {
  const shared = SHARED_CORE[name];
  if (shared) return { ...shared };
  const fam = MACHINE_FAMILIES.find((f) => name.startsWith(`${f.prefix}-`));
  if (fam) {
    const rest = name.slice(fam.prefix.length + 1);
    const n = /^\d+$/.test(rest) ? Number(rest) : Number.NaN;
    if (!fam.vcpus.includes(n)) {
      throw new Error(
        `Unknown machine type "${name}": ${fam.prefix} comes with ${fam.vcpus.join(', ')} vCPUs ` +
          `(e.g. ${fam.prefix}-${fam.vcpus[0]})`,
      );
    }
    return { cpuMillis: n * 1000, memoryBytes: Math.round(n * fam.gibPerVcpu * GiB) };
  }
  const custom = CUSTOM_RE.exec(name);
  if (custom) {
    const vcpus = Number(custom[2]);
    const mib = Number(custom[3]);
    if (vcpus >= 1 && mib >= 1) return { cpuMillis: vcpus * 1000, memoryBytes: mib * MiB };
  }
  throw new Error(`Unknown machine type "${name}". Supported: ${SUPPORTED}`);
}

/** Whether `name` is a machine type that {@link machineTypeResources} knows. */
export function isMachineType(name: string): boolean {
  try {
    machineTypeResources(name);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests and limits of an instance template

/** `requests` or `limits` of a template (Kubernetes `ResourceList`, only CPU and memory are used). */
export interface ResourceListLike {
  cpu?: Quantity;
  memory?: Quantity;
}

/** `resources` of a template or container (Kubernetes `ResourceRequirements`). */
export interface ResourceRequirementsLike {
  requests?: ResourceListLike;
  limits?: ResourceListLike;
}

/** The parts of a Workload's `spec.template.spec` that determine what an instance needs. */
export interface TemplateSpecLike {
  machineType?: string;
  resources?: ResourceRequirementsLike;
  containers?: ReadonlyArray<{ name?: string; resources?: ResourceRequirementsLike }>;
}

type Key = 'cpu' | 'memory';

function parseKey(key: Key, q: Quantity): number {
  return key === 'cpu' ? parseCpuMillis(q) : parseMemoryBytes(q);
}

/** Sum over containers of `pick(container)`, or undefined when no container sets it. */
function sumContainers(
  spec: TemplateSpecLike,
  key: Key,
  pick: (r: ResourceRequirementsLike) => Quantity | undefined,
) {
  let total: number | undefined;
  for (const c of spec.containers ?? []) {
    const q = c.resources ? pick(c.resources) : undefined;
    if (q !== undefined) total = (total ?? 0) + parseKey(key, q);
  }
  return total;
}

function machine(spec: TemplateSpecLike): ResourceAmounts | undefined {
  return spec.machineType ? machineTypeResources(spec.machineType) : undefined;
}

function requestOf(spec: TemplateSpecLike, key: Key, amountKey: keyof ResourceAmounts): number {
  const direct = spec.resources?.requests?.[key];
  if (direct !== undefined) return parseKey(key, direct);
  // As in Kubernetes, a container that sets only a limit requests that limit.
  const containers = sumContainers(spec, key, (r) => r.requests?.[key] ?? r.limits?.[key]);
  if (containers !== undefined) return containers;
  const limit = spec.resources?.limits?.[key];
  if (limit !== undefined) return parseKey(key, limit);
  return machine(spec)?.[amountKey] ?? DEFAULT_REQUESTS[amountKey];
}

/**
 * What one instance of a template requests, which is what placement reserves on a host. For CPU and memory
 * separately, the first that is set of:
 * 1. `resources.requests` of the template;
 * 2. the sum over `containers[].resources.requests` (a container with only a limit requests its limit);
 * 3. `resources.limits` of the template (a request defaults to the limit);
 * 4. the vCPU and memory of `machineType`;
 * 5. {@link DEFAULT_REQUESTS}: 100m CPU and 128Mi memory.
 * Throws on a malformed quantity or an unknown machine type.
 */
export function instanceRequests(spec: TemplateSpecLike): ResourceAmounts {
  return {
    cpuMillis: requestOf(spec, 'cpu', 'cpuMillis'),
    memoryBytes: requestOf(spec, 'memory', 'memoryBytes'),
  };
}

function limitOf(spec: TemplateSpecLike, key: Key, request: number): number {
  const direct = spec.resources?.limits?.[key];
  if (direct !== undefined) return parseKey(key, direct);
  const containers = sumContainers(spec, key, (r) => r.limits?.[key] ?? r.requests?.[key]);
  if (containers !== undefined) return containers;
  return request;
}

/**
 * The most one instance of a template may use. For CPU and memory separately, the first that is set of:
 * `resources.limits` of the template; the sum over `containers[].resources.limits` (a container without a limit
 * counts its request); otherwise the request ({@link instanceRequests}, which falls back to `machineType`).
 */
export function instanceLimits(spec: TemplateSpecLike): ResourceAmounts {
  const req = instanceRequests(spec);
  return {
    cpuMillis: limitOf(spec, 'cpu', req.cpuMillis),
    memoryBytes: limitOf(spec, 'memory', req.memoryBytes),
  };
}
