// @ts-check
// The two browser bundles the box serves from node_modules, typed from their packages:
// hls.js (a classic <script> that defines window.Hls) and mqtt.js (an ES module, loaded only
// when the page has a broker to talk to).

/** @typedef {typeof import('hls.js/dist/hls.js').default} HlsClass */
/** @typedef {InstanceType<HlsClass>} HlsPlayer */
/** @typedef {import('mqtt').MqttClient} MqttClient */
/** @typedef {import('mqtt').IClientOptions} MqttOptions */

/** @type {HlsClass | undefined} */
export const Hls = /** @type {{ Hls?: HlsClass }} */ (/** @type {unknown} */ (window)).Hls;

/** @returns {Promise<(url: string, opts: MqttOptions) => MqttClient>} */
export async function loadMqtt() {
  // a variable, not a literal: the path exists on the box, not beside this file
  const url = '/vendor/mqtt.js';
  const mod = /** @type {{ default: { connect: (url: string, opts: MqttOptions) => MqttClient } }} */ (await import(url));
  return (u, o) => mod.default.connect(u, o);
}
