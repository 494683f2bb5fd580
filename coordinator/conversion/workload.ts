/**
 * Workload conversion between Edgeplane's v1alpha1 (the hub: what is stored and what the controller reads) and
 * Datum's v1alpha (the spoke). Two pure functions over plain data, `upWorkload` (v1alpha → v1alpha1) and
 * `downWorkload` (v1alpha1 → v1alpha), each the field-by-field mapping of `upCore`/`downCore` wrapped in
 * {@link convertPair}, which makes the pair lossless.
 *
 * Mapping (docs/datum-v1alpha.md has the table):
 * - `placements[]` ↔ the annotation `compute.datumapis.com/placements`, `replicas` = Σ minReplicas × |cityCodes|,
 *   and `placement`: hosts of those cities (label topology.datum.net/city-code), spread evenly over them.
 * - `runtime.resources.instanceType` ↔ `resources.requests` of the template (shared/instance-types.ts);
 *   `runtime.sandbox.containers[]` ↔ `containers[]` (ports `{name, port}` ↔ `{name, containerPort}`,
 *   `volumeAttachments` ↔ `volumeMounts`); `runtime.virtualMachine` with a disk filled from image `p/n` ↔
 *   `image: projects/p/global/images/n`; `networkInterfaces[]` and `volumes[]` (configMap, secret) as they are.
 *
 * Invariant (test/unit/conversion.test.ts, property tests): down∘up and up∘down are the identity on objects that
 * carry none of the reserved annotations. What one shape cannot say rides in an annotation of the other
 * (`compute.datumapis.com/v1alpha1-conversion` on v1alpha objects, `compute.datumapis.com/v1alpha-conversion` on
 * v1alpha1 objects), written only when something would be lost.
 */
import type {
  WorkloadSpec as V1Spec,
  InstanceTemplateSpec as V1TemplateSpec,
} from '../../shared/api/index.js';
import { CITY_CODE_LABEL } from '../../shared/api/placement.js';
import { isVmImage } from '../../shared/api/template.js';
import type { WorkloadSpec as V1alphaSpec } from '../../shared/api/v1alpha/workload.js';
import { DEFAULT_INSTANCE_TYPE, instanceTypeOf, instanceTypeRequests } from '../../shared/instance-types.js';
import { instanceRequests } from '../../shared/resources.js';
import { canonicalJson, compact } from './canonical.js';
import { convertPair, type Hub, type KubeObjectLike, type Pair, type Spoke } from './pair.js';

/** The annotation of a v1alpha1 Workload that holds Datum's placements (JSON); the controller places by city from it. */
export const PLACEMENTS_ANNOTATION = 'compute.datumapis.com/placements';

type Json = Record<string, unknown>;
type V1Status = Json;
type V1alphaStatus = Json;

/** `datumcloud/ubuntu-2204-lts` → `projects/datumcloud/global/images/ubuntu-2204-lts` (and back). */
export function vmImageOf(datumImage: string): string {
  const i = datumImage.indexOf('/');
  return i > 0 ? `projects/${datumImage.slice(0, i)}/global/images/${datumImage.slice(i + 1)}` : datumImage;
}
/** `projects/p/global/images/n` → `p/n`. */
export function datumImageOf(vmImage: string): string {
  const m = /^projects\/([^/]+)\/global\/images\/([^/]+)$/.exec(vmImage);
  return m ? `${m[1]}/${m[2]}` : vmImage;
}

const BOOT = 'boot';

// --- v1alpha → v1alpha1 -------------------------------------------------------------------------------------

