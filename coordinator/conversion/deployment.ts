/**
 * WorkloadDeployment conversion between v1alpha1 (stored; the coordinator writes these) and Datum's v1alpha, with the
 * same lossless wrapper as Workloads (pair.ts). `location` is spec in v1alpha1 and `status.location` in v1alpha;
 * `replicas` is `scaleSettings.minReplicas`; the template maps as the Workload's does.
 */
import { compact } from './canonical.js';
import { convertPair, type Hub, type KubeObjectLike, type Pair, type Spoke } from './pair.js';
import { downTemplate, upTemplate } from './workload.js';

type Json = Record<string, unknown>;

function up(s: Spoke): Hub {
  const st = s.status as Json | undefined;
  const status = st
    ? compact({ replicas: st.replicas, readyReplicas: st.readyReplicas, conditions: st.conditions })
    : undefined;
  if (!s.spec) return { spec: undefined, status, annotations: {} };
  const v = s.spec as {
    workloadRef?: Json;
    placementName?: string;
    cityCode?: string;
    template?: Parameters<typeof upTemplate>[0];
    scaleSettings?: { minReplicas?: number };
  };
  const location = (st?.location as { name?: string } | undefined)?.name;
  return {
    spec: compact({
      workloadRef: v.workloadRef,
      location: location ?? '',
      placementName: v.placementName,
      cityCode: v.cityCode,
      replicas: v.scaleSettings?.minReplicas ?? 0,
      template: upTemplate(v.template),
    }),
    status,
    annotations: {},
  };
}

function down(h: Hub): Spoke {
  const o = h.spec as
    | {
        workloadRef?: Json;
        location?: string;
        placementName?: string;
        cityCode?: string;
        replicas?: number;
        template?: Parameters<typeof downTemplate>[0];
      }
    | undefined;
  const st = h.status;
  const status =
    st || o?.location
      ? compact({
          location: o?.location ? { name: o.location } : undefined,
          conditions: st?.conditions,
          replicas: st?.replicas,
          desiredReplicas: o?.replicas,
          readyReplicas: st?.readyReplicas,
        })
      : undefined;
  if (!o) return { spec: undefined, status };
  return {
    spec: compact({
      workloadRef: o.workloadRef,
      placementName: o.placementName,
      cityCode: o.cityCode,
      template: downTemplate(o.template),
      scaleSettings: { minReplicas: o.replicas ?? 0, instanceManagementPolicy: 'OrderedReady' },
    }),
    status,
  };
}

const pair: Pair = {
  hubStashAnnotation: 'compute.datumapis.com/v1alpha1-conversion',
  spokeStashAnnotation: 'compute.datumapis.com/v1alpha-conversion',
  hubAnnotations: [],
  up,
  down,
  restoreHub: (fresh, stale) =>
    compact({ ...fresh, templateHash: stale.templateHash, revisions: stale.revisions }),
  restoreSpoke: (fresh) => fresh,
};

/** A WorkloadDeployment at v1alpha as v1alpha1. */
export function upDeployment(obj: KubeObjectLike, hubApiVersion: string): KubeObjectLike {
  return convertPair(pair, obj, 'up', hubApiVersion);
}

/** A WorkloadDeployment at v1alpha1 as v1alpha. */
export function downDeployment(obj: KubeObjectLike, spokeApiVersion: string): KubeObjectLike {
  return convertPair(pair, obj, 'down', spokeApiVersion);
}
