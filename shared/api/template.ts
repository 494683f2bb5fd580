/**
 * The instance template: what every replica of a Workload runs. One schema serves both shapes the docs use:
 * the VM/container shorthand (`image`, `machineType`, `env`, `command` at the top) and the pod-style
 * `containers` list (several containers that share one instance's network and volumes).
 */
import { z } from 'zod';
import { cel, countPresent, has, unique } from './cel.js';
import type { Runtime } from './instance.js';
import { LocalObjectReference, Quantity, TemplateMetadata } from './meta.js';

const CIDR = /^([0-9]{1,3}\.){3}[0-9]{1,3}\/[0-9]{1,2}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
/** The shape of GCP-style machine type names; shared/resources.ts checks the exact sizes. */
const MACHINE_TYPE =
  /^(e2-(micro|small|medium)|(e2|n1|n2|n2d|c2)-(standard|highmem|highcpu)-[0-9]+|((e2|n2|n2d)-)?custom-[0-9]+-[0-9]+(-ext)?)$/;

/** Selects one key of a Secret in the Workload's namespace. */
export const SecretKeySelector = z
  .object({
    name: z.string().min(1).describe('Name of the Secret, in the Workload namespace.'),
    key: z.string().min(1).describe('Key within the Secret.'),
    optional: z
      .boolean()
      .optional()
      .describe('When true, a missing Secret or key leaves the variable unset.'),
  })
  .describe('A key of a Secret.');

/** Selects one key of a ConfigMap in the Workload's namespace. */
export const ConfigMapKeySelector = z
  .object({
    name: z.string().min(1).describe('Name of the ConfigMap, in the Workload namespace.'),
    key: z.string().min(1).describe('Key within the ConfigMap.'),
    optional: z
      .boolean()
      .optional()
      .describe('When true, a missing ConfigMap or key leaves the variable unset.'),
  })
  .describe('A key of a ConfigMap.');

/** One environment variable, with a literal value or a value taken from a Secret or ConfigMap. */
export const EnvVar = z
  .object({
    name: z.string().regex(ENV_NAME).describe('Name of the environment variable.'),
    value: z.string().optional().describe('Literal value.'),
    valueFrom: z
      .object({
        secretKeyRef: SecretKeySelector.optional().describe('Take the value from a key of a Secret.'),
        configMapKeyRef: ConfigMapKeySelector.optional().describe(
          'Take the value from a key of a ConfigMap.',
        ),
      })
      .apply(
        cel([
          {
            rule: '(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) == 1',
            message: 'valueFrom needs exactly one of secretKeyRef or configMapKeyRef',
            holds: (s) => countPresent(s, ['secretKeyRef', 'configMapKeyRef']) === 1,
          },
        ]),
      )
      .optional()
      .describe('Source of the value, when it is not literal.'),
  })
  .apply(
    cel([
      {
        rule: '!(has(self.value) && has(self.valueFrom))',
        message: 'env: set value or valueFrom, not both',
        holds: (s) => !(has(s, 'value') && has(s, 'valueFrom')),
      },
    ]),
  )
  .describe('An environment variable.');
export type EnvVar = z.infer<typeof EnvVar>;

/** A port the instance listens on; published on the host by the agent. */
export const ContainerPort = z
  .object({
    name: z
      .string()
      .regex(DNS_LABEL)
      .max(15)
      .optional()
      .describe('Name of the port, unique in the instance.'),
    containerPort: z.number().int().min(1).max(65535).describe('Port the process listens on.'),
    protocol: z.enum(['TCP', 'UDP']).optional().describe('TCP (default) or UDP.'),
    hostPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('Host port to publish on. When omitted the agent picks a free one and reports it.'),
  })
  .describe('A network port of the instance.');
export type ContainerPort = z.infer<typeof ContainerPort>;

