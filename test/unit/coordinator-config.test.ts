/** The coordinator's flags: each bad value is an error naming the flag; good ones become the config. */
import { describe, expect, it } from 'vitest';
import { ConfigError, type CoordinatorFlags, loadCoordinatorConfig } from '../../coordinator/config.js';

const flags: CoordinatorFlags = {
  nats: 'nats://127.0.0.1:4222, nats://127.0.0.1:4223',
  subjectPrefix: 'edge',
  kvReplicas: '1',
  lostAfter: '30',
  leaderElect: true,
  leaseNamespace: 'kube-system',
  leaseName: 'edge-coordinator',
  leaseDuration: '15',
};

describe('loadCoordinatorConfig', () => {
  it('turns the flags into the config, with client-go proportions for the lease', () => {
    expect(loadCoordinatorConfig(flags, {})).toEqual({
      natsServers: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'],
      subjectPrefix: 'edge',
      kvReplicas: 1,
      lostAfterMs: 30_000,
      maxHeartbeatMs: 30_000,
      maxLostShare: 0.55,
      underlayMtu: 1500,
      requireOverlay: true,
      intentResyncMs: 5_000,
      autoscaleSyncMs: 15_000,
      autoscaleDownWindowSeconds: 300,
      instancesApi: { mode: 'crd' },
      leaderElection: {
        namespace: 'kube-system',
        name: 'edge-coordinator',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
    });
  });

  it('takes the kubeconfig from the flag, else from KUBECONFIG', () => {
    expect(loadCoordinatorConfig(flags, { KUBECONFIG: '/env' }).kubeconfig).toBe('/env');
    expect(loadCoordinatorConfig({ ...flags, kubeconfig: '/flag' }, { KUBECONFIG: '/env' }).kubeconfig).toBe(
      '/flag',
    );
  });

  it('turns enrollment on with both operator-mode files', () => {
    expect(
      loadCoordinatorConfig(
        { ...flags, enrollKeys: '/k.json', natsSysCreds: '/sys.creds', maxHeartbeat: '10' },
        {},
      ),
    ).toMatchObject({ enrollment: { keysFile: '/k.json', sysCreds: '/sys.creds' }, maxHeartbeatMs: 10_000 });
  });

  it('takes the underlay MTU and --no-require-overlay, and names a bad MTU', () => {
    expect(loadCoordinatorConfig({ ...flags, underlayMtu: '9000', requireOverlay: false }, {})).toMatchObject(
      {
        underlayMtu: 9000,
        requireOverlay: false,
      },
    );
    expect(() => loadCoordinatorConfig({ ...flags, underlayMtu: '1000' }, {})).toThrow(/^--underlay-mtu: /);
    expect(() => loadCoordinatorConfig({ ...flags, autoscaleSyncPeriod: '0' }, {})).toThrow(
      /^--autoscale-sync-period: /,
    );
    expect(() => loadCoordinatorConfig({ ...flags, autoscaleDownscaleStabilization: '-1' }, {})).toThrow(
      /^--autoscale-downscale-stabilization: /,
    );
  });

  it('has no leader election with --no-leader-elect', () => {
    expect(loadCoordinatorConfig({ ...flags, leaderElect: false }, {}).leaderElection).toBeUndefined();
  });

  it('retries at least every 500 ms on a short lease', () => {
    expect(loadCoordinatorConfig({ ...flags, leaseDuration: '2' }, {}).leaderElection?.retryPeriodMs).toBe(
      500,
    );
  });

  it.each([
    ['kvReplicas', '0', /^--kv-replicas: expected a positive integer, got 0$/],
    ['kvReplicas', '1.5', /^--kv-replicas: /],
    ['kvReplicas', 'three', /^--kv-replicas: /],
    ['lostAfter', '0', /^--lost-after: expected a positive number of seconds, got 0$/],
    ['lostAfter', 'soon', /^--lost-after: /],
    ['leaseDuration', '1', /^--lease-duration: expected at least 2 seconds, got 1$/],
    ['nats', ' , ', /^--nats: /],
    ['maxHeartbeat', '0', /^--max-heartbeat: expected a positive number of seconds, got 0$/],
    ['maxLostShare', '0', /^--max-lost-share: expected a fraction in \(0, 1\], got 0$/],
    ['maxLostShare', '1.5', /^--max-lost-share: /],
    ['intentResync', '0', /^--intent-resync: expected a positive number of seconds, got 0$/],
    ['enrollKeys', '/keys.json', /^--enroll-keys and --nats-sys-creds go together/],
  ] as const)('rejects --%s %s naming the flag', (flag, value, message) => {
    const bad = () => loadCoordinatorConfig({ ...flags, [flag]: value }, {});
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(message);
  });
});

describe('conversion webhook flags', () => {
  it('serves the webhook only when --webhook-address is given', () => {
    expect(loadCoordinatorConfig(flags, {}).webhook).toBeUndefined();
    expect(
      loadCoordinatorConfig(
        {
          ...flags,
          webhookAddress: '0.0.0.0:9443',
          webhookCertSecret: 'edgeplane-system/edge-coordinator-webhook-tls',
        },
        {},
      ).webhook,
    ).toEqual({ address: '0.0.0.0:9443', certSecret: 'edgeplane-system/edge-coordinator-webhook-tls' });
  });

  it.each([
    [{ webhookAddress: 'nowhere' }, /^--webhook-address: expected host:port/],
    [
      { webhookAddress: ':9443', webhookUrl: 'http://x/convert' },
      /^--webhook-url: expected an https:\/\/ URL/,
    ],
    [
      { webhookAddress: ':9443', webhookCertSecret: 'just-a-name' },
      /^--webhook-cert-secret: expected namespace\/name/,
    ],
    [{ webhookCertDir: '/tmp/x' }, /need --webhook-address/],
  ])('refuses %j naming the flag', (extra, message) => {
    expect(() => loadCoordinatorConfig({ ...flags, ...extra }, {})).toThrow(ConfigError);
    expect(() => loadCoordinatorConfig({ ...flags, ...extra }, {})).toThrow(message);
  });
});
