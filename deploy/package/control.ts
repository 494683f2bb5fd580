/**
 * Text of the Debian package's metadata files, as pure functions over plain data (build.ts writes them): the
 * control file, md5sums, and the /usr/bin wrappers that start a bundle with the packaged Node binary.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** What goes into DEBIAN/control beyond the constant fields. */
export interface ControlInput {
  /** Package version (package.json's unless overridden). */
  version: string;
  /** Installed size in KiB. */
  installedKiB: number;
  /** Shared-library dependencies of the Node binary (dpkg-shlibdeps output). */
  depends: string;
}

/**
 * Debian packages only: the runtimes the agent drives are Recommends, so a host may run only gVisor containers
 * (docker.io + runsc) or only VMs (qemu), and the host-install test can use the machine's dockerd.
 */
export const RECOMMENDS = ['docker.io', 'runsc', 'qemu-system-x86', 'qemu-utils'];

/** DEBIAN/control. */
export function controlFile(c: ControlInput): string {
  return [
    'Package: edgeplane-agent',
    `Version: ${c.version}`,
    'Architecture: amd64',
    'Maintainer: Edgeplane <edgeplane@example.com>',
    `Installed-Size: ${c.installedKiB}`,
    `Depends: ${c.depends}, init-system-helpers (>= 1.54~)`,
    `Recommends: ${RECOMMENDS.join(', ')}`,
    'Section: admin',
    'Priority: optional',
    'Homepage: https://github.com/edgeplane/edgeplane',
    'Description: Edgeplane agent: runs edge workloads on this host',
    ' edge-agent runs the instances an Edgeplane coordinator places on this host,',
    ' as gVisor containers (Docker with runsc) or QEMU virtual machines, and',
    ' reports them over NATS. edgectl is the command-line client.',
    ' .',
    ' The package carries its own Node.js runtime under /usr/lib/edgeplane.',
    '',
  ].join('\n');
}

/** DEBIAN/md5sums of every file under `root` outside DEBIAN/, sorted by path. */
export function md5sums(root: string): string {
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      const rel = path.relative(root, p);
      if (rel === 'DEBIAN') continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) lines.push(`${createHash('md5').update(readFileSync(p)).digest('hex')}  ${rel}`);
    }
  };
  walk(root);
  return `${lines.join('\n')}\n`;
}

/** A /usr/bin wrapper. */
export interface WrapperInput {
  /** What it starts, for the comment. */
  what: string;
  /** Node binary. */
  node: string;
  /** Bundle it runs. */
  script: string;
  /** Node flags before the script. */
  flags: readonly string[];
  /** Environment it sets. */
  env: Readonly<Record<string, string>>;
}

/** A POSIX sh wrapper that execs the bundle with its flags and environment. */
export function wrapperScript(w: WrapperInput): string {
  const exports = Object.entries(w.env).map(([k, v]) => `export ${k}=${v}\n`);
  return `#!/bin/sh\n# ${w.what}.\n${exports.join('')}exec ${[w.node, ...w.flags, w.script].join(' ')} "$@"\n`;
}

/** What a generated manual page says. */
export interface ManPageInput {
  /** Program name. */
  name: string;
  /** One-line description. */
  description: string;
  /** Package version. */
  version: string;
  /** The program's --help output, shown verbatim. */
  help: string;
}

/** A section-1 manual page (roff) around the program's --help text. */
export function manPage(m: ManPageInput): string {
  const escaped = m.help
    .replace(/\\/g, '\\e')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
  return [
    `.TH ${m.name.toUpperCase()} 1 "" "edgeplane ${m.version}" "Edgeplane"`,
    '.SH NAME',
    `${m.name} \\- ${m.description}`,
    '.SH SYNOPSIS',
    `.B ${m.name}`,
    '.RI [ options ] " command " ...',
    '.SH DESCRIPTION',
    '.nf',
    escaped,
    '.fi',
    '.SH FILES',
    '/etc/edgeplane/agent.yaml, /etc/default/edge-agent, /var/lib/edgeplane',
    '',
  ].join('\n');
}
