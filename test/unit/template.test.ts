/** The shared template helpers: which runtime a template runs on, and the hash that tells its revisions apart. */
import { describe, expect, it } from 'vitest';
import { runtimeOf, UnknownImageError } from '../../shared/api/template.js';
import { templateHash } from '../../shared/template-hash.js';

describe('runtimeOf', () => {
  it('runs VM images of the image library on vm, everything else on gvisor', () => {
    expect(runtimeOf({ image: 'projects/debian-cloud/global/images/debian-12' })).toBe('vm');
    expect(runtimeOf({ image: 'nginx:1.27' })).toBe('gvisor');
    expect(runtimeOf({ image: 'registry.example/projects/x' })).toBe('gvisor');
    expect(runtimeOf({})).toBe('gvisor');
  });

  it('rejects a projects/ image that is not a VM image path, naming the field', () => {
    expect(() => runtimeOf({ image: 'projects/debian-cloud/images/debian-11' })).toThrow(UnknownImageError);
    expect(() => runtimeOf({ image: 'projects/debian-cloud/images/debian-11' })).toThrow(
      /^template\.spec\.image: unknown image kind "projects\/debian-cloud\/images\/debian-11"/,
    );
  });
});

describe('templateHash', () => {
  it('hashes exactly as it always did, so that no running instance rolls', () => {
    expect(templateHash({ image: 'nginx' }, { cpuMillis: 1000, memoryBytes: 1 })).toBe('480be5e893');
  });

  it('changes with the template, the limits and the values', () => {
    const base = templateHash({ image: 'nginx' }, { cpuMillis: 1000, memoryBytes: 1 });
    expect(templateHash({ image: 'nginx:2' }, { cpuMillis: 1000, memoryBytes: 1 })).not.toBe(base);
    expect(templateHash({ image: 'nginx' }, { cpuMillis: 2000, memoryBytes: 1 })).not.toBe(base);
    expect(
      templateHash(
        { image: 'nginx' },
        { cpuMillis: 1000, memoryBytes: 1 },
        { env: {}, files: {}, registryAuth: [] },
      ),
    ).not.toBe(base);
  });
});
