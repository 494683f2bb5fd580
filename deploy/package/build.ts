/**
 * `npm run package`: builds `dist/packages/edgeplane-agent_<version>_amd64.deb`, the agent and edgectl for a Debian
 * 12 host that reaches only Debian's repositories. It carries its own runtime: the Node binary that runs this
 * script (`process.execPath`, Node 20) under /usr/lib/edgeplane, and one esbuild bundle per program (no
 * node_modules on the host). `/usr/bin/edge-agent` starts the bundle with the agent's memory settings
 * (agent/runtime-flags.ts). Options: `--version <v>` (default: package.json's), `--out <dir>`, `--fast` (xz -0
 * instead of xz -6: seconds instead of minutes, a quarter larger; the host-install test uses it).
 *
 * The package tree (unit, maintainer scripts, conffile) is in deploy/package/debian/ and agent.yaml; see the README
 * there for the choices (bundle vs single-executable application, hardening, purge).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { DOCKER_STUBS } from '../../agent/drivers/docker-stubs.js';
import { AGENT_NODE_ENV, AGENT_NODE_FLAGS } from '../../agent/runtime-flags.js';
import {
  AGENT_CONFIG_FILE,
  AGENT_LIVENESS_UNITS,
  AGENT_UNIT,
  PACKAGE_LIB_DIR,
} from '../../shared/host-paths.js';
import { controlFile, manPage, md5sums, wrapperScript } from './control.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const HERE = path.join(REPO, 'deploy/package');
const PACKAGE = 'edgeplane-agent';

/**
 * `@nats-io/services` pins a prerelease of `@nats-io/nats-core`, installed a second time under it; the bundle
 * gives it the copy the connection uses (what agent/lean.ts does at run time for the unbundled agent).
 */
const oneNatsCore: Plugin = {
  name: 'one-nats-core',
  setup(b) {
    b.onResolve({ filter: /^@nats-io\/nats-core(\/.*)?$/ }, async (args) => {
      if (!args.importer.includes(`${path.sep}@nats-io${path.sep}services${path.sep}`)) return undefined;
      if (args.pluginData === 'one-nats-core') return undefined;
      return b.resolve(args.path, { resolveDir: REPO, kind: args.kind, pluginData: 'one-nats-core' });
    });
  },
};

/**
 * dockerode's unused modules become the agent's stand-ins (agent/drivers/docker-stubs.ts), which
 * agent/drivers/docker.ts puts in require's cache at run time; in the bundle that module is a plain
 * `require('dockerode')` esbuild can follow.
 */
const dockerStubs: Plugin = {
  name: 'docker-stubs',
  setup(b) {
    b.onLoad({ filter: /[\\/]agent[\\/]drivers[\\/]docker\.ts$/ }, () => ({
      contents: "export const Docker = require('dockerode');",
      loader: 'ts',
    }));
    const names = DOCKER_STUBS.map((s) => s.name.replace(/[/.]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => {
      const stub = DOCKER_STUBS.find((s) => s.name === args.path);
      if (!stub || !args.importer.includes(`${path.sep}node_modules${path.sep}${stub.from}${path.sep}`))
        return undefined;
      return { path: stub.name, namespace: 'docker-stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'docker-stub' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(path.join(REPO, 'agent/drivers/docker-stubs.ts'))}).stubExports(${JSON.stringify(args.path)});`,
      loader: 'js',
      resolveDir: REPO,
    }));
  },
};

/**
 * Lazy loads written `createRequire(import.meta.url)('x')` (agent/yaml.ts) become `require('x')`, which esbuild
 * bundles; it stays lazy (evaluated on first call).
 */
const lazyRequires: Plugin = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('createRequire(import.meta.url)(')) return undefined;
      return {
        contents: source.replace(/createRequire\(import\.meta\.url\)\((\s*'[^']+'\s*)\)/g, 'require($1)'),
        loader: 'ts',
      };
    });
  },
};

