import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

// A stand-in for libvirtd's socket, written from virnetprotocol.x and remote_protocol.x by hand
// (big-endian words, strings padded to 4 bytes), independently of the client's encoder.

export interface Call {
  readonly proc: number;
  readonly serial: number;
  readonly payload: Buffer;
}

export function word(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

export function xdrString(text: string): Buffer {
  const bytes = Buffer.from(text);
  return Buffer.concat([word(bytes.length), bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4)]);
}

export function message(
  prog: number,
  proc: number,
  type: number,
  serial: number,
  status: number,
  payload: Buffer,
): Buffer {
  const body = Buffer.concat([
    word(prog),
    word(1),
    word(proc),
    word(type),
    word(serial),
    word(status),
    payload,
  ]);
  return Buffer.concat([word(body.length + 4), body]);
}

export const remote = 0x20008086;
export const keepalive = 0x6b656570;
export const uuid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
export const domainStruct = Buffer.concat([xdrString('vm one'), uuid, word(7)]);

/** remote_error: code, domain, message (optional), level, then four absent optionals and two ints. */
export function errorPayload(code: number, text: string): Buffer {
  return Buffer.concat([
    word(code),
    word(10),
    word(1),
    xdrString(text),
    word(2),
    word(0),
    word(0),
    word(0),
    word(0),
    word(0),
    word(0),
    word(0),
  ]);
}

export type Answer = (call: Call) => Buffer | undefined;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Serves `answer` on a fresh socket; `calls` records every call, `pongs` the keepalive answers. */
export async function fakeDaemon(answer: Answer, options: { ping?: boolean; bytewise?: boolean } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-rpc-'));
  const socket = path.join(dir, 'libvirt-sock');
  const calls: Call[] = [];
  let pongs = 0;
  const server = net.createServer((client) => {
    if (options.ping === true) client.write(message(keepalive, 1, 2, 0, 0, Buffer.alloc(0)));
    let received = Buffer.alloc(0);
    client.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 4 && received.length >= received.readUInt32BE(0)) {
        const length = received.readUInt32BE(0);
        const prog = received.readUInt32BE(4);
        const proc = received.readInt32BE(12);
        const serial = received.readUInt32BE(20);
        const payload = received.subarray(28, length);
        received = received.subarray(length);
        if (prog === keepalive) {
          if (proc === 2) pongs++;
          continue;
        }
        const call = { proc, serial, payload };
        calls.push(call);
        const reply = answer(call);
        if (reply === undefined) continue;
        if (options.bytewise === true) for (const byte of reply) client.write(Buffer.from([byte]));
        else client.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  cleanups.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { socket, calls, pongs: () => pongs };
}

/** A daemon that lets the client in (AUTH_LIST: none) and answers `more` for the other calls. */
export function admitting(more: Answer = () => undefined, auth = 0): Answer {
  return (call) => {
    if (call.proc === 66) return message(remote, 66, 1, call.serial, 0, Buffer.concat([word(1), word(auth)]));
    if (call.proc === 1) return message(remote, 1, 1, call.serial, 0, Buffer.alloc(0));
    if (call.proc === 23) return message(remote, 23, 1, call.serial, 0, domainStruct);
    return more(call);
  };
}
