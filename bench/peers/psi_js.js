// The peer of bench/psi.c: @openmined/psi.js (ECDH-PSI in WebAssembly) on
// n rows per side, half of the client's ids shared with the server's, as
// bench/psi.c draws them. Server and client run in this one process in
// turn: server setup (raw set: exact, like argot's), client request, server
// response, client intersection. Prints one line:
//   n intersection seconds bytes
// where bytes counts the serialized setup, request and response.
// Usage: NODE_PATH=BUILD/peers/node_modules node bench/peers/psi_js.js N
'use strict';
const PSI = require('@openmined/psi.js');

(async () => {
  const n = parseInt(process.argv[2] || '4096', 10);
  const hex = (i, p) => p + (BigInt(i) * 0x9e3779b97f4a7c15n & 0xfffffffffffffn)
    .toString(16).padStart(13, '0');
  const server = [], client = [];
  for (let i = 0; i < n; i++) {
    server.push(hex(i, 'u'));
    client.push(i % 2 === 0 ? hex(i, 'u') : hex(i, 'v'));
  }
  const psi = await PSI();
  const t0 = process.hrtime.bigint();
  const s = psi.server.createWithNewKey(true);
  const c = psi.client.createWithNewKey(true);
  const setup = s.createSetupMessage(1e-9, n, server, psi.dataStructure.Raw);
  const request = c.createRequest(client);
  const response = s.processRequest(request);
  const inter = c.getIntersection(setup, response);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = setup.serializeBinary().length + request.serializeBinary().length +
    response.serializeBinary().length;
  console.log(`${n} ${inter.length} ${secs} ${bytes}`);
  s.delete(); c.delete();
})().catch((e) => { console.error(e); process.exit(1); });