/** A v1alpha instance template as a v1alpha1 one. */
export function upTemplate(template: V1alphaSpec['template'] | undefined): V1Spec['template'] {
  const t = template?.spec ?? ({} as V1alphaSpec['template']['spec']);
  const rt = t.runtime ?? ({} as V1alphaSpec['template']['spec']['runtime']);
  const typeRequests = instanceTypeRequests(rt.resources?.instanceType ?? '');
  const extra = rt.resources?.requests ?? {};
  const requests = compact({
    cpu: extra.cpu ?? typeRequests?.cpu,
    memory: extra.memory ?? typeRequests?.memory,
  });
  const spec: Json = {};
  if (Object.keys(requests).length) spec.resources = { requests };
  const volumes: Json[] = [];
  const diskImages = new Map<string, string>();
  for (const vol of t.volumes ?? []) {
    if (vol.configMap)
      volumes.push({
        name: vol.name,
        configMap: compact({ ...vol.configMap, items: itemsUp(vol.configMap.items) }),
      });
    else if (vol.secret)
      volumes.push({ name: vol.name, secret: compact({ ...vol.secret, items: itemsUp(vol.secret.items) }) });
    else if (vol.disk?.template?.spec?.populator?.image)
      diskImages.set(vol.name, vol.disk.template.spec.populator.image.name);
  }
  const mountsOf = (atts: Array<{ name: string; mountPath?: string | undefined }> | undefined) => {
    const mounts = (atts ?? [])
      .filter((a) => a.mountPath)
      .map((a) => ({ name: a.name, mountPath: a.mountPath! }));
    return mounts.length ? mounts : undefined;
  };
  if (rt.sandbox) {
    spec.containers = (rt.sandbox.containers ?? []).map((c) =>
      compact({
        name: c.name,
        image: c.image,
        env: c.env,
        ports: c.ports?.map((p) =>
          compact({
            name: p.name,
            containerPort: p.port,
            protocol: p.protocol === 'SCTP' ? undefined : p.protocol,
          }),
        ),
        resources: c.resources
          ? compact({ requests: cpuMem(c.resources.requests), limits: cpuMem(c.resources.limits) })
          : undefined,
        volumeMounts: mountsOf(c.volumeAttachments),
      }),
    );
    if (rt.sandbox.imagePullSecrets) spec.imagePullSecrets = rt.sandbox.imagePullSecrets;
  } else if (rt.virtualMachine) {
    const atts = rt.virtualMachine.volumeAttachments ?? [];
    const boot = atts.find((a) => diskImages.has(a.name));
    if (boot) spec.image = vmImageOf(diskImages.get(boot.name)!);
    if (rt.virtualMachine.ports)
      spec.ports = rt.virtualMachine.ports.map((p) =>
        compact({
          name: p.name,
          containerPort: p.port,
          protocol: p.protocol === 'SCTP' ? undefined : p.protocol,
        }),
      );
    const mounts = mountsOf(atts.filter((a) => !diskImages.has(a.name)));
    if (mounts) spec.volumeMounts = mounts;
  }
  if (volumes.length) spec.volumes = volumes;
  spec.networkInterfaces = (t.networkInterfaces ?? []).map((n) =>
    compact({ network: n.network, networkPolicy: n.networkPolicy }),
  );
  return compact({ metadata: template?.metadata, spec: spec as V1TemplateSpec }) as V1Spec['template'];
}

function upSpec(v: V1alphaSpec): { spec: V1Spec; placements: string } {
  const replicas = (v.placements ?? []).reduce(
    (sum, p) => sum + (p.scaleSettings?.minReplicas ?? 1) * (p.cityCodes?.length ?? 0),
    0,
  );
  return {
    spec: compact({
      replicas,
      placement: cityPlacement(v.placements),
      template: upTemplate(v.template),
    }) as V1Spec,
    placements: canonicalJson(v.placements ?? []),
  };
}

/**
 * Where the placements' cities are, as v1alpha1 placement rules the engine already honours: hosts whose
 * topology.datum.net/city-code is one of the cities, spread evenly over them (maxSkew 1), so each city of a
 * placement gets its share; within a city the engine picks hosts by capacity as always.
 */
function cityPlacement(placements: V1alphaSpec['placements'] | undefined): V1Spec['placement'] | undefined {
  const cities = [...new Set((placements ?? []).flatMap((p) => p.cityCodes ?? []))].sort();
  if (cities.length === 0) return undefined;
  if (cities.length === 1) return { nodeSelector: { [CITY_CODE_LABEL]: cities[0]! } };
  return {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: CITY_CODE_LABEL, operator: 'In', values: cities }] },
          ],
        },
      },
    },
    topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: CITY_CODE_LABEL, whenUnsatisfiable: 'DoNotSchedule' },
    ],
  };
}

function cpuMem(list: Record<string, unknown> | undefined): Json | undefined {
  if (!list) return undefined;
  const out = compact({ cpu: list.cpu, memory: list.memory });
  return Object.keys(out).length ? out : undefined;
}

function itemsUp(items: Array<{ key: string; path: string; mode?: number | undefined }> | undefined) {
  return items?.map((i) => ({ key: i.key, path: i.path }));
}

function upStatus(s: V1alphaStatus | undefined): V1Status | undefined {
  if (!s) return undefined;
  return compact({
    replicas: s.replicas,
    readyReplicas: s.readyReplicas,
    updatedReplicas: s.currentReplicas,
    conditions: s.conditions,
  });
}

// --- v1alpha1 → v1alpha -------------------------------------------------------------------------------------

