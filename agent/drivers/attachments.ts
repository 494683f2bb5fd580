/**
 * What both drivers share about Network attachments: how an instance is named to the host's network, and the
 * refusal when the host has none.
 */

/** Why an instance with Network attachments is refused on a host without a host network. */
export const NO_HOST_NETWORK =
  'interfaces: this host carries no Network attachments (its agent runs without --overlay-address)';

/** The instance as the host's network names it (`HostPort.instance`): `<namespace>/<name>`. */
export const instanceKey = (r: { namespace: string; name: string }): string => `${r.namespace}/${r.name}`;
