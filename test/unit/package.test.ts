/**
 * The Debian package's configuration surface: every `edge-agent` flag has a key in the config schema and in the
 * conffile the package installs (deploy/package/agent.yaml), so an operator can set anything without flags.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSettings, loadAgentConfig } from '../../agent/config.js';
import { AGENT_NODE_ENV, AGENT_NODE_FLAGS } from '../../agent/runtime-flags.js';
import { controlFile, manPage, RECOMMENDS, wrapperScript } from '../../deploy/package/control.js';

const root = path.resolve(import.meta.dirname, '../..');
const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** The long flags of the agent's run command (withAgentOptions in agent/main.ts). */
const mainSource = fs.readFileSync(path.join(root, 'agent/main.ts'), 'utf8');
const runOptions = mainSource.slice(mainSource.indexOf('function withAgentOptions'));
const flags = [...runOptions.slice(0, runOptions.indexOf('\n}\n')).matchAll(/\.option\(\s*'--([a-z-]+)/g)]
  .map((m) => camel(m[1] as string))
  .filter((f) => f !== 'config');

describe('agent configuration keys', () => {
  it('has a config key for every flag', () => {
    expect(flags.length).toBeGreaterThan(20);
    const keys = Object.keys(AgentSettings.shape);
    expect(flags.filter((f) => !keys.includes(f))).toEqual([]);
  });
  it('documents every key in the packaged conffile', () => {
    const text = fs.readFileSync(path.join(root, 'deploy/package/agent.yaml'), 'utf8');
    const documented = [...text.matchAll(/^#?([a-zA-Z]+):/gm)].map((m) => m[1]);
    expect(Object.keys(AgentSettings.shape).filter((k) => !documented.includes(k))).toEqual([]);
  });
  it('reads TLS settings from the file, overridden by the environment', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-conf-'));
    const file = path.join(dir, 'agent.yaml');
    fs.writeFileSync(file, 'location: l1\nnatsCa: /etc/ca.pem\nnatsCert: /etc/c.pem\nnatsKey: /etc/c.key\n');
    expect(loadAgentConfig({ config: file, host: 'h' }, { EDGE_NATS_KEY: '/run/k' })).toMatchObject({
      natsCa: '/etc/ca.pem',
      natsCert: '/etc/c.pem',
      natsKey: '/run/k',
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('package metadata', () => {
  it('starts the agent with its memory settings', () => {
    const text = wrapperScript({
      what: 'agent',
      node: '/usr/lib/edgeplane/node',
      script: '/usr/lib/edgeplane/edge-agent.mjs',
      flags: AGENT_NODE_FLAGS,
      env: AGENT_NODE_ENV,
    });
    expect(text).toMatch(/^#!\/bin\/sh\n/);
    expect(text).toContain('export MALLOC_ARENA_MAX=2\n');
    expect(text).toContain(
      'exec /usr/lib/edgeplane/node --max-semi-space-size=1 --v8-pool-size=0 /usr/lib/edgeplane/edge-agent.mjs "$@"',
    );
  });
  it('depends on Debian packages only, the runtimes as Recommends', () => {
    const control = controlFile({ version: '1.2.3', installedKiB: 10, depends: 'libc6 (>= 2.34)' });
    expect(control).toMatch(/^Package: edgeplane-agent\nVersion: 1\.2\.3\n/);
    expect(control).toContain('Depends: libc6 (>= 2.34), init-system-helpers');
    expect(control).toContain(`Recommends: ${RECOMMENDS.join(', ')}\n`);
    expect(control).not.toMatch(/nodejs|npm/);
  });
  it('escapes roff in manual pages', () => {
    expect(manPage({ name: 'x', description: 'd', version: '1', help: '.bad\\n' })).toContain('\\&.bad\\en');
  });
  it('ships a unit whose restart kills the agent alone', () => {
    const unit = fs.readFileSync(path.join(root, 'deploy/package/debian/edge-agent.service'), 'utf8');
    for (const line of [
      'Restart=always',
      'KillMode=process',
      'ExecStart=/usr/bin/edge-agent run --config /etc/edgeplane/agent.yaml',
      'EnvironmentFile=-/etc/default/edge-agent',
      'RuntimeDirectoryPreserve=yes',
    ])
      expect(unit.split('\n')).toContain(line);
  });
});
