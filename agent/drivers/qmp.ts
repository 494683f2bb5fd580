/** A one-shot QMP client: connect to a VM's QMP socket, negotiate, run one command, return its result. */
import net from 'node:net';

/** Runs one QMP command; resolves with its `return` value. A socket closed after the command counts as done. */
export function qmp(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    let stage: 'greeting' | 'caps' | 'cmd' = 'greeting';
    const finish = (err: Error | null, value?: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`QMP ${command}: timed out`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(e));
    sock.on('close', () =>
      stage === 'cmd' ? finish(null) : finish(new Error(`QMP ${command}: socket closed`)),
    );
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let msg: { QMP?: unknown; return?: unknown; error?: { class: string; desc: string }; event?: string };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.event) continue;
        if (stage === 'greeting' && msg.QMP) {
          stage = 'caps';
          sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if (stage === 'caps' && 'return' in msg) {
          stage = 'cmd';
          sock.write(
            `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
          );
        } else if (msg.error) {
          finish(new Error(`QMP ${command}: ${msg.error.class}: ${msg.error.desc}`));
        } else if (stage === 'cmd') {
          finish(null, msg.return);
        }
      }
    });
  });
}