/** CPU and memory requests (what placement reserves) and limits (what the runtime enforces). */
export const ResourceRequirements = z
  .object({
    requests: z
      .object({
        cpu: Quantity.optional().describe('CPU reserved for the instance, in cores (e.g. 100m, 2).'),
        memory: Quantity.optional().describe('Memory reserved for the instance (e.g. 128Mi, 4Gi).'),
      })
      .optional()
      .describe('What placement reserves on the host.'),
    limits: z
      .object({
        cpu: Quantity.optional().describe('CPU ceiling enforced by the runtime.'),
        memory: Quantity.optional().describe('Memory ceiling enforced by the runtime.'),
      })
      .optional()
      .describe('What the runtime enforces. Defaults to the requests.'),
  })
  .describe('Compute resources. When omitted, they follow from machineType.');
export type ResourceRequirements = z.infer<typeof ResourceRequirements>;

/** Where a volume appears inside the instance. */
export const VolumeMount = z
  .object({
    name: z.string().min(1).describe('Name of a volume of the template.'),
    mountPath: z.string().startsWith('/').describe('Absolute path in the instance.'),
    readOnly: z.boolean().optional().describe('Mount read-only.'),
    subPath: z.string().optional().describe('Mount only this path inside the volume.'),
  })
  .describe('A mount of a volume.');
export type VolumeMount = z.infer<typeof VolumeMount>;

const KeyToPath = z
  .object({
    key: z.string().min(1).describe('Key to project.'),
    path: z.string().min(1).describe('Relative file path to write the key to.'),
  })
  .describe('Projects one key to a file path.');

/** A volume: scratch space, files from a ConfigMap or Secret, or a persistent claim. */
export const Volume = z
  .object({
    name: z.string().regex(DNS_LABEL).max(63).describe('Name of the volume, referred to by volumeMounts.'),
    emptyDir: z
      .object({
        medium: z.enum(['', 'Memory']).optional().describe('"" for disk, Memory for tmpfs.'),
        sizeLimit: Quantity.optional().describe('Size limit of the volume.'),
      })
      .optional()
      .describe('Scratch space that lives as long as the instance and is shared by its containers.'),
    configMap: z
      .object({
        name: z.string().min(1).describe('Name of the ConfigMap.'),
        items: z.array(KeyToPath).optional().describe('Keys to project; all keys when omitted.'),
        defaultMode: z.number().int().min(0).max(511).optional().describe('File mode bits, e.g. 0644.'),
        optional: z.boolean().optional().describe('Whether the ConfigMap may be missing.'),
      })
      .optional()
      .describe('The keys of a ConfigMap as files.'),
    secret: z
      .object({
        secretName: z.string().min(1).describe('Name of the Secret.'),
        items: z.array(KeyToPath).optional().describe('Keys to project; all keys when omitted.'),
        defaultMode: z.number().int().min(0).max(511).optional().describe('File mode bits, e.g. 0400.'),
        optional: z.boolean().optional().describe('Whether the Secret may be missing.'),
      })
      .optional()
      .describe('The keys of a Secret as files.'),
    persistentVolumeClaim: z
      .object({
        claimName: z
          .string()
          .min(1)
          .describe('Name of the claim; a named volume on the host that outlives instances.'),
        readOnly: z.boolean().optional().describe('Mount read-only.'),
      })
      .optional()
      .describe(
        'A named volume on the host that survives instance restarts and replacement on the same host.',
      ),
  })
  .apply(
    cel([
      {
        rule: '(has(self.emptyDir) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.persistentVolumeClaim) ? 1 : 0) == 1',
        message: 'a volume needs exactly one of emptyDir, configMap, secret or persistentVolumeClaim',
        holds: (s) => countPresent(s, ['emptyDir', 'configMap', 'secret', 'persistentVolumeClaim']) === 1,
      },
    ]),
  )
  .describe('A volume of the instance.');
export type Volume = z.infer<typeof Volume>;

