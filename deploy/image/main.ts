/**
 * `npm run image`: builds `edgeplane/coordinator:<version>` with the local Docker (see coordinator.ts).
 * `npm run image -- --tag registry.example.com/edgeplane/coordinator:0.1.0` names it for a registry instead.
 */
import { buildCoordinatorImage } from './coordinator.js';

const at = process.argv.indexOf('--tag');
const tag = at > 0 ? process.argv[at + 1] : undefined;
if (at > 0 && !tag) {
  console.error('--tag: expected an image name');
  process.exit(2);
}
const started = Date.now();
try {
  const img = await buildCoordinatorImage({
    ...(tag ? { tag } : {}),
    log: (l) => console.log(`[image] ${l}`),
  });
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  console.log(
    `[image] built ${img.tag} (${img.id.slice(0, 19)}): ${mb(img.sizeBytes)}, bundle ${mb(img.bundleBytes)}, ` +
      `in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
} catch (err) {
  console.error(`[image] ${(err as Error).message}`);
  process.exit(1);
}
