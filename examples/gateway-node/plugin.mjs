// A plugin in JavaScript, without a Kafka library: it receives the bus's
// core.user.created events from the gateway's push subscription, and for
// each publishes plugin.crm.contact.created back through the gateway.
// It fails the first delivery of every event (HTTP 500), so the bus
// dead-letters it and retries it for this subscription only: the second
// delivery succeeds.
//
//   GATEWAY_URL=http://127.0.0.1:8080 TOKEN=... node plugin.mjs
//
// and in serve's --subscriptions file:
//   {"subscriptions":[{"name":"crm-contacts","events":["core.user.created"],"endpoint":"http://127.0.0.1:3000/events"}]}
import http from "node:http";

const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const token = process.env.TOKEN ?? "";
const port = Number(process.env.PORT ?? 3000);
const contactTopic = process.env.CONTACT_TOPIC ?? "plugin.crm.contact.created";
const seen = new Set(); // event IDs delivered once already

async function publish(event) {
  const res = await fetch(`${gateway}/api/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(event),
  });
  if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", async () => {
    const event = JSON.parse(body); // the bus's envelope; the ce-* headers carry the same
    if (!seen.has(event.id)) {
      seen.add(event.id);
      console.log(`failing ${req.headers["ce-type"]} ${event.id} once`);
      res.writeHead(500).end("first delivery fails on purpose");
      return;
    }
    try {
      const id = await publish({
        type: contactTopic,
        tenantId: event.tenantId,
        data: { userId: event.data.userId, email: event.data.email },
        metadata: { source: "crm", correlationId: event.metadata.correlationId, causationId: event.id },
      });
      console.log(`retry of ${event.id} handled: published ${id}`);
      res.writeHead(204).end();
    } catch (err) {
      console.error(err);
      res.writeHead(503, { "retry-after": "1" }).end(); // try again in place
    }
  });
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`);
});
