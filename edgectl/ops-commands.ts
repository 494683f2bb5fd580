/**
 * The `logs` and `exec` commands of edgectl (and of `kubectl edge`): options, output and exit codes. The
 * protocol is in ./ops.ts.
 */
import { userInfo } from 'node:os';
import { basename } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Command } from 'commander';
import { MESSAGE_VERSION } from '../shared/nats/messages.js';
import { checkOperatorName } from '../shared/nats/permissions.js';
import type { Subjects } from '../shared/nats/subjects.js';
import { findInstance, OpsClientError, parseDuration, parseTail, runSession, splitInstance } from './ops.js';

/** How a command connects (edgectl's global options). */
export type Connect = () => Promise<{ nc: NatsConnection; subjects: Subjects; creds?: string }>;

/**
 * The operator name requests are made as: `--operator`, else EDGE_OPERATOR, else the credentials file's name
 * (`edgectl credentials operator alice` writes alice.nk / alice.creds), else — only without credentials, i.e. on a
 * NATS server without authorization such as the dev stack — the login name (then nothing vouches for it).
 */
export function operatorName(given: string | undefined, creds: string | undefined): string {
  const login = () =>
    userInfo()
      .username.toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-');
  const name =
    given ?? process.env.EDGE_OPERATOR ?? (creds ? basename(creds).replace(/\.(nk|creds)$/, '') : login());
  try {
    checkOperatorName(name);
  } catch (e) {
    throw new OpsClientError(`--operator: ${(e as Error).message}`);
  }
  return name;
}

/** Adds `logs` and `exec` to `program`. */
export function addOpsCommands(program: Command, connect: Connect): void {
  program
    .command('logs <instance>')
    .description(
      "an instance's output: a container's stdout/stderr, or a VM's serial console (served by its agent)",
    )
    .option('-n, --namespace <namespace>', 'namespace of the instance', 'default')
    .option('-c, --container <container>', 'container (default: the first)')
    .option('-f, --follow', 'keep following new output (Ctrl-C to stop)', false)
    .option('--tail <lines>', 'only the last N lines (-1: all)', '-1')
    .option('--since <duration>', 'only output newer than this, e.g. 30s, 10m, 1h (containers)')
    .option(
      '--operator <name>',
      'operator identity to ask as [EDGE_OPERATOR; default: the --creds file name]',
    )
    .action(
      async (
        ref: string,
        o: {
          namespace: string;
          container?: string;
          follow: boolean;
          tail: string;
          since?: string;
          operator?: string;
        },
      ) => {
        const { namespace, name } = splitInstance(ref, o.namespace);
        const tail = parseTail(o.tail);
        const since = o.since === undefined ? undefined : parseDuration(o.since);
        const { nc, subjects, creds } = await connect();
        try {
          const client = { nc, subjects, caller: operatorName(o.operator, creds) };
          const instance = await findInstance(client, namespace, name);
          const stop = new AbortController();
          process.once('SIGINT', () => {
            stop.abort();
            void nc.close().finally(() => process.exit(0));
          });
          await runSession(
            client,
            instance.host,
            'logs',
            {
              v: MESSAGE_VERSION,
              namespace,
              instance: name,
              follow: o.follow,
              ...(o.container ? { container: o.container } : {}),
              ...(tail !== undefined ? { tail } : {}),
              ...(since !== undefined ? { sinceSeconds: since } : {}),
            },
            (stream, bytes) => (stream === 'stderr' ? process.stderr : process.stdout).write(bytes),
            stop.signal,
          );
        } finally {
          if (!nc.isClosed()) await nc.close();
        }
      },
    );

  program
    .command('exec <instance> [command...]')
    .description('run a command in a container of the instance; edgectl exits with its exit code')
    .option('-n, --namespace <namespace>', 'namespace of the instance', 'default')
    .option('-c, --container <container>', 'container (default: the first)')
    .option('-i, --stdin', 'interactive input (not supported)')
    .option('-t, --tty', 'a terminal (not supported)')
    .option(
      '--operator <name>',
      'operator identity to ask as [EDGE_OPERATOR; default: the --creds file name]',
    )
    .action(
      async (
        ref: string,
        command: string[],
        o: { namespace: string; container?: string; stdin?: boolean; tty?: boolean; operator?: string },
      ) => {
        if (o.stdin || o.tty)
          throw new OpsClientError(
            'exec -i/-t (an interactive terminal) is not supported: run one command at a time, e.g. edgectl exec <instance> -- sh -c "…"',
          );
        if (!command.length)
          throw new OpsClientError('exec: a command is needed after --, e.g. edgectl exec web-0 -- ls /');
        const { namespace, name } = splitInstance(ref, o.namespace);
        const { nc, subjects, creds } = await connect();
        let exitCode: number | undefined;
        try {
          const client = { nc, subjects, caller: operatorName(o.operator, creds) };
          const instance = await findInstance(client, namespace, name);
          const end = await runSession(
            client,
            instance.host,
            'exec',
            {
              v: MESSAGE_VERSION,
              namespace,
              instance: name,
              command,
              ...(o.container ? { container: o.container } : {}),
            },
            (stream, bytes) => (stream === 'stderr' ? process.stderr : process.stdout).write(bytes),
          );
          if (end.exitCode === undefined) throw new OpsClientError(`exec: ${end.reason}`);
          exitCode = end.exitCode;
        } finally {
          await nc.close();
        }
        // Like kubectl exec: the command's exit code is edgectl's.
        await new Promise<void>((r) => process.stdout.write('', () => r()));
        process.exit(exitCode);
      },
    );
}
