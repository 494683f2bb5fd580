/**
 * `spec.autoscaling` → the resolved {@link AutoscalerSpec} the decision takes: HPA's defaults filled in (target
 * 80 %, tolerance 10 %, scale-up 4 instances or 100 % per 15 s with no window, scale-down 100 % per 15 s after
 * a window of `defaultDownWindowSeconds`, 300 unless the coordinator's flag says otherwise).
 */
import type { ScalingRules, WorkloadAutoscaling } from '../../shared/api/index.js';
import {
  type AutoscalerSpec,
  DEFAULT_SCALE_DOWN,
  DEFAULT_SCALE_UP,
  DEFAULT_TARGET_UTILIZATION,
  DEFAULT_TOLERANCE,
  type DirectionRules,
} from './decide.js';

/** Coordinator-wide defaults (flags). */
export interface AutoscalerDefaults {
  /** Scale-down stabilisation window when the Workload sets none (HPA's --horizontal-pod-autoscaler-downscale-stabilization). */
  downWindowSeconds: number;
  /** Tolerance (HPA's --horizontal-pod-autoscaler-tolerance). */
  tolerance: number;
}

export const DEFAULT_AUTOSCALER: AutoscalerDefaults = {
  downWindowSeconds: 300,
  tolerance: DEFAULT_TOLERANCE,
};

function rules(given: ScalingRules | undefined, fallback: DirectionRules): DirectionRules {
  return {
    windowSeconds: given?.stabilizationWindowSeconds ?? fallback.windowSeconds,
    select: given?.selectPolicy ?? fallback.select,
    policies: given?.policies?.map((p) => ({ ...p })) ?? fallback.policies,
  };
}

/** The resolved spec of a Workload's `spec.autoscaling`. */
export function resolveAutoscaling(
  a: WorkloadAutoscaling,
  defaults: AutoscalerDefaults = DEFAULT_AUTOSCALER,
): AutoscalerSpec {
  return {
    minReplicas: a.minReplicas,
    maxReplicas: a.maxReplicas,
    targetUtilization: a.metrics?.[0]?.resource.target.averageUtilization ?? DEFAULT_TARGET_UTILIZATION,
    tolerance: defaults.tolerance,
    up: rules(a.behavior?.scaleUp, DEFAULT_SCALE_UP),
    down: rules(a.behavior?.scaleDown, { ...DEFAULT_SCALE_DOWN, windowSeconds: defaults.downWindowSeconds }),
  };
}
