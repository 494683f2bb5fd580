/** ConversionReviews answered: objects converted both ways in one review; what cannot be served is a Failure. */
import { describe, expect, it } from 'vitest';
import { answerReview } from '../../../coordinator/conversion/review.js';

const v1 = {
  apiVersion: 'compute.datumapis.com/v1alpha1',
  kind: 'Workload',
  metadata: { name: 'w', namespace: 'n', uid: 'u1', resourceVersion: '7', labels: { a: 'b' } },
  spec: { replicas: 2, template: { spec: { image: 'nginx:latest' } } },
};

describe('answerReview', () => {
  it('converts every object, keeps metadata but annotations, echoes the uid', () => {
    const answer = answerReview({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: { uid: 'r1', desiredAPIVersion: 'compute.datumapis.com/v1alpha', objects: [v1, v1] },
    });
    expect(answer.response?.uid).toBe('r1');
    expect(answer.response?.result.status).toBe('Success');
    expect(answer.response?.convertedObjects).toHaveLength(2);
    const [o] = answer.response!.convertedObjects;
    expect(o!.apiVersion).toBe('compute.datumapis.com/v1alpha');
    const { annotations, ...meta } = o!.metadata!;
    expect(meta).toEqual(v1.metadata);
    expect(annotations).toBeDefined();
    const back = answerReview({
      request: { uid: 'r2', desiredAPIVersion: 'compute.datumapis.com/v1alpha1', objects: [o!] },
    });
    expect(back.response?.convertedObjects).toEqual([v1]);
  });

  it('answers Failure naming the object for a kind or version it does not convert', () => {
    for (const [obj, message] of [
      [{ ...v1, kind: 'Host' }, 'Host n/w: no conversion for kind Host'],
      [
        { ...v1, apiVersion: 'compute.datumapis.com/v2' },
        'Workload n/w: no conversion from compute.datumapis.com/v2',
      ],
    ] as const) {
      const answer = answerReview({
        request: { uid: 'x', desiredAPIVersion: 'compute.datumapis.com/v1alpha', objects: [obj] },
      });
      expect(answer.response?.result).toEqual({
        status: 'Failure',
        message: expect.stringContaining(message),
      });
      expect(answer.response?.convertedObjects).toEqual([]);
    }
    expect(answerReview({}).response?.result.status).toBe('Failure');
  });
});
