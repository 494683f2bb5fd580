/**
 * A gVisor container's output through dockerd: `docker logs` (GET /containers/<id>/logs, always streamed so a
 * large log never sits in memory) and a command run with `docker exec` (attached, stdout and stderr apart), both as
 * an {@link OutputSource}. Pausing the source pauses the HTTP response, so dockerd waits: nothing is dropped.
 */
import type { Duplex, Readable } from 'node:stream';
import type Docker from 'dockerode';
import {
  DockerFrameParser,
  type LogOptions,
  type OutputCallback,
  type OutputEnd,
  type OutputSource,
} from './output.js';

/** An OutputSource over a readable stream of Docker frames; `finish` says how it ended. */
function framedSource(
  stream: Readable | Duplex,
  onData: OutputCallback,
  finish: (closed: boolean) => Promise<OutputEnd>,
): OutputSource {
  const parser = new DockerFrameParser();
  let closed = false;
  stream.on('data', (bytes: Buffer) => {
    for (const f of parser.push(bytes)) onData(f.stream, f.data);
  });
  const ended = new Promise<OutputEnd>((resolve) => {
    let done = false;
    const end = (err?: Error) => {
      if (done) return;
      done = true;
      if (err && !closed) return resolve({ reason: `error: ${err.message}` });
      void finish(closed).then(resolve, (e) => resolve({ reason: `error: ${(e as Error).message}` }));
    };
    stream.once('end', () => end());
    stream.once('close', () => end());
    stream.once('error', (err) => end(err));
  });
  return {
    ended,
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    close: () => {
      if (closed) return;
      closed = true;
      stream.destroy();
    },
  };
}

/** `docker logs` of one container as a source. */
export async function dockerLogs(
  docker: Docker,
  containerId: string,
  options: LogOptions,
  onData: OutputCallback,
): Promise<OutputSource> {
  const query: Record<string, unknown> = {
    stdout: true,
    stderr: true,
    follow: options.follow,
    tail: options.tail === undefined ? 'all' : String(options.tail),
  };
  if (options.sinceSeconds) query.since = Math.floor(Date.now() / 1000) - options.sinceSeconds;
  const stream = await new Promise<Readable>((resolve, reject) =>
    docker.modem.dial(
      {
        path: `/containers/${containerId}/logs?`,
        method: 'GET',
        isStream: true,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
        options: query,
      },
      (err, data) => (err ? reject(err) : resolve(data as Readable)),
    ),
  );
  return framedSource(stream, onData, async (closed) => ({ reason: closed ? 'closed' : 'end of log' }));
}

/** Runs `command` in the container with `docker exec` (no TTY, no stdin) as a source that ends with its exit code. */
export async function dockerExec(
  docker: Docker,
  containerId: string,
  command: string[],
  onData: OutputCallback,
): Promise<OutputSource> {
  const exec = await docker
    .getContainer(containerId)
    .exec({ Cmd: command, AttachStdout: true, AttachStderr: true, Tty: false });
  const stream = await exec.start({ hijack: true, stdin: false });
  return framedSource(stream, onData, async (closed) => {
    // The attach ends as the process exits; dockerd may mark it exited a moment later.
    let info = await exec.inspect();
    for (let i = 0; i < 20 && info.Running && !closed; i++) {
      await new Promise((r) => setTimeout(r, 50));
      info = await exec.inspect();
    }
    if (info.Running) return { reason: closed ? 'closed (the command may still run)' : 'detached' };
    return { exitCode: info.ExitCode ?? -1, reason: 'exited' };
  });
}
