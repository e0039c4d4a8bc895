/** The fleet page at `/`: one table, Spanish first, refreshed from /api/fleet every 15 s. No build step, no framework. */
export const FLEET_PAGE = `<!doctype html>
<html lang="es"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Yachay hub — escuelas / schools</title>
<style>
 body{font:15px system-ui,sans-serif;margin:1.5rem;color:#222}
 table{border-collapse:collapse;width:100%} th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:left}
 th{font-weight:600;background:#f4f4f4} .on{color:#0a7d32} .off{color:#b3261e} .muted{color:#777} small{color:#666}
</style></head><body>
<h1>Escuelas <small>/ schools</small></h1>
<p id="sum" class="muted">Cargando… / Loading…</p>
<table><thead><tr>
 <th>Escuela <small>/ school</small></th><th>Estado <small>/ state</small></th><th>Visto <small>/ last seen</small></th>
 <th>Versión</th><th>Disco libre <small>/ disk free</small></th><th>Temp.</th>
 <th>Lecciones <small>/ synced</small></th><th>Pendientes <small>/ pending</small></th>
 <th>WAN anoche <small>/ last night</small></th><th>Errores <small>/ errors</small></th>
</tr></thead><tbody id="rows"></tbody></table>
<script>
const esc = (s) => String(s ?? '—').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const mb = (b) => b == null ? '—' : (b / 1e6).toFixed(b > 1e9 ? 0 : 1) + ' MB';
// a box's error summary: totals of the last day and its most frequent codes
const errs = (e) => e == null ? '—' : typeof e !== 'object' ? String(e)
  : (e.errors || 0) + ' err, ' + (e.warnings || 0) + ' avisos' + (e.syncFailed ? ', sync ' + e.syncFailed : '')
    + (e.top && e.top.length ? ': ' + e.top.slice(0, 3).map((x) => x.code + ' ×' + x.count).join(', ') : '');
const ago = (t) => { if (!t) return 'nunca / never'; const s = (Date.now() - Date.parse(t)) / 1000;
  return s < 90 ? Math.round(s) + ' s' : s < 5400 ? Math.round(s / 60) + ' min' : s < 172800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d'; };
async function load() {
  try {
    const boxes = await (await fetch('api/fleet')).json();
    const on = boxes.filter((b) => b.online).length;
    document.getElementById('sum').textContent = on + ' en línea de ' + boxes.length + ' / ' + on + ' online of ' + boxes.length;
    document.getElementById('rows').innerHTML = boxes.map((b) => '<tr><td>' + esc(b.name) + '<br><small>' + esc(b.school) + '</small></td>'
      + '<td class="' + (b.online ? 'on' : 'off') + '">' + (b.revoked ? 'dada de baja / revoked' : b.online ? 'en línea / online' : b.enrolled ? 'fuera de línea / offline' : 'sin inscribir / not enrolled') + '</td>'
      + '<td>' + esc(ago(b.lastSeen)) + '</td><td>' + esc(b.version) + '</td><td>' + mb(b.diskFreeBytes) + '</td>'
      + '<td>' + (b.tempC == null ? '—' : esc(b.tempC.toFixed(0)) + ' °C') + '</td><td>' + esc(b.lessonsSynced) + '</td><td>' + esc(b.pending) + '</td>'
      + '<td>' + mb(b.wanBytesLastNight) + '</td><td>' + esc(errs(b.errors)) + '</td></tr>').join('');
  } catch (e) { document.getElementById('sum').textContent = 'Sin respuesta del hub / hub not answering'; }
}
load(); setInterval(load, 15000);
</script></body></html>
`;
