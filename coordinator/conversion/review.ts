/**
 * A ConversionReview (apiextensions.k8s.io/v1) answered: every object converted to `desiredAPIVersion` by the pure
 * pairs of workload.ts and deployment.ts. Pure; a request it cannot serve gets `result.status: Failure` with a
 * message naming the object and versions (kube-apiserver shows it to the client), never an exception.
 */
import { DATUM_VERSION, GROUP, VERSION } from '../../shared/api/kinds.js';
import { downDeployment, upDeployment } from './deployment.js';
import type { KubeObjectLike } from './pair.js';
import { downWorkload, upWorkload } from './workload.js';

/** The parts of a ConversionReview the webhook reads and writes. */
export interface ConversionReview {
  apiVersion?: string;
  kind?: string;
  request?: { uid?: string; desiredAPIVersion?: string; objects?: KubeObjectLike[] };
  response?: {
    uid: string;
    convertedObjects: KubeObjectLike[];
    result: { status: 'Success' | 'Failure'; message?: string };
  };
}

const HUB = `${GROUP}/${VERSION}`;
const SPOKE = `${GROUP}/${DATUM_VERSION}`;

type Convert = (o: KubeObjectLike, to: string) => KubeObjectLike;
const CONVERTERS: Record<string, { up: Convert; down: Convert }> = {
  Workload: { up: upWorkload, down: downWorkload },
  WorkloadDeployment: { up: upDeployment, down: downDeployment },
};

/** One object to `to`, or an Error naming it. */
export function convertObject(obj: KubeObjectLike, to: string): KubeObjectLike {
  if (obj.apiVersion === to) return obj;
  const name = `${obj.kind ?? '?'} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? '?'}`;
  const c = CONVERTERS[obj.kind];
  if (!c) throw new Error(`${name}: no conversion for kind ${obj.kind}`);
  if (obj.apiVersion === SPOKE && to === HUB) return c.up(obj, to);
  if (obj.apiVersion === HUB && to === SPOKE) return c.down(obj, to);
  throw new Error(`${name}: no conversion from ${obj.apiVersion} to ${to}`);
}

/** The answer to a ConversionReview. */
export function answerReview(review: ConversionReview): ConversionReview {
  const uid = review.request?.uid ?? '';
  const to = review.request?.desiredAPIVersion ?? '';
  try {
    if (!review.request) throw new Error('ConversionReview without request');
    const convertedObjects = (review.request.objects ?? []).map((o) => convertObject(o, to));
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      response: { uid, convertedObjects, result: { status: 'Success' } },
    };
  } catch (err) {
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      response: { uid, convertedObjects: [], result: { status: 'Failure', message: (err as Error).message } },
    };
  }
}
