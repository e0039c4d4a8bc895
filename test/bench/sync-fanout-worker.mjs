// One worker process of the fan-out bench: many simulated boxes, each an MQTT.js client of the
// hub's Mosquitto with its own user and password, subscribed to its channel's catalog; on a
// catalog entry each acknowledges it as a box does (yachay/<school>/sync/ack/<id>, QoS 1).
// argv: <json {url, boxes: [{school, password}], channel}>; IPC: 'ready' once all subscribed.
import mqtt from 'mqtt';

const job = JSON.parse(process.argv[2]);
const clients = [];
let acked = 0;

async function box({ school, password }) {
  const c = mqtt.connect(job.url, {
    username: `box-${school}`, password, clientId: `box-${school}`, clean: false, protocolVersion: 4,
    reconnectPeriod: 1000, connectTimeout: 30_000, keepalive: 60,
  });
  clients.push(c);
  c.on('message', (topic, payload) => {
    if (payload.length === 0) return; // a withdrawn entry
    const entry = JSON.parse(payload.toString());
    c.publish(`yachay/${school}/sync/ack/${entry.id}`, JSON.stringify({ version: entry.version, at: Date.now() }), { qos: 1 }, () => { acked++; });
  });
  await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
  await c.subscribeAsync(`yachay/catalog/${job.channel}/#`, { qos: 1 });
}

// a few at a time: a thousand TLS-less connects at once would only measure the accept queue
const queue = [...job.boxes];
await Promise.all(Array.from({ length: 20 }, async () => { for (let b = queue.shift(); b; b = queue.shift()) await box(b); }));
process.send({ ready: clients.length });
process.on('message', async (m) => {
  if (m === 'count') process.send({ acked });
  if (m === 'stop') {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    process.exit(0);
  }
});