/** A health probe, as in Kubernetes: exec, HTTP GET or TCP. */
export const Probe = z
  .object({
    exec: z
      .object({ command: z.array(z.string()).min(1).describe('Command to run; exit 0 is healthy.') })
      .optional()
      .describe('Run a command in the instance.'),
    httpGet: z
      .object({
        path: z.string().optional().describe('Path to request (default /).'),
        port: z
          .union([z.number().int().min(1).max(65535), z.string()])
          .meta({ 'x-kubernetes-int-or-string': true })
          .describe('Port number or name.'),
        scheme: z.enum(['HTTP', 'HTTPS']).optional().describe('HTTP (default) or HTTPS.'),
      })
      .optional()
      .describe('An HTTP GET; a 2xx or 3xx status is healthy.'),
    tcpSocket: z
      .object({
        port: z
          .union([z.number().int().min(1).max(65535), z.string()])
          .meta({ 'x-kubernetes-int-or-string': true })
          .describe('Port number or name.'),
      })
      .optional()
      .describe('A TCP connect; success is healthy.'),
    initialDelaySeconds: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Seconds after start before the first probe.'),
    periodSeconds: z.number().int().min(1).optional().describe('Seconds between probes (default 10).'),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Seconds before a probe times out (default 1).'),
    successThreshold: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Consecutive successes to count as healthy (default 1).'),
    failureThreshold: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Consecutive failures to count as unhealthy (default 3).'),
  })
  .apply(
    cel([
      {
        rule: '(has(self.exec) ? 1 : 0) + (has(self.httpGet) ? 1 : 0) + (has(self.tcpSocket) ? 1 : 0) == 1',
        message: 'a probe needs exactly one of exec, httpGet or tcpSocket',
        holds: (s) => countPresent(s, ['exec', 'httpGet', 'tcpSocket']) === 1,
      },
    ]),
  )
  .describe('A health probe.');
export type Probe = z.infer<typeof Probe>;

/** One container of a pod-style template. */
export const Container = z
  .object({
    name: z.string().regex(DNS_LABEL).max(63).describe('Name of the container, unique in the instance.'),
    image: z.string().min(1).describe('OCI image reference, e.g. nginx:1.25.'),
    command: z.array(z.string()).optional().describe("Entrypoint; replaces the image's ENTRYPOINT."),
    args: z.array(z.string()).optional().describe("Arguments; replace the image's CMD."),
    workingDir: z.string().optional().describe('Working directory.'),
    env: z.array(EnvVar).optional().describe('Environment variables.'),
    ports: z.array(ContainerPort).optional().describe('Ports the container listens on.'),
    resources: ResourceRequirements.optional().describe('CPU and memory for this container.'),
    volumeMounts: z.array(VolumeMount).max(32).optional().describe('Volumes mounted into this container.'),
    readinessProbe: Probe.optional().describe('When it passes, the instance is Ready.'),
    livenessProbe: Probe.optional().describe('When it fails, the container is restarted.'),
  })
  .describe('A container of the instance.');
export type Container = z.infer<typeof Container>;

