/**
 * Which request is which: the paths an aggregated API server answers, as kube-apiserver forwards them (the same
 * path the client used). Pure; the server (server.ts) does the answering.
 */
import { INSTANCES_GROUP, type ServedVersion, servedVersion } from './versions.js';

/** A request, once routed. */
export type Route =
  | { kind: 'health' }
  | { kind: 'apis' }
  | { kind: 'group' }
  | { kind: 'resources'; version: ServedVersion }
  | { kind: 'openapi-v2' }
  | { kind: 'openapi-v3-index' }
  | { kind: 'openapi-v3'; version: ServedVersion }
  | { kind: 'collection'; version: ServedVersion; namespace?: string }
  | { kind: 'object'; version: ServedVersion; namespace: string; name: string }
  | { kind: 'read-only'; resource: string }
  | { kind: 'not-found' };

/** Routes a method and path (without the query). Writes to the resource are `read-only`. */
export function route(method: string, pathname: string): Route {
  const parts = pathname.split('/').filter((p) => p !== '');
  if (['/healthz', '/readyz', '/livez'].includes(pathname)) return { kind: 'health' };
  if (pathname === '/openapi/v2') return { kind: 'openapi-v2' };
  if (pathname === '/openapi/v3') return { kind: 'openapi-v3-index' };
  if (parts[0] === 'openapi' && parts[1] === 'v3' && parts[2] === 'apis' && parts[3] === INSTANCES_GROUP) {
    const v = parts.length === 5 ? servedVersion(parts[4]!) : undefined;
    return v ? { kind: 'openapi-v3', version: v } : { kind: 'not-found' };
  }
  if (parts[0] !== 'apis') return { kind: 'not-found' };
  if (parts.length === 1) return { kind: 'apis' };
  if (parts[1] !== INSTANCES_GROUP) return { kind: 'not-found' };
  if (parts.length === 2) return { kind: 'group' };
  const v = servedVersion(parts[2]!);
  if (!v) return { kind: 'not-found' };
  const rest = parts.slice(3);
  const reading = method === 'GET' || method === 'HEAD';
  if (rest.length === 0) return { kind: 'resources', version: v };
  let target: Route | undefined;
  if (rest.length === 1 && rest[0] === v.kind.plural) target = { kind: 'collection', version: v };
  else if (rest.length === 3 && rest[0] === 'namespaces' && rest[2] === v.kind.plural)
    target = { kind: 'collection', version: v, namespace: rest[1]! };
  else if (rest.length === 4 && rest[0] === 'namespaces' && rest[2] === v.kind.plural)
    target = { kind: 'object', version: v, namespace: rest[1]!, name: rest[3]! };
  if (!target) return { kind: 'not-found' };
  return reading ? target : { kind: 'read-only', resource: v.kind.plural };
}
