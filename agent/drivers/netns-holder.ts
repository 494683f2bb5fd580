/**
 * The network-namespace holder of a gVisor instance with Network attachments, after the pause containers of
 * Kubernetes and Nomad: a container that does nothing but exist, whose network namespace the instance's own
 * containers join (`NetworkMode: container:<holder>`). It owns the instance's published ports; the agent moves
 * the instance's Network interfaces (veths) into its namespace before any container of the instance starts, so
 * the sandboxes (runsc joins the namespace Docker gives it) find them there.
 *
 * The holder runs a 130-byte static program that calls pause() forever, from a one-file image the agent imports
 * itself, under dockerd's default runtime (it runs no user code), as nobody, without capabilities, on a read-only
 * root. Instances without attachments have no holder and are started exactly as before.
 */
import type Docker from 'dockerode';
import { LABELS } from './gvisor-state.js';
import { ensureOneFileImage, tinyElf } from './sandbox-launch.js';

/** Tag of the holder's one-file image. */
export const HOLDER_IMAGE = 'edgeplane/netns-holder:v1';

/** Value of {@link LABELS.role} on a holder. */
export const HOLDER_ROLE = 'netns-holder';

/** `pause: mov eax, 34; syscall; jmp pause`: waits for signals forever (SIGKILL ends it). */
export function pauseElf(): Buffer {
  return tinyElf(Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]));
}

/** Imports the holder image into dockerd when it does not have it. */
export function ensureHolderImage(docker: Docker): Promise<void> {
  return ensureOneFileImage(docker, HOLDER_IMAGE, 'holder', pauseElf());
}

/** What {@link holderCreateOptions} needs. */
export interface HolderSpec {
  /** Container name. */
  name: string;
  /** The instance's identifying labels (host, namespace, instance, workload, template hash). */
  labels: Record<string, string>;
  /** Port names by `<port>/<protocol>` (the port-names label). */
  portNames: Record<string, string>;
  /** Exposed ports and their bindings, as the first container of an instance without holder would have them. */
  exposed: Record<string, object>;
  bindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
}

/** The holder's `docker create` options. */
export function holderCreateOptions(spec: HolderSpec): Docker.ContainerCreateOptions {
  return {
    name: spec.name,
    Image: HOLDER_IMAGE,
    Cmd: ['/holder'],
    User: '65534:65534',
    ExposedPorts: spec.exposed,
    Labels: {
      ...spec.labels,
      [LABELS.role]: HOLDER_ROLE,
      [LABELS.portNames]: JSON.stringify(spec.portNames),
    },
    HostConfig: {
      PortBindings: spec.bindings,
      // A holder that died took the namespace, and with it the interfaces, along: the instance is then
      // incomplete and replaced as a whole, never restarted under its containers.
      RestartPolicy: { Name: 'no' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Memory: 16 * 1024 * 1024,
      NanoCpus: 10_000_000,
    },
  };
}