/** Ports of an ingress rule: a port or a range, TCP when no protocol is given (Datum's NetworkPolicyPort). */
export const NetworkPolicyPort = z
  .object({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional().describe('TCP (default), UDP or SCTP.'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('Port, or first port of a range; all when absent.'),
    endPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('Last port of the range starting at port.'),
  })
  .apply(
    cel([
      {
        rule: '!has(self.endPort) || (has(self.port) && self.endPort >= self.port)',
        message: 'endPort needs port, and endPort >= port',
        holds: (s) => s.endPort === undefined || (s.port !== undefined && s.endPort >= s.port),
      },
    ]),
  )
  .describe('Ports let in.');

/** Sources of an ingress rule: an address block less its exceptions (Datum's NetworkPolicyPeer). */
export const NetworkPolicyPeer = z
  .object({
    ipBlock: z
      .object({
        cidr: z.string().regex(CIDR).describe('IPv4 block let in, e.g. 10.0.0.0/16.'),
        except: z
          .array(z.string().regex(CIDR))
          .optional()
          .describe('Blocks inside cidr that are not let in.'),
      })
      .describe('An address block.'),
  })
  .describe('A source let in.');

/** One ingress rule: traffic to `ports` from `from` is let in (Datum's NetworkPolicyIngressRule). */
export const NetworkPolicyIngressRule = z
  .object({
    ports: z.array(NetworkPolicyPort).optional().describe('Ports let in; every port when absent.'),
    from: z.array(NetworkPolicyPeer).optional().describe('Sources let in; every source when absent.'),
  })
  .describe('An ingress rule.');
export type NetworkPolicyIngressRule = z.infer<typeof NetworkPolicyIngressRule>;

/** Most attachments one instance may have. */
export const MAX_NETWORK_INTERFACES = 8;

/**
 * A network attachment of the instance. The Network is named by `networkRef` or by Datum's `network`
 * (`{name, namespace}`; the namespace, when given, must be the Workload's).
 */
export const NetworkInterface = z
  .object({
    networkRef: LocalObjectReference.optional().describe('The Network to attach to.'),
    network: z
      .object({
        name: z.string().min(1).max(253).describe('Name of the Network.'),
        namespace: z
          .string()
          .optional()
          .describe("Namespace of the Network: the Workload's (others are refused)."),
      })
      .optional()
      .describe("The Network to attach to (Datum's spelling of networkRef)."),
    subnetRef: LocalObjectReference.optional().describe(
      'The subnet of that network to take the address from.',
    ),
    primary: z
      .boolean()
      .optional()
      .describe('Whether this is the primary interface (its address is the networkIP); default: the first.'),
    ipAddress: z
      .string()
      .optional()
      .describe('A static IPv4 address on that network (or subnet); only with replicas <= 1.'),
    networkPolicy: z
      .object({
        ingress: z
          .array(NetworkPolicyIngressRule)
          .optional()
          .describe('Ingress rules; absent: everything is let in; empty: nothing but replies.'),
      })
      .optional()
      .describe('Ingress policy of this interface, enforced on the host.'),
  })
  .apply(
    cel([
      {
        rule: '(has(self.networkRef) ? 1 : 0) + (has(self.network) ? 1 : 0) == 1',
        message: 'a network interface needs exactly one of networkRef or network',
        holds: (s) => countPresent(s, ['networkRef', 'network']) === 1,
      },
    ]),
  )
  .describe('A network attachment.');
export type NetworkInterface = z.infer<typeof NetworkInterface>;

/** The name of the Network an attachment names, in either spelling. */
export function attachedNetwork(n: Pick<NetworkInterface, 'networkRef' | 'network'>): string {
  return n.networkRef?.name ?? n.network?.name ?? '';
}

/** What one instance runs: an image (container or VM) or a list of containers, and their resources. */
export const InstanceTemplateSpec = z
  .object({
    machineType: z
      .string()
      .regex(MACHINE_TYPE)
      .optional()
      .describe(
        'GCP-style machine type (e2-micro, e2-small, n2-standard-4, c2-standard-8, …): vCPUs and memory.',
      ),
    image: z
      .string()
      .optional()
      .describe(
        'An OCI image (nginx:latest, gcr.io/p/app:v1) runs as a gVisor-sandboxed container; a VM image (projects/<project>/global/images/<name>) runs as a virtual machine.',
      ),
    imagePullSecrets: z
      .array(LocalObjectReference)
      .optional()
      .describe('Secrets holding registry credentials.'),
    command: z.array(z.string()).optional().describe('Entrypoint of the image, for the single-image form.'),
    args: z.array(z.string()).optional().describe('Arguments, for the single-image form.'),
    env: z.array(EnvVar).optional().describe('Environment variables, for the single-image form.'),
    ports: z.array(ContainerPort).optional().describe('Ports, for the single-image form.'),
    resources: ResourceRequirements.optional().describe(
      'CPU and memory; when omitted they follow from machineType.',
    ),
    volumes: z
      .array(Volume)
      .max(32)
      .apply(
        cel([
          {
            rule: 'self.all(v, self.exists_one(w, w.name == v.name))',
            message: 'volume names must be unique',
            holds: (s) => unique(s, (v) => v.name),
          },
        ]),
      )
      .optional()
      .describe('Volumes of the instance.'),
    volumeMounts: z
      .array(VolumeMount)
      .max(32)
      .optional()
      .describe('Volume mounts, for the single-image form.'),
    containers: z
      .array(Container)
      .min(1)
      .max(16)
      .apply(
        cel([
          {
            rule: 'self.all(c, self.exists_one(d, d.name == c.name))',
            message: 'container names must be unique',
            holds: (s) => unique(s, (c) => c.name),
          },
        ]),
      )
      .optional()
      .describe('Containers that share the instance network and volumes.'),
    networkInterfaces: z
      .array(NetworkInterface)
      .max(MAX_NETWORK_INTERFACES)
      .apply(
        cel([
          {
            rule: 'self.filter(n, has(n.primary) && n.primary).size() <= 1',
            message: 'at most one network interface may be primary',
            holds: (s) => s.filter((n) => n.primary === true).length <= 1,
          },
        ]),
      )
      .optional()
      // One Network attached twice is refused by the controller (attachments.ts): as a CEL rule over unbounded
      // names it exceeds the API server's cost budget.
      .describe('Network attachments (at most 8, one primary, each Network once).'),
    readinessProbe: Probe.optional().describe('Readiness probe, for the single-image form.'),
    livenessProbe: Probe.optional().describe('Liveness probe, for the single-image form.'),
  })
  .apply(
    cel([
      {
        rule: 'has(self.image) || has(self.containers)',
        message: 'template.spec needs image or containers',
        holds: (s) => has(s, 'image') || has(s, 'containers'),
      },
      {
        rule: '!(has(self.image) && has(self.containers))',
        message: 'template.spec takes image or containers, not both',
        holds: (s) => !(has(s, 'image') && has(s, 'containers')),
      },
      {
        rule: '!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))',
        message: 'every volumeMounts[].name must name one of volumes',
        holds: (s) => (s.volumeMounts ?? []).every((m) => s.volumes?.some((v) => v.name === m.name)),
      },
      {
        rule: '!has(self.containers) || self.containers.all(c, !has(c.volumeMounts) || c.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name)))',
        message: 'every containers[].volumeMounts[].name must name one of volumes',
        holds: (s) =>
          (s.containers ?? []).every((c) =>
            (c.volumeMounts ?? []).every((m) => s.volumes?.some((v) => v.name === m.name)),
          ),
      },
    ]),
  )
  .describe('The specification of each instance.');
export type InstanceTemplateSpec = z.infer<typeof InstanceTemplateSpec>;

/** The template of a Workload's instances. */
export const InstanceTemplate = z
  .object({
    metadata: TemplateMetadata.optional().describe('Labels and annotations of every instance.'),
    spec: InstanceTemplateSpec.describe('What each instance runs.'),
  })
  .describe('The template every instance of the Workload is made from.');
export type InstanceTemplate = z.infer<typeof InstanceTemplate>;

/** Whether an image names a VM image of the provider image library rather than an OCI image. */
export function isVmImage(image: string): boolean {
  return /^projects\/[^/]+\/global\/images\/[^/]+$/.test(image);
}

/** A template whose `image` is of no kind a runtime runs; the message names the field. */
export class UnknownImageError extends Error {
  override name = 'UnknownImageError';
}

/**
 * The runtime that runs a template's instances: `vm` for a VM image of the provider image library, `gvisor` for
 * an OCI image or a `containers` list. A `projects/` image that is not a VM image path is a mistyped VM image,
 * not an OCI image: it throws UnknownImageError naming `template.spec.image`.
 */
export function runtimeOf(template: Pick<InstanceTemplateSpec, 'image'>): Runtime {
  const image = template.image;
  if (!image) return 'gvisor';
  if (isVmImage(image)) return 'vm';
  if (image.startsWith('projects/'))
    throw new UnknownImageError(
      `template.spec.image: unknown image kind "${image}"; a VM image is projects/<project>/global/images/<name>`,
    );
  return 'gvisor';
}
