/**
 * The front proxy's identity, as kube-apiserver publishes it for aggregated servers: the ConfigMap
 * kube-system/extension-apiserver-authentication (what metrics-server and every apiserver-library server read)
 * holds the request-header client CA and the common names allowed. Waits until it can be read.
 */
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';

/** The request-header CA (PEM) and the allowed common names (empty: any the CA signed). */
export interface RequestHeaderAuth {
  clientCaPem: string;
  allowedNames: string[];
}

/** Reads the ConfigMap's request-header keys into a {@link RequestHeaderAuth}; pure. */
export function parseRequestHeaderAuth(data: Record<string, string> | undefined): RequestHeaderAuth {
  const ca = data?.['requestheader-client-ca-file'];
  if (!ca)
    throw new Error(
      'kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: start kube-apiserver with --requestheader-client-ca-file (the aggregation layer)',
    );
  let allowedNames: string[] = [];
  const names = data?.['requestheader-allowed-names'];
  if (names) {
    try {
      allowedNames = JSON.parse(names) as string[];
    } catch {
      throw new Error(`requestheader-allowed-names: expected a JSON list, got ${names}`);
    }
  }
  return { clientCaPem: ca, allowedNames };
}

/**
 * Reads kube-system/extension-apiserver-authentication, retrying while it is missing or unreadable, as long as
 * `wanted()` holds (undefined once it does not).
 */
export async function requestHeaderAuth(
  client: KubeClient,
  log: Logger,
  wanted: () => boolean,
): Promise<RequestHeaderAuth | undefined> {
  for (let delay = 500; wanted(); delay = Math.min(delay * 2, 10_000)) {
    try {
      const cm = await client.core.readNamespacedConfigMap({
        namespace: 'kube-system',
        name: 'extension-apiserver-authentication',
      });
      return parseRequestHeaderAuth(cm.data);
    } catch (err) {
      log.warn({ err: apiErrorMessage(err) }, 'request-header CA not readable yet; retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return undefined;
}