/** A v1alpha1 instance template as a v1alpha one. */
export function downTemplate(template: V1Spec['template'] | undefined): V1alphaSpec['template'] {
  const t = template?.spec ?? ({} as V1TemplateSpec);
  let amounts: { cpuMillis: number; memoryBytes: number } | undefined;
  try {
    amounts = instanceRequests(t);
  } catch {
    amounts = undefined;
  }
  const type = amounts ? instanceTypeOf(amounts) : undefined;
  const resources: Json = { instanceType: type ?? DEFAULT_INSTANCE_TYPE };
  if (!type && amounts)
    resources.requests = { cpu: `${amounts.cpuMillis}m`, memory: String(amounts.memoryBytes) };
  const volumes: Json[] = [];
  for (const vol of t.volumes ?? []) {
    if (vol.configMap) volumes.push({ name: vol.name, configMap: vol.configMap });
    else if (vol.secret) volumes.push({ name: vol.name, secret: vol.secret });
  }
  const portsDown = (ports: V1TemplateSpec['ports']) =>
    ports?.map((p, i) =>
      compact({ name: p.name ?? `port-${i}`, port: p.containerPort, protocol: p.protocol }),
    );
  const attachmentsOf = (mounts: V1TemplateSpec['volumeMounts']) =>
    mounts?.map((m) => ({ name: m.name, mountPath: m.mountPath }));
  const runtime: Json = { resources };
  if (t.image && isVmImage(t.image)) {
    volumes.unshift({
      name: BOOT,
      disk: {
        template: { spec: { type: 'pd-standard', populator: { image: { name: datumImageOf(t.image) } } } },
      },
    });
    runtime.virtualMachine = compact({
      volumeAttachments: [{ name: BOOT }, ...(attachmentsOf(t.volumeMounts) ?? [])],
      ports: portsDown(t.ports),
    });
  } else {
    const containers = t.containers ?? [
      compact({
        name: 'app',
        image: t.image ?? '',
        env: t.env,
        ports: t.ports,
        resources: undefined,
        volumeMounts: t.volumeMounts,
      }),
    ];
    runtime.sandbox = compact({
      containers: containers.map((c) =>
        compact({
          name: c.name,
          image: c.image,
          env: c.env,
          resources: c.resources
            ? compact({ limits: c.resources.limits, requests: c.resources.requests })
            : undefined,
          volumeAttachments: attachmentsOf(c.volumeMounts),
          ports: portsDown(c.ports),
        }),
      ),
      imagePullSecrets: t.imagePullSecrets,
    });
  }
  return compact({
    metadata: template?.metadata,
    spec: compact({
      runtime,
      networkInterfaces: (t.networkInterfaces ?? []).map((n) =>
        compact({
          network: n.network ?? (n.networkRef ? { name: n.networkRef.name } : undefined),
          networkPolicy: n.networkPolicy,
        }),
      ),
      volumes: volumes.length ? volumes : undefined,
    }),
  }) as unknown as V1alphaSpec['template'];
}

function downSpec(o: V1Spec, placements: string | undefined): V1alphaSpec {
  let parsed: V1alphaSpec['placements'] | undefined;
  try {
    parsed = placements ? (JSON.parse(placements) as V1alphaSpec['placements']) : undefined;
  } catch {
    parsed = undefined;
  }
  return compact({
    template: downTemplate(o.template),
    placements: parsed ?? [
      {
        name: 'default',
        cityCodes: [],
        scaleSettings: { minReplicas: o.replicas ?? 1, instanceManagementPolicy: 'OrderedReady' },
      },
    ],
  }) as unknown as V1alphaSpec;
}

type Cond = { type: string; status: string; reason?: string; message?: string; [k: string]: unknown };

/** Datum's Available: True with AvailablePlacementFound, else NoAvailablePlacements (its workload controller's words). */
function datumAvailable(c: Cond | undefined, scope: 'placement' | 'deployment'): Cond | undefined {
  if (!c) return undefined;
  const what = scope === 'placement' ? 'placement' : 'deployment';
  const Word = scope === 'placement' ? 'Placement' : 'Deployment';
  return c.status === 'True'
    ? { ...c, reason: `Available${Word}Found`, message: `At least one available ${what} was found` }
    : {
        ...c,
        reason: `NoAvailable${Word}s`,
        message: `No available ${what}s were found: ${c.message ?? c.reason ?? ''}`.trim(),
      };
}

/**
 * The v1alpha1 status as Datum writes a Workload's: Available with Datum's reasons, the counts, and one entry per
 * placement (its desired count from its cities; with a single placement, the Workload's counts are its counts).
 */
