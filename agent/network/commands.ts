/**
 * Runs iproute2 and nft in the host's network namespace (the agent's own, or a named one standing for a host)
 * or in an instance's. Every command goes through {@link Commands.run}, which reports it to `onCommand` first:
 * the tests use that to prove that re-syncing an unchanged host runs nothing but reads.
 */
import { spawn } from 'node:child_process';

/** A command line, e.g. `['ip', '-json', 'link', 'show']`. */
export type Argv = readonly string[];

export class Commands {
  /**
   * @param netns named network namespace (`ip netns`) standing for the host; absent: this process's own.
   * @param onCommand called with every command line before it runs.
   */
  constructor(
    readonly netns: string | undefined,
    private readonly onCommand?: (argv: Argv) => void,
  ) {}

  /** `ip …` in the host's namespace. */
  ip = (args: Argv, input?: string) =>
    this.run(this.netns ? ['ip', '-n', this.netns, ...args] : ['ip', ...args], input);

  /** `bridge …` in the host's namespace. */
  bridge = (args: Argv, input?: string) =>
    this.run(this.netns ? ['bridge', '-n', this.netns, ...args] : ['bridge', ...args], input);

  /** `nft …` in the host's namespace. */
  nft = (args: Argv, input?: string) =>
    this.run(
      this.netns ? ['nsenter', `--net=/run/netns/${this.netns}`, 'nft', ...args] : ['nft', ...args],
      input,
    );

  /** `iptables …` in the host's namespace. */
  iptables = (args: Argv) =>
    this.run(
      this.netns ? ['nsenter', `--net=/run/netns/${this.netns}`, 'iptables', ...args] : ['iptables', ...args],
    );

  /** `ip …` inside another network namespace, given by path (`/proc/<pid>/ns/net`, `/run/netns/<name>`). */
  ipIn = (nsPath: string, args: Argv, input?: string) =>
    this.run(['nsenter', `--net=${nsPath}`, 'ip', ...args], input);

  /** Runs a command; resolves with its stdout, rejects with the command and its stderr when it fails. */
  run(argv: Argv, input?: string): Promise<string> {
    this.onCommand?.(argv);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => reject(new Error(`${argv.join(' ')}: ${e.message}`)));
      child.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out).toString());
        else {
          const detail = Buffer.concat(err).toString().trim() || `exit ${code}`;
          const shown = input ? `${argv.join(' ')} <<<\n${input.trimEnd()}\n` : argv.join(' ');
          reject(new CommandError(`${shown}: ${detail}`, detail));
        }
      });
      child.stdin.on('error', () => {}); // the command may exit before reading all of it; close reports why
      child.stdin.end(input ?? '');
    });
  }
}

/** A command that exited non-zero; `stderr` is what it said. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}
