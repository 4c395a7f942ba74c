#!/usr/bin/env node
// The Node.js `ws` peer: the behaviours described in tests/peers/launcher.py.
//
//   node tests/peers/ws_server.js [--tls-cert PEM --tls-key PEM] [--require-client-cert CA_PEM]
//                                 [--host 127.0.0.1] [--port 0] [--parent-watch]
//
// Prints `LISTENING <port>` on stdout once ready; everything else goes to stderr.
// Constants below mirror launcher.py (MAX_MESSAGE_SIZE, SUBPROTOCOLS, credentials,
// send_payload); keep them in step.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (err) {
  process.stderr.write('ws peer: the `ws` package is missing: run `npm ci --prefix tests/peers`\n');
  process.exit(2);
}

const MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
const SUBPROTOCOLS = ['chat', 'superchat'];
const BASIC = 'Basic ' + Buffer.from('user:pass').toString('base64');
const BEARER = 'Bearer token123';

function log(...args) {
  process.stderr.write(`ws peer: ${args.join(' ')}\n`);
}

// Command line

function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 0, parentWatch: false };
  const valued = {
    '--host': 'host',
    '--port': 'port',
    '--tls-cert': 'tlsCert',
    '--tls-key': 'tlsKey',
    '--require-client-cert': 'clientCa',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--parent-watch') {
      options.parentWatch = true;
    } else if (arg in valued && i + 1 < argv.length) {
      options[valued[arg]] = argv[++i];
    } else {
      log(`unknown or incomplete argument: ${arg}`);
      process.exit(2);
    }
  }
  options.port = Number(options.port);
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
    log('--tls-cert and --tls-key go together');
    process.exit(2);
  }
  if (options.clientCa && !options.tlsCert) {
    log('--require-client-cert needs --tls-cert');
    process.exit(2);
  }
  return options;
}

// Helpers

function sendPayload(index, size, type) {
  if (type === 'text') {
    return (`${index}:` + 'x'.repeat(size)).slice(0, size);
  }
  const buffer = Buffer.alloc(Math.max(size, 8));
  buffer.writeBigUInt64BE(BigInt(index), 0);
  for (let j = 8; j < size; j++) buffer[j] = (index + j) & 0xff;
  return buffer.subarray(0, size);
}

function closeFrame(code, reason) {
  const payload = Buffer.concat([Buffer.alloc(2), Buffer.from(reason, 'utf8')]);
  payload.writeUInt16BE(code, 0);
  return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
}

function intParam(query, name, fallback) {
  const value = query.get(name);
  return value === null ? fallback : Number.parseInt(value, 10);
}

// Echo `n` messages (Infinity: until the close), then call `then`.
function echoN(ws, n, then) {
  let echoed = 0;
  if (n <= 0) {
    then();
    return;
  }
  const onMessage = (data, isBinary) => {
    ws.send(data, { binary: isBinary });
    echoed += 1;
    if (echoed === n) {
      ws.off('message', onMessage);
      then();
    }
  };
  ws.on('message', onMessage);
}

function echo(ws) {
  echoN(ws, Infinity, () => {});
}

// Behaviours: (ws, query, req) => void

const behaviours = {
  '/echo': echo,
  '/deflate': echo,

  '/close': (ws, query) => {
    ws.close(intParam(query, 'code', 1000), query.get('reason') ?? '');
  },

  '/close-after': (ws, query) => {
    echoN(ws, intParam(query, 'n', 1), () => {
      ws.close(intParam(query, 'code', 1000), query.get('reason') ?? '');
    });
  },

  '/ping': (ws, query) => {
    const payload = query.get('payload') ?? '';
    // Messages that arrive before the pong are echoed after `pong:<payload>`.
    let ponged = false;
    const early = [];
    ws.on('message', (data, isBinary) => {
      if (ponged) ws.send(data, { binary: isBinary });
      else early.push([data, isBinary]);
    });
    ws.on('pong', (data) => {
      if (ponged || data.toString() !== payload) return;
      ponged = true;
      ws.send(`pong:${payload}`);
      for (const [data, isBinary] of early) ws.send(data, { binary: isBinary });
    });
    ws.ping(payload);
  },

  '/fragment': (ws, query) => {
    const n = intParam(query, 'n', 3);
    ws.on('message', (data, isBinary) => {
      // Cut the bytes into n pieces, some empty if the message is shorter than n;
      // text may be cut inside a UTF-8 sequence, which fragments allow.
      const step = Math.ceil(data.length / n);
      for (let i = 0; i < n; i++) {
        const piece = data.subarray(i * step, (i + 1) * step);
        ws.send(piece, { binary: isBinary, fin: i === n - 1 });
      }
    });
  },

  '/count': (ws) => {
    let messages = 0;
    let total = 0;
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'count?') {
        ws.send(`count:${messages}`);
      } else if (!isBinary && data.toString() === 'bytes?') {
        ws.send(`bytes:${total}`);
      } else {
        messages += 1;
        total += data.length;
      }
    });
  },

  '/stall': (ws, query) => {
    const seconds = Number.parseFloat(query.get('seconds') ?? '30');
    // Stops reading the socket: the kernel buffer fills and TCP stops the client.
    ws._socket.pause();
    const timer = setTimeout(() => {
      ws._socket.resume();
      // Data frames that arrive now are dropped: there is no 'message' listener.
      ws.close(1000, 'stall over');
    }, seconds * 1000);
    ws.on('close', () => clearTimeout(timer));
  },

  '/send': (ws, query) => {
    const n = intParam(query, 'n', 100);
    const size = intParam(query, 'size', 64);
    const type = query.get('type') ?? 'binary';
    for (let i = 0; i < n; i++) ws.send(sendPayload(i, size, type), { binary: type !== 'text' });
    if (query.has('close')) ws.close(intParam(query, 'close', 1000), query.get('reason') ?? '');
    else echo(ws);
  },

  '/headers': (ws, query, req) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    }
    ws.send(JSON.stringify({ headers, path: req.url, subprotocol: ws.protocol || null }));
    echo(ws);
  },

  '/abort-after': (ws, query) => {
    echoN(ws, intParam(query, 'n', 1), () => ws._socket.destroy());
  },

  '/server-close-fast': (ws, query) => {
    const frame = closeFrame(intParam(query, 'code', 1000), query.get('reason') ?? '');
    // Below ws, whose close() waits for the client's close frame.
    ws._socket.end(frame, () => ws._socket.destroy());
  },
};
behaviours['/auth'] = behaviours['/headers'];
behaviours['/set-cookie'] = behaviours['/headers'];

