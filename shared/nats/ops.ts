/**
 * Messages of operator actions served by an agent (`edgectl logs`, `edgectl exec`) and the audit record an agent
 * sends the coordinator for each exec.
 *
 * Protocol (request/reply only, so every reply is exactly one message to the requester's inbox):
 * 1. the client asks `<prefix>.ops.<host>.logs.<caller>` ({@link LogsRequest}) or `….exec.<caller>`
 *    ({@link ExecRequest}); the agent opens a session and answers an {@link OutputChunk} with `seq` 0;
 * 2. the client pulls with `….next.<caller>` ({@link NextRequest}, `after` = the last `seq` it got); the agent
 *    answers the next chunk once it is full or {@link OPS_LIMITS.lingerMs} after output arrived, or an empty chunk
 *    after {@link OPS_LIMITS.pollWaitMs}
 *    (a heartbeat: the client knows the agent is alive while a followed log is quiet);
 * 3. the chunk with `end` is the last one (the logs ended, the command exited: `end.exitCode`).
 *
 * Flow bound: the client paces the transfer (one chunk per pull, at most {@link OPS_LIMITS.chunkBytes}); the
 * agent buffers at most {@link OPS_LIMITS.bufferBytes} per session and pauses the source (docker's stream, the
 * console file) beyond that. A session nobody pulls for {@link OPS_LIMITS.idleMs} is closed (the client went
 * away). A pull that repeats `after` (its reply was lost) gets the same chunk again, so nothing is lost or doubled.
 */
import { z } from 'zod';

/** Bounds of the protocol. */
export const OPS_LIMITS = {
  /** Most output bytes in one chunk (base64 in JSON stays well under NATS's default 1 MiB payload). */
  chunkBytes: 256 * 1024,
  /** Most output bytes an agent holds per session before it pauses the source. */
  bufferBytes: 1024 * 1024,
  /** How long a pull waits for output before it is answered with an empty chunk. */
  pollWaitMs: 2000,
  /** How long a pull that has some output waits for more, up to a full chunk (fewer round trips for bulk output). */
  lingerMs: 20,
  /** A session not pulled for this long is closed. */
  idleMs: 15_000,
  /** Most open sessions per agent. */
  sessions: 16,
} as const;

/** Where a piece of output came from. */
export const OutputStreamName = z.enum(['stdout', 'stderr', 'console']);
export type OutputStreamName = z.infer<typeof OutputStreamName>;

const name = z.string().min(1).max(253);

/** `edgectl logs`: a container's output, or a VM's serial console. */
export const LogsRequest = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Namespace of the instance. */
    namespace: name,
    /** Instance name. */
    instance: name,
    /** Container name; default: the instance's only (or first) container. VMs have none. */
    container: name.optional(),
    /** Only the last N lines. */
    tail: z.number().int().min(0).optional(),
    /** Only output of the last N seconds (containers; a VM console has no timestamps). */
    sinceSeconds: z.number().int().min(1).optional(),
    /** Keep following new output until the client stops pulling. */
    follow: z.boolean().default(false),
  })
  .loose();
export type LogsRequest = z.infer<typeof LogsRequest>;

/** `edgectl exec`: runs a command in a container of the instance. */
export const ExecRequest = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Namespace of the instance. */
    namespace: name,
    /** Instance name. */
    instance: name,
    /** Container name; default: the instance's only (or first) container. */
    container: name.optional(),
    /** The command and its arguments (no shell unless you name one). */
    command: z.array(z.string()).min(1),
  })
  .loose();
export type ExecRequest = z.infer<typeof ExecRequest>;

/** Pulls the next chunk of a session. */
export const NextRequest = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Session id from the first chunk. */
    session: z.string().min(1),
    /** `seq` of the last chunk received; the answer is the chunk after it (or that one again if lost). */
    after: z.number().int().min(0),
  })
  .loose();
export type NextRequest = z.infer<typeof NextRequest>;

/** One reply of a session. */
export const OutputChunk = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Session id: pull the next chunk with it. */
    session: z.string(),
    /** 0 for the first reply, then +1 per chunk. */
    seq: z.number().int(),
    /** Output in order; bytes base64-encoded (output need not be UTF-8). */
    data: z.array(z.object({ stream: OutputStreamName, b64: z.string() }).loose()),
    /** Present on the last chunk. */
    end: z
      .object({
        /** Exit code of an exec'd command. */
        exitCode: z.number().int().optional(),
        /** Why the output ended, e.g. `exited`, `end of log`. */
        reason: z.string(),
      })
      .loose()
      .optional(),
  })
  .loose();
export type OutputChunk = z.infer<typeof OutputChunk>;

/** What an agent sends the coordinator, on `<prefix>.hosts.<host>.audit`, before it runs an exec. */
export const AuditRecord = z
  .object({
    /** Schema version. */
    v: z.number().int(),
    /** Host the agent runs on (must equal the subject's host). */
    host: z.string(),
    /** The instance acted on. */
    namespace: z.string(),
    instance: z.string(),
    /** Container. */
    container: z.string(),
    /** The operator identity that asked (the last token of the request subject, which permissions bind). */
    caller: z.string(),
    /** What was done. */
    action: z.literal('exec'),
    /** The command. */
    command: z.array(z.string()),
    /** When (RFC 3339). */
    time: z.string(),
  })
  .loose();
export type AuditRecord = z.infer<typeof AuditRecord>;

/** Error codes agents answer with (services API `Nats-Service-Error-Code`). */
export const OPS_ERRORS = {
  badRequest: 400,
  forbidden: 403,
  notFound: 404,
  gone: 410,
  tooMany: 429,
  notImplemented: 501,
  unavailable: 503,
} as const;
