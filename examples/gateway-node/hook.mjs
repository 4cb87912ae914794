// hook.mjs: a push endpoint (Node 18+, no dependencies). Run: node hook.mjs
import http from "node:http";

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const event = JSON.parse(body); // the bus's envelope; ce-* headers carry its attributes
    console.log(req.headers["ce-type"], event.tenantId, JSON.stringify(event.data));
    res.writeHead(200).end(); // 2xx: done; 503 + Retry-After: again later; 500: dead-lettered, retried
  });
});
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () =>
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`));