// Handshake

function refuse(socket, status, body, headers = {}) {
  const text = Buffer.from(body, 'utf8');
  const lines = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${text.length}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), text]));
}

function handleProtocols(offered) {
  // The first one the client offers that we know; unknown ones are not an error.
  for (const protocol of offered) if (SUBPROTOCOLS.includes(protocol)) return protocol;
  return false;
}

const common = {
  noServer: true,
  maxPayload: MAX_MESSAGE_SIZE,
  handleProtocols,
  // Tests send their own pings; ws never sends keepalive pings by itself.
  clientTracking: true,
};
const plain = new WebSocket.Server({ ...common, perMessageDeflate: false });
// /set-cookie: one Set-Cookie per query parameter, on the 101.
function addCookies(server) {
  server.on('headers', (headers, req) => {
    const url = new URL(req.url, 'http://peer');
    if (url.pathname !== '/set-cookie') return;
    for (const [name, value] of url.searchParams) headers.push(`Set-Cookie: ${name}=${value}`);
  });
  return server;
}
addCookies(plain);

// One server per set of permessage-deflate parameters (see launcher.py).
const deflateServers = new Map();
function deflateServer(query) {
  const options = {};
  if (query.get('server_no_context_takeover') === '1') options.serverNoContextTakeover = true;
  if (query.get('client_no_context_takeover') === '1') options.clientNoContextTakeover = true;
  if (query.has('server_max_window_bits')) {
    options.serverMaxWindowBits = intParam(query, 'server_max_window_bits', 15);
  }
  if (query.has('client_max_window_bits')) {
    options.clientMaxWindowBits = intParam(query, 'client_max_window_bits', 15);
  }
  if (query.has('threshold')) options.threshold = intParam(query, 'threshold', 1024);
  const key = JSON.stringify(options);
  if (!deflateServers.has(key)) {
    const perMessageDeflate = Object.keys(options).length ? options : true;
    deflateServers.set(key, addCookies(new WebSocket.Server({ ...common, perMessageDeflate })));
  }
  return deflateServers.get(key);
}

function onUpgrade(req, socket, head) {
  socket.on('error', (err) => log(`socket error: ${err.message}`));
  const url = new URL(req.url, 'http://peer');
  const query = url.searchParams;
  if (url.pathname === '/reject') {
    const location = query.get('location');
    const cookie = query.get('cookie');
    const headers = {};
    if (location) headers.Location = location;
    if (cookie) headers['Set-Cookie'] = cookie;
    refuse(socket, intParam(query, 'status', 403), query.get('body') ?? '', headers);
    return;
  }
  if (url.pathname === '/auth' && ![BASIC, BEARER].includes(req.headers.authorization)) {
    refuse(socket, 401, 'authentication required\n', {
      'WWW-Authenticate': 'Basic realm="peers"',
    });
    return;
  }
  const behaviour = behaviours[url.pathname];
  if (behaviour === undefined) {
    refuse(socket, 404, `no behaviour at ${url.pathname}\n`);
    return;
  }
  const compressed = url.pathname === '/deflate' || query.get('deflate') === '1';
  const server = compressed ? deflateServer(query) : plain;
  server.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', (err) => log(`connection error: ${err.message}`));
    behaviour(ws, query, req);
  });
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  let server;
  if (options.tlsCert) {
    const tls = { cert: fs.readFileSync(options.tlsCert), key: fs.readFileSync(options.tlsKey) };
    if (options.clientCa) {
      Object.assign(tls, {
        ca: fs.readFileSync(options.clientCa),
        requestCert: true,
        rejectUnauthorized: true,
      });
    }
    server = https.createServer(tls);
  } else {
    server = http.createServer();
  }
  server.on('request', (req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
    res.end('WebSocket upgrade required\n');
  });
  server.on('upgrade', onUpgrade);
  server.on('tlsClientError', (err) => log(`TLS error: ${err.message}`));
  server.listen(options.port, options.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });

  if (options.parentWatch) {
    // The launcher holds our stdin open; EOF means it is gone.
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
  }
}

main();
