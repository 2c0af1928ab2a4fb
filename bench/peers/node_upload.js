// Node's http module upload sink, answering like asynchttp's `examples/upload PORT -`: reads
// each request body to its end, counting its bytes (nothing stored), and answers the count and
// a newline, 200 text/plain with Content-Length.
// Usage: node node_upload.js [port]   (default 8080; 0 picks a free one). Listens on 127.0.0.1.
'use strict';
const http = require('http');

const port = Number(process.argv[2] ?? 8080);
const server = http.createServer((req, res) => {
  let size = 0;
  req.on('data', (chunk) => { size += chunk.length; });
  req.on('end', () => {
    const body = `${size}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 0;
// Node 18+ aborts a request that takes longer than requestTimeout (300 s) in all; a large upload
// on a slow machine must not be cut short by it.
server.requestTimeout = 0;
server.listen(port, '127.0.0.1', () => {
  console.log(`node_upload listening on port ${server.address().port}`);
});
