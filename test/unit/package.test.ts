/**
 * The Debian package's configuration surface: every `edge-agent` flag has a key in the config schema and in the
 * conffile the package installs (deploy/package/agent.yaml), so an operator can set anything without flags.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSettings, loadAgentConfig } from '../../agent/config.js';

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
