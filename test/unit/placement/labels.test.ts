import { describe, expect, it } from 'vitest';
import {
  compileLabelSelector,
  compileNodeSelectorMap,
  compileNodeSelectorTerm,
  compileNodeSelectorTerms,
  hostLabel,
  matchesLabelSelector,
} from '../../../coordinator/placement/labels.js';
import { host } from './fixtures.js';

describe('label selectors over instance labels', () => {
  const labels = { app: 'web', tier: 'frontend', version: '2' };

  it('matchLabels and matchExpressions are ANDed', () => {
    expect(matchesLabelSelector({ matchLabels: { app: 'web' } }, labels)).toBe(true);
    expect(matchesLabelSelector({ matchLabels: { app: 'web', tier: 'backend' } }, labels)).toBe(false);
    expect(
      matchesLabelSelector(
        {
          matchLabels: { app: 'web' },
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }],
        },
        labels,
      ),
    ).toBe(false);
  });

  it.each([
    ['In', ['web', 'api'], true],
    ['In', ['api'], false],
    ['NotIn', ['api'], true],
    ['NotIn', ['web'], false],
    ['Exists', undefined, true],
    ['DoesNotExist', undefined, false],
  ] as const)('app %s %j → %s', (operator, values, want) => {
    const sel = { matchExpressions: [{ key: 'app', operator, ...(values ? { values: [...values] } : {}) }] };
    expect(matchesLabelSelector(sel, labels)).toBe(want);
  });

  it('NotIn and DoesNotExist match objects without the label', () => {
    expect(
      matchesLabelSelector({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels),
    ).toBe(true);
    expect(
      matchesLabelSelector({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels),
    ).toBe(true);
  });

  it('an empty selector matches everything, an absent one nothing', () => {
    expect(matchesLabelSelector({}, labels)).toBe(true);
    expect(matchesLabelSelector(undefined, labels)).toBe(false);
  });

  it('does not read inherited properties', () => {
    expect(
      matchesLabelSelector({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, labels),
    ).toBe(false);
  });

  it('extra requirements (matchLabelKeys) are ANDed', () => {
    const sel = compileLabelSelector({ matchLabels: { app: 'web' } }, [
      { key: 'version', operator: 'In', values: ['3'] },
    ]);
    expect(sel(labels)).toBe(false);
    expect(sel({ ...labels, version: '3' })).toBe(true);
  });
});

describe('host selectors', () => {
  const h = host('edge-1', {
    zone: 'antarctica-east1',
    labels: { cores: '8', 'another-node-label-key': 'another-node-label-value' },
  });

  it('kubernetes.io/hostname defaults to the host name', () => {
    const bare = { ...h, labels: {} };
    expect(hostLabel(bare, 'kubernetes.io/hostname')).toBe('edge-1');
    expect(hostLabel(bare, 'topology.kubernetes.io/zone')).toBeUndefined();
  });

  it('nodeSelector: every label with exactly that value', () => {
    expect(
      compileNodeSelectorMap({ 'topology.kubernetes.io/zone': 'antarctica-east1', provider: 'gcp' })(h),
    ).toBe(true);
    expect(compileNodeSelectorMap({ provider: 'aws' })(h)).toBe(false);
    expect(compileNodeSelectorMap({})(h)).toBe(true);
  });

  it('the Kubernetes docs example: zone In [antarctica-east1, antarctica-west1]', () => {
    const term = {
      matchExpressions: [
        {
          key: 'topology.kubernetes.io/zone',
          operator: 'In' as const,
          values: ['antarctica-east1', 'antarctica-west1'],
        },
      ],
    };
    expect(compileNodeSelectorTerm(term)(h)).toBe(true);
    expect(compileNodeSelectorTerm(term)(host('x', { zone: 'europe-west1' }))).toBe(false);
  });

  it.each([
    ['Gt', '4', true],
    ['Gt', '8', false],
    ['Lt', '16', true],
    ['Lt', '8', false],
    ['Gt', 'four', false],
  ] as const)('cores %s %s → %s', (operator, value, want) => {
    expect(
      compileNodeSelectorTerm({ matchExpressions: [{ key: 'cores', operator, values: [value] }] })(h),
    ).toBe(want);
  });

  it('Gt/Lt do not match hosts without the label or with a non-integer value', () => {
    const term = { matchExpressions: [{ key: 'cores', operator: 'Gt' as const, values: ['1'] }] };
    expect(compileNodeSelectorTerm(term)(host('y'))).toBe(false);
    expect(compileNodeSelectorTerm(term)(host('z', { labels: { cores: '2.5' } }))).toBe(false);
  });

  it('expressions in a term are ANDed, terms are ORed', () => {
    const inZone = {
      key: 'topology.kubernetes.io/zone',
      operator: 'In' as const,
      values: ['antarctica-east1'],
    };
    const aws = { key: 'provider', operator: 'In' as const, values: ['aws'] };
    expect(compileNodeSelectorTerm({ matchExpressions: [inZone, aws] })(h)).toBe(false);
    expect(compileNodeSelectorTerms([{ matchExpressions: [aws] }, { matchExpressions: [inZone] }])(h)).toBe(
      true,
    );
  });

  it('a term without requirements matches no host', () => {
    expect(compileNodeSelectorTerm({})(h)).toBe(false);
    expect(compileNodeSelectorTerms([])(h)).toBe(false);
  });

  it('matchFields selects by metadata.name', () => {
    expect(
      compileNodeSelectorTerm({
        matchFields: [{ key: 'metadata.name', operator: 'In', values: ['edge-1'] }],
      })(h),
    ).toBe(true);
    expect(
      compileNodeSelectorTerm({
        matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['edge-1'] }],
      })(h),
    ).toBe(false);
    expect(compileNodeSelectorTerm({ matchFields: [{ key: 'metadata.uid', operator: 'Exists' }] })(h)).toBe(
      false,
    );
  });
});
