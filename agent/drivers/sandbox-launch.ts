/**
 * The sandbox launch, by which the gVisor driver's runtime check knows that runsc works rather than trusting
 * dockerd's runtime list: it runs a 129-byte static x86-64 program (`exit(0)`) as a container under runsc, from a
 * one-file image the agent imports itself, so it needs no registry and no pre-loaded image. (The image tag and the
 * container labels still say "probe", the name this had before; they stay, as hosts already have them.)
 */
import { Readable } from 'node:stream';
import type Docker from 'dockerode';

/** Tag of the one-file image the sandbox runs. */
export const SANDBOX_IMAGE = 'edgeplane/sandbox-probe:v1';

/**
 * A minimal static ELF64 x86-64 executable whose only segment is `code`, loaded at 0x400000 and entered right
 * after the headers.
 */
export function tinyElf(code: Buffer): Buffer {
  const size = 64 + 56 + code.length;
  const b = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x400078n, 24); // entry: right after the headers
  b.writeBigUInt64LE(64n, 32); // program headers follow the ELF header
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(0n, 72);
  b.writeBigUInt64LE(0x400000n, 80);
  b.writeBigUInt64LE(0x400000n, 88);
  b.writeBigUInt64LE(BigInt(size), 96);
  b.writeBigUInt64LE(BigInt(size), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  code.copy(b, 120);
  return b;
}

/** `mov eax, 60; xor edi, edi; syscall`: exit(0). */
export function exitZeroElf(): Buffer {
  return tinyElf(Buffer.from([0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05]));
}

/** A tar archive holding one executable file. */
export function singleFileTar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'utf8');
  header.write('0000755\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('        ', 148); // checksum placeholder
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

/**
 * Makes sure dockerd has `tag`, an image of one executable file `/<file>` run as its command, importing it from
 * memory when missing (no registry, no pre-loaded image).
 */
export async function ensureOneFileImage(
  docker: Docker,
  tag: string,
  file: string,
  content: Buffer,
): Promise<void> {
  try {
    await docker.getImage(tag).inspect();
    return;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  const [repo, version] = tag.split(':');
  const stream = await docker.importImage(
    Readable.from([singleFileTar(file, content)]) as unknown as string,
    {
      repo,
      tag: version,
      changes: [`CMD ["/${file}"]`],
    } as object,
  );
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

/**
 * Runs the `exit(0)` program in a sandbox of `runtime`; resolves with how long it took, or throws why it failed.
 * The container is labelled with the launching host (not with `edgeplane.dev/host`, which marks instances).
 */
export async function launchSandbox(
  docker: Docker,
  runtime: string,
  host: string,
  timeoutMs = 30_000,
): Promise<number> {
  const t0 = Date.now();
  await ensureOneFileImage(docker, SANDBOX_IMAGE, 'probe', exitZeroElf());
  const c = await docker.createContainer({
    Image: SANDBOX_IMAGE,
    Cmd: ['/probe'],
    Labels: { 'edgeplane.dev/probe': 'sandbox', 'edgeplane.dev/probe-host': host },
    HostConfig: { Runtime: runtime, NetworkMode: 'none', AutoRemove: false },
  });
  try {
    await c.start();
    let timer: NodeJS.Timeout | undefined;
    const result = (await Promise.race([
      c.wait(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the sandbox did not exit within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer))) as { StatusCode: number };
    if (result.StatusCode !== 0) throw new Error(`the exit(0) program exited ${result.StatusCode}`);
    return Date.now() - t0;
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}
