// Node's http module Hello World: one process, one thread of JavaScript.
// Every request gets 200 "Hello World" (Content-Length set; Node adds Date and Connection).
// Usage: node node_hello.js [port]   (default 8080; 0 picks a free one). Listens on 127.0.0.1.
'use strict';
const http = require('http');

const port = Number(process.argv[2] ?? 8080);
const body = 'Hello World';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
// Node closes idle keep-alive connections after 5 s by default; the other servers in the
// benchmark keep them (asynchttp, Nim) or are configured to keep them for minutes (nginx, h2o).
server.keepAliveTimeout = 0;
server.listen(port, '127.0.0.1', () => {
  console.log(`node_hello listening on port ${server.address().port}`);
});
