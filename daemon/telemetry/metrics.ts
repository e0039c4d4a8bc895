import { statfs } from 'node:fs/promises';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Db } from '../db/db.js';
import type { GovernorService } from './governor.js';

/**
 * The box's own state on /metrics, read when Prometheus scrapes (no timers): what the alert
 * rules in provisioning/monitoring/ watch — heat, disk, dead jobs, lessons under their floors.
 */
export function registerBoxMetrics(registry: Registry, d: { db: Db; dataDir: string; governor?: GovernorService | undefined }): void {
  new Gauge({
    name: 'yachay_temperature_celsius', help: 'hottest thermal zone the governor reads (absent when the box has none)', registers: [registry],
    collect() { const c = d.governor?.state.tempC; if (c !== undefined) this.set(c); },
  });
  new Gauge({
    name: 'yachay_encodes_paused', help: '1 while the governor holds encodes for heat or power', registers: [registry],
    collect() { this.set(d.governor?.state.paused ? 1 : 0); },
  });
  new Gauge({
    name: 'yachay_under_voltage', help: '1 while the Pi firmware reports under-voltage', registers: [registry],
    collect() { this.set(d.governor?.state.underVoltage ? 1 : 0); },
  });
  const disk = async (): Promise<{ free: number; size: number } | undefined> => {
    const s = await statfs(d.dataDir).catch(() => undefined);
    return s && { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
  };
  new Gauge({
    name: 'yachay_disk_free_bytes', help: 'free bytes on the data folder\'s disk', registers: [registry],
    async collect() { const s = await disk(); if (s) this.set(s.free); },
  });
  new Gauge({
    name: 'yachay_disk_size_bytes', help: 'size of the data folder\'s disk', registers: [registry],
    async collect() { const s = await disk(); if (s) this.set(s.size); },
  });
  new Gauge({
    name: 'yachay_jobs', help: 'jobs in the queue by state (dead = gave up, with its reason in the log)', labelNames: ['state'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const state of ['queued', 'leased', 'dead']) this.set({ state }, 0);
      for (const r of d.db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: string; n: number }>) this.set({ state: r.state }, r.n);
    },
  });
  new Gauge({
    name: 'yachay_lessons', help: 'lessons by status', labelNames: ['status'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const r of d.db.prepare('SELECT status, count(*) AS n FROM lessons GROUP BY status').all() as Array<{ status: string; n: number }>) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'yachay_lessons_under_floor', help: 'published lessons with parts under their quality floor (the teacher is told)', registers: [registry],
    collect() {
      const r = d.db.prepare(`SELECT count(*) AS n FROM lessons WHERE status = 'ready' AND misses_json IS NOT NULL AND misses_json NOT IN ('[]', 'null')`).get() as { n: number };
      this.set(r.n);
    },
  });
}
