import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lessons } from './lessons.js';

/**
 * At start, every lesson listed as ready is looked at on disk: its folder, its master playlist,
 * each rendition's playlist and init segment. A card pulled out mid-write or a full disk can
 * leave a lesson that is listed but cannot play; such a lesson is marked failed with what is
 * wrong, so the teacher sees it (and can re-encode it) instead of students meeting a broken
 * player. Only names and sizes are read: a few stats per lesson, milliseconds for a school.
 */
async function problem(dir: string, renditions: Array<{ playlist: string }>): Promise<string | undefined> {
  const text = async (rel: string): Promise<string | undefined> => readFile(join(dir, rel), 'utf8').catch(() => undefined);
  const master = await text('master.m3u8');
  if (master === undefined) return 'master.m3u8 is missing';
  if (!master.startsWith('#EXTM3U')) return 'master.m3u8 is not a playlist';
  for (const r of renditions) {
    const pl = await text(r.playlist);
    if (pl === undefined) return `${r.playlist} is missing`;
    if (!pl.startsWith('#EXTM3U')) return `${r.playlist} is not a playlist`;
    const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(pl)?.[1];
    if (init) {
      const rel = join(r.playlist, '..', init);
      const size = await stat(join(dir, rel)).then((s) => s.size, () => -1);
      if (size <= 0) return `${rel} is ${size < 0 ? 'missing' : 'empty'}`;
    }
  }
  return undefined;
}

export async function checkPublished(lessons: Lessons, store: string): Promise<Array<{ id: string; problem: string }>> {
  const broken: Array<{ id: string; problem: string }> = [];
  for (const l of lessons.list({ status: 'ready' })) {
    if (!l.path) continue;
    const p = await problem(join(store, l.path), l.renditions ?? []);
    if (!p) continue;
    broken.push({ id: l.id, problem: p });
    lessons.setStatus(l.id, 'failed', `paquete dañado / damaged package: ${p}; vuelva a codificar o sincronizar / re-encode or sync it again`);
  }
  return broken;
}