/** Bundles one program (ESM, Node 20) into `outfile`: a plain module (0644, no #! line), started by its wrapper. */
async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [path.join(REPO, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.EDGEPLANE_BUNDLED': '"1"' },
    // CommonJS dependencies call require(); ESM output needs one.
    banner: {
      js: "import{createRequire as __edgeRequire}from'node:module';const require=__edgeRequire(import.meta.url);",
    },
    plugins: [oneNatsCore, dockerStubs, lazyRequires],
  });
  const text = readFileSync(outfile, 'utf8');
  // Every installed package is inside: what is still required at run time can only be Node's own modules, or
  // optional ones that are not installed (esbuild leaves a require in try/catch, e.g. debug's supports-color).
  const installed = (name: string) => {
    try {
      createRequire(path.join(REPO, 'package.json')).resolve(name);
      return true;
    } catch {
      return false;
    }
  };
  const external = [...text.matchAll(/__require\("([^"]+)"\)/g)]
    .map((m) => m[1] as string)
    .filter((name) => !name.startsWith('node:') && !builtinModules.includes(name) && installed(name));
  if (external.length)
    throw new Error(`${entry}: the bundle requires ${[...new Set(external)].join(', ')} at run time`);
  writeFileSync(outfile, text.replace(/^#!.*\n/, ''), { mode: 0o644 });
  chmodSync(outfile, 0o644);
}

/** Shared libraries of `binary` as Debian dependencies (dpkg-shlibdeps, which needs a debian/control). */
function shlibDepends(binary: string, work: string): string {
  mkdirSync(path.join(work, 'debian'), { recursive: true });
  writeFileSync(
    path.join(work, 'debian/control'),
    `Source: ${PACKAGE}\n\nPackage: ${PACKAGE}\nArchitecture: amd64\n`,
  );
  // (Its warnings about libraries Node links but does not use are upstream's build.)
  const out = execFileSync('dpkg-shlibdeps', ['-O', binary], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.replace(/^shlibs:Depends=/, '').trim();
}

/** Builds the package, staged in `work`. */
async function buildPackage(work: string): Promise<void> {
  const { values } = parseArgs({
    options: { version: { type: 'string' }, out: { type: 'string' }, fast: { type: 'boolean' } },
  });
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  const version = values.version ?? pkg.version;
  const outDir = path.resolve(values.out ?? path.join(REPO, 'dist/packages'));
  const root = path.join(work, 'root');
  const lib = path.join(root, PACKAGE_LIB_DIR);
  const doc = path.join(root, 'usr/share/doc', PACKAGE);
  for (const d of [lib, path.join(root, 'usr/bin'), path.join(root, 'lib/systemd/system'), doc]) {
    mkdirSync(d, { recursive: true });
  }
  mkdirSync(path.join(root, 'DEBIAN'));
  mkdirSync(path.join(root, 'usr/share/lintian/overrides'), { recursive: true });

  const started = Date.now();
  await Promise.all([
    bundle('agent/main.ts', path.join(lib, 'edge-agent.mjs')),
    bundle('edgectl/main.ts', path.join(lib, 'edgectl.mjs')),
  ]);
  // The runtime: this Node binary, without its symbol tables.
  const node = path.join(lib, 'node');
  copyFileSync(process.execPath, node);
  execFileSync('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', node]);
  chmodSync(node, 0o755);

  const bin = (name: string, text: string) => {
    writeFileSync(path.join(root, 'usr/bin', name), text, { mode: 0o755 });
    chmodSync(path.join(root, 'usr/bin', name), 0o755);
  };
  bin(
    'edge-agent',
    wrapperScript({
      what: 'the Edgeplane agent, with the memory settings of agent/runtime-flags.ts',
      node: `${PACKAGE_LIB_DIR}/node`,
      script: `${PACKAGE_LIB_DIR}/edge-agent.mjs`,
      flags: AGENT_NODE_FLAGS,
      env: AGENT_NODE_ENV,
    }),
  );
  bin(
    'edgectl',
    wrapperScript({
      what: 'the Edgeplane command-line client',
      node: `${PACKAGE_LIB_DIR}/node`,
      script: `${PACKAGE_LIB_DIR}/edgectl.mjs`,
      flags: [],
      env: {},
    }),
  );

  // Manual pages from the programs' own --help.
  const man = path.join(root, 'usr/share/man/man1');
  mkdirSync(man, { recursive: true });
  for (const [name, description] of [
    ['edge-agent', 'the Edgeplane agent'],
    ['edgectl', 'the Edgeplane command-line client'],
  ] as const) {
    const help = execFileSync(node, [path.join(lib, `${name}.mjs`), '--help'], { encoding: 'utf8' });
    writeFileSync(
      path.join(man, `${name}.1.gz`),
      gzipSync(manPage({ name, description, version, help }), { level: 9 }),
    );
  }

  const copy = (from: string, to: string, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(root, to)), { recursive: true });
    copyFileSync(path.join(HERE, from), path.join(root, to));
    chmodSync(path.join(root, to), mode);
  };
  for (const unit of [AGENT_UNIT, ...AGENT_LIVENESS_UNITS])
    copy(`debian/${unit}`, `lib/systemd/system/${unit}`);
  copy('agent.yaml', AGENT_CONFIG_FILE);
  copy('debian/copyright', `usr/share/doc/${PACKAGE}/copyright`);
  copy('debian/lintian-overrides', `usr/share/lintian/overrides/${PACKAGE}`);
  copy('README.md', `usr/share/doc/${PACKAGE}/README.md`);
  writeFileSync(
    path.join(doc, 'changelog.gz'),
    gzipSync(
      `${PACKAGE} (${version}) unstable; urgency=medium\n\n  * Built from the Edgeplane repository.\n\n -- Edgeplane <edgeplane@example.com>  ${new Date(0).toUTCString().replace('GMT', '+0000')}\n`,
      { level: 9 },
    ),
  );
  for (const s of ['postinst', 'prerm', 'postrm']) copy(`debian/${s}`, `DEBIAN/${s}`, 0o755);
  writeFileSync(path.join(root, 'DEBIAN/conffiles'), `${AGENT_CONFIG_FILE}\n`);
  writeFileSync(path.join(root, 'DEBIAN/md5sums'), md5sums(root));
  const installedKiB = Number(
    execFileSync('du', ['-sk', '--exclude=DEBIAN', root], { encoding: 'utf8' }).split('\t')[0],
  );
  writeFileSync(
    path.join(root, 'DEBIAN/control'),
    controlFile({ version, installedKiB, depends: shlibDepends(node, work) }),
  );

  mkdirSync(outDir, { recursive: true });
  const deb = path.join(outDir, `${PACKAGE}_${version}_amd64.deb`);
  const compression = values.fast ? ['-Zxz', '-z0'] : ['-Zxz', '-z6'];
  execFileSync('fakeroot', ['dpkg-deb', ...compression, '--build', root, deb], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const mib = (statSync(deb).size / 2 ** 20).toFixed(1);
  console.log(
    `${deb}: ${mib} MiB (installed ${(installedKiB / 1024).toFixed(0)} MiB), built in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

// Staged outside the repository, so that running the bundles (for the manual pages) proves they need no
// node_modules.
const work = mkdtempSync(path.join(tmpdir(), 'edgeplane-package-'));
try {
  await buildPackage(work);
} finally {
  rmSync(work, { recursive: true, force: true });
}
