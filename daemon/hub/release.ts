import { mkdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { YachayError } from '../errors.js';
import { sha256File } from '../pkg/manifest.js';
import { BlobStore } from '../pkg/origin.js';
import { loadOrCreateHubKey } from '../pkg/sign.js';
import { writeFileAtomic } from '../util/atomic.js';
import { RELEASE_FORMAT, releaseTopic, signRelease } from '../update/manifest.js';
import type { ReleaseManifest } from '../update/manifest.js';
import { VERSION_RE, normalizeArch } from '../update/version.js';
import type { HubFile } from './hub.js';

/**
 * `yachay hub release BUNDLE.tar.gz`: the bundle becomes a content-addressed blob of the origin
 * (boxes fetch it like a lesson segment: Range resume, the night window, the cap), and a signed
 * `yachay-release/1` manifest is published retained on yachay/release/<arch>, which every
 * enrolled box of that arch may read (broker-auth.ts). The newest published release of an arch
 * replaces the previous message; boxes install only what is newer than what they run.
 */
const BUNDLE_NAME = /^yachay-(.+)-linux-([a-z0-9_]+)\.tar\.gz$/;

export interface PublishedRelease { manifest: ReleaseManifest; topic: string }

export async function publishRelease(dataDir: string, hub: HubFile, file: string, opts: { arch?: string | undefined }): Promise<PublishedRelease> {
  const name = basename(file);
  const m = BUNDLE_NAME.exec(name);
  if (!m) throw new YachayError('YCH_ERR_USAGE', `${name}: a release bundle is named yachay-<version>-linux-<arch>.tar.gz (npm run bundle)`);
  const version = m[1]!;
  if (!VERSION_RE.test(version)) throw new YachayError('YCH_ERR_USAGE', `${name}: version "${version}" is not valid`);
  const named = normalizeArch(m[2]!);
  const arch = normalizeArch(opts.arch ?? named);
  if (arch !== named) throw new YachayError('YCH_ERR_USAGE', `${name} is built for ${named}, not --arch ${opts.arch}`);
  let size: number;
  try { size = (await stat(resolve(file))).size; } catch (err) {
    throw new YachayError('YCH_ERR_INPUT_MISSING', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const sha256 = await sha256File(resolve(file));
  await new BlobStore(hub.origin ?? join(dataDir, 'origin')).putFile(resolve(file), sha256);
  const key = await loadOrCreateHubKey(dataDir);
  const manifest: ReleaseManifest = { format: RELEASE_FORMAT, version, arch, sha256, size, name, publishedAt: new Date().toISOString() };
  const offer = signRelease(manifest, key.privateKey);
  // the hub's own record of what it published, beside the catalog
  await mkdir(join(dataDir, 'releases'), { recursive: true });
  await writeFileAtomic(join(dataDir, 'releases', `${arch}-${version}.json`), JSON.stringify(offer) + '\n');
  const topic = releaseTopic(arch);
  const c = await mqtt.connectAsync(hub.broker.url, { username: hub.broker.username, password: hub.broker.password, clientId: `yachay-hub-release-${process.pid}`, reconnectPeriod: 0, connectTimeout: 10_000 })
    .catch((err: Error) => { throw new YachayError('YCH_ERR_HUB_BROKER', `cannot reach the hub broker ${hub.broker.url}: ${err.message}`, { cause: err }); });
  try {
    await c.publishAsync(topic, JSON.stringify(offer), { qos: 1, retain: true });
  } finally {
    await c.endAsync();
  }
  return { manifest, topic };
}
