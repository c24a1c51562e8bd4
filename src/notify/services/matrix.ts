import { randomUUID } from 'node:crypto';
import { HttpStatusError, jsonRequest } from '../http-request.js';
import type { HttpRequest, HttpResponse } from '../http-request.js';
import { titledBody } from '../message.js';
import { hostOrigin } from '../service.js';
import type { NotifyService, SendContext } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface MatrixConfig {
  readonly user: string;
  /** a password when user is set, otherwise an access token */
  readonly password: string;
  readonly host: string;
  readonly rooms: readonly string[];
  readonly disableTls: boolean;
  readonly title: string;
}

const api = '/_matrix/client/v3';
const legacyApi = '/_matrix/client/r0';

export function parseMatrix(parts: UrlParts): MatrixConfig {
  requirePart(parts, 'host', parts.hostname, 'the homeserver host after the @');
  const password = requirePart(
    parts,
    'password',
    parts.password,
    'a password (with a user) or an access token',
  );
  const query = new QueryReader(parts, ['rooms', 'room', 'disabletls', 'title']);
  const config = {
    user: parts.user,
    password,
    host: parts.host,
    rooms: query.list(['rooms', 'room']),
    disableTls: query.bool('disabletls', false),
    title: query.string('title'),
  };
  query.done();
  return config;
}

export function matrixLoginRequest(config: MatrixConfig, origin: string, version: string): HttpRequest {
  return jsonRequest('POST', `${origin}${version}/login`, {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: config.user },
    password: config.password,
  });
}

/** Room IDs start with "!"; anything else is an alias, which needs its "#". */
export function matrixRoomReference(room: string): string {
  return room.startsWith('!') || room.startsWith('#') ? room : `#${room}`;
}

export function matrixSendRequest(
  origin: string,
  token: string,
  roomId: string,
  body: string,
  txnId: string,
  version: string,
): HttpRequest {
  return jsonRequest(
    'PUT',
    `${origin}${version}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`,
    { msgtype: 'm.text', body },
    { Authorization: `Bearer ${token}` },
  );
}

function field(body: string, name: string): unknown {
  try {
    return (JSON.parse(body) as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

/**
 * The client API version: v3, which current homeservers require; a server that does not know it
 * (404 on the first call) is spoken to in r0, the version shoutrrr uses.
 */
async function firstCall(
  context: SendContext,
  build: (version: string) => HttpRequest,
): Promise<[string, HttpResponse]> {
  try {
    return [api, await context.http(build(api))];
  } catch (error) {
    if (!(error instanceof HttpStatusError) || error.status !== 404) throw error;
    return [legacyApi, await context.http(build(legacyApi))];
  }
}

async function roomIds(
  context: SendContext,
  config: MatrixConfig,
  origin: string,
  version: string,
  token: string,
): Promise<string[]> {
  const auth = { Authorization: `Bearer ${token}` };
  if (config.rooms.length === 0) {
    const joined = await context.http({
      method: 'GET',
      url: `${origin}${version}/joined_rooms`,
      headers: auth,
    });
    const rooms = field(joined.body, 'joined_rooms');
    const ids = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === 'string') : [];
    if (ids.length === 0) throw new Error('the matrix user has joined no rooms; give ?rooms=');
    return ids;
  }
  const ids: string[] = [];
  for (const room of config.rooms) {
    const joined = await context.http(
      jsonRequest(
        'POST',
        `${origin}${version}/join/${encodeURIComponent(matrixRoomReference(room))}`,
        {},
        auth,
      ),
    );
    const roomId = field(joined.body, 'room_id');
    if (typeof roomId !== 'string') throw new Error(`matrix did not return a room ID for ${room}`);
    ids.push(roomId);
  }
  return ids;
}

export const matrixService: NotifyService<MatrixConfig> = {
  scheme: 'matrix',
  shape: 'matrix://[USER:]PASSWORD_OR_TOKEN@HOST[:PORT]/[?rooms=!ROOM_ID,ALIAS][&disabletls=yes]',
  example:
    'matrix://backup-bot:correct-horse@matrix.example.org/?rooms=!xyzRoomId:example.org,backups:example.org',
  parse: parseMatrix,
  secrets: (config) => [config.password],
  async send(config, message, context) {
    const origin = hostOrigin(config.host, config.disableTls);
    let token = config.password;
    let version = api;
    if (config.user !== '') {
      const [found, login] = await firstCall(context, (v) => matrixLoginRequest(config, origin, v));
      const accessToken = field(login.body, 'access_token');
      if (typeof accessToken !== 'string') throw new Error('matrix login answered without an access token');
      // The session token is as secret as the password that bought it.
      context.secret(accessToken);
      token = accessToken;
      version = found;
    } else {
      const [found] = await firstCall(context, (v) => ({
        method: 'GET',
        url: `${origin}${v}/account/whoami`,
        headers: { Authorization: `Bearer ${token}` },
      }));
      version = found;
    }
    const body = titledBody({ title: message.title ?? config.title, body: message.body });
    for (const roomId of await roomIds(context, config, origin, version, token)) {
      await context.http(matrixSendRequest(origin, token, roomId, body, randomUUID(), version));
    }
  },
};