function downStatus(
  s: V1Status | undefined,
  spec: V1Spec | undefined,
  placementsJson: string | undefined,
): V1alphaStatus | undefined {
  if (!s) return undefined;
  const conditions = (s.conditions as Cond[] | undefined)?.map((c) =>
    c.type === 'Available' ? datumAvailable(c, 'placement')! : c,
  );
  let placements: V1alphaSpec['placements'] = [];
  try {
    placements = placementsJson ? (JSON.parse(placementsJson) as V1alphaSpec['placements']) : [];
  } catch {
    placements = [];
  }
  const available = (s.conditions as Cond[] | undefined)?.find((c) => c.type === 'Available');
  const single = placements.length === 1;
  return compact({
    conditions,
    deployments: Array.isArray(s.locations) ? s.locations.length : undefined,
    replicas: s.replicas,
    currentReplicas: s.updatedReplicas,
    desiredReplicas: spec?.replicas,
    readyReplicas: s.readyReplicas,
    placements: placements.length
      ? placements.map((p) =>
          compact({
            name: p.name,
            conditions: available ? [datumAvailable(available, 'deployment')!] : undefined,
            replicas: single ? s.replicas : undefined,
            currentReplicas: single ? s.updatedReplicas : undefined,
            desiredReplicas: (p.scaleSettings?.minReplicas ?? 1) * (p.cityCodes?.length ?? 0),
            readyReplicas: single ? s.readyReplicas : undefined,
          }),
        )
      : undefined,
  });
}

// --- stale stashes: what an edit of the other shape keeps -----------------------------------------------------

/** v1alpha1 fields with no v1alpha counterpart, kept from the stash when the v1alpha view was edited. */
const HUB_ONLY = ['selector', 'placement', 'strategy', 'networkRef', 'provider', 'autoscaling'] as const;
const HUB_ONLY_CONTAINER = ['command', 'args', 'workingDir', 'readinessProbe', 'livenessProbe'] as const;

function restoreHub(fresh: Json, stale: Json): Json {
  const out: Json = { ...fresh };
  // A placement made from the cities wins over the stale one.
  for (const k of HUB_ONLY) if (stale[k] !== undefined && out[k] === undefined) out[k] = stale[k];
  const st = (stale.template as { spec?: V1TemplateSpec } | undefined)?.spec;
  const ft = (out.template as { spec?: V1TemplateSpec } | undefined)?.spec;
  if (st && ft?.containers) {
    const byName = new Map((st.containers ?? []).map((c) => [c.name, c as unknown as Json]));
    ft.containers = ft.containers.map((c) => {
      const old = byName.get(c.name);
      if (!old) return c;
      const merged: Json = { ...c };
      for (const k of HUB_ONLY_CONTAINER) if (old[k] !== undefined) merged[k] = old[k];
      return merged as typeof c;
    });
  }
  return out;
}

function restoreSpoke(fresh: Json, stale: Json): Json {
  // Disks other than a VM's boot disk have no v1alpha1 counterpart: keep them.
  const st = stale as unknown as V1alphaSpec;
  const disks = (st.template?.spec?.volumes ?? []).filter((v) => v.disk && v.name !== BOOT);
  if (!disks.length) return fresh;
  const f = fresh as unknown as V1alphaSpec;
  const names = new Set((f.template.spec.volumes ?? []).map((v) => v.name));
  f.template.spec.volumes = [...(f.template.spec.volumes ?? []), ...disks.filter((d) => !names.has(d.name))];
  return fresh;
}

const pair: Pair = {
  hubStashAnnotation: 'compute.datumapis.com/v1alpha1-conversion',
  spokeStashAnnotation: 'compute.datumapis.com/v1alpha-conversion',
  hubAnnotations: [PLACEMENTS_ANNOTATION],
  up(s: Spoke): Hub {
    if (!s.spec) return { spec: undefined, status: upStatus(s.status), annotations: {} };
    const { spec, placements } = upSpec(s.spec as unknown as V1alphaSpec);
    return {
      spec: spec as unknown as Json,
      status: upStatus(s.status),
      annotations: { [PLACEMENTS_ANNOTATION]: placements },
    };
  },
  down(h: Hub): Spoke {
    return {
      spec: h.spec
        ? (downSpec(h.spec as unknown as V1Spec, h.annotations[PLACEMENTS_ANNOTATION]) as unknown as Json)
        : undefined,
      status: downStatus(
        h.status,
        h.spec as unknown as V1Spec | undefined,
        h.annotations[PLACEMENTS_ANNOTATION],
      ),
    };
  },
  restoreHub,
  restoreSpoke,
};

/** A Workload at compute.datumapis.com/v1alpha as v1alpha1. */
export function upWorkload(obj: KubeObjectLike, hubApiVersion: string): KubeObjectLike {
  return convertPair(pair, obj, 'up', hubApiVersion);
}

/** A Workload at compute.datumapis.com/v1alpha1 as v1alpha. */
export function downWorkload(obj: KubeObjectLike, spokeApiVersion: string): KubeObjectLike {
  return convertPair(pair, obj, 'down', spokeApiVersion);
}
