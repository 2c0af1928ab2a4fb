// Node's http module echo server, answering like asynchttp's examples/echo:
// "<METHOD> <target>\n" followed by the request body, as text/plain with Content-Length.
// Usage: node node_echo.js [port]   (default 8080; 0 picks a free one). Listens on 127.0.0.1.
'use strict';
const http = require('http');

const port = Number(process.argv[2] ?? 8080);
const server = http.createServer((req, res) => {
  const chunks = [Buffer.from(`${req.method} ${req.url}\n`)];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 0;
server.listen(port, '127.0.0.1', () => {
  console.log(`node_echo listening on port ${server.address().port}`);
});
