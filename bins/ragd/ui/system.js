// The system panel (`#/system`): the host, CPU, memory, disks, GPUs, temperatures, the ragd
// process and its components, with charts of CPU, memory and GPU use over the last ten
// minutes.
//
// The server samples every few seconds (`telemetry.sample_interval_secs`, 5 s by default);
// the panel asks for the latest snapshot every 2 s while it is open and adds a point to the
// history only when `sampled_at` is new. The history lives in this module, so it survives a
// visit to another panel; polling stops when the reader leaves, and the charts show the time
// away as a gap. Charts are drawn on <canvas> in the page's CSS colours, for the screen's
// pixel ratio, and redrawn when they change size or the colour scheme changes.

import { get, errorText, isAbort } from './api.js';
import { h, append, replace, bytes, time, duration, every, facts } from './dom.js';

const URL_STATUS = '/api/v1/system/status';
const POLL_MS = 2000;
const HISTORY_MS = 10 * 60 * 1000;
/** Points further apart than this are not joined (the panel was closed, or the server slow). */
const GAP_MS = 20 * 1000;

/** `{t (ms), cpu (%), memUsed, memTotal (bytes), gpus: {index: utilization %}}`, oldest first. */
const history = [];
let lastSampledAt = null;
let latest = null;

export function render(main) {
  const view = systemView();
  const requests = new AbortController();
  append(main, view.root);
  if (latest) view.update(latest);
  const stop = every(POLL_MS, async () => {
    try {
      const status = await get(URL_STATUS, { signal: requests.signal });
      record(status);
      view.update(status);
    } catch (err) {
      if (!isAbort(err)) view.fail(err);
    }
  });
  return () => { stop(); requests.abort(); view.destroy(); };
}

// ---------------------------------------------------------------------------------------
// History

function record(status) {
  latest = status;
  if (status.sampled_at === lastSampledAt) return;
  lastSampledAt = status.sampled_at;
  // Sampled times carry nanoseconds; Date.parse wants at most milliseconds.
  const t = Date.parse(String(status.sampled_at).replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(t)) return;
  history.push({
    t,
    cpu: status.cpu?.usage_percent ?? null,
    memUsed: status.memory?.used_bytes ?? null,
    memTotal: status.memory?.total_bytes ?? null,
    gpus: Object.fromEntries((status.gpus ?? []).map((gpu) => [gpu.index, gpu.utilization_percent ?? null])),
  });
  while (history.length && history[0].t < t - HISTORY_MS) history.shift();
}

// ---------------------------------------------------------------------------------------
// The view

const CARDS = [
  ['cpu', 'CPU'], ['memory', 'Memory'], ['process', 'ragd process'], ['components', 'ragd components'],
  ['gpus', 'GPUs'], ['host', 'Host'], ['disks', 'Disks', 'wide'], ['temperatures', 'Temperatures'],
  ['network', 'Network'],
];

function systemView() {
  const sampled = h('p', { id: 'system-sampled', class: 'muted', text: 'Reading the system status…' });
  const error = h('p', { id: 'system-error', class: 'field-error', role: 'status' });
  const charts = chartSet();
  const bodies = {};
  const cards = CARDS.map(([key, title, wide]) => {
    bodies[key] = h('div', { class: 'system-body' });
    return h('section', { class: `card system-card${wide ? ' wide' : ''}`, id: `system-${key}`, 'aria-labelledby': `system-${key}-title` },
      h('h2', { id: `system-${key}-title`, text: title }), bodies[key]);
  });
  const root = h('div', { class: 'system' },
    h('h1', { text: 'System' }), sampled, error, charts.root, h('div', { class: 'system-cards' }, cards));
  return {
    root,
    update(status) {
      error.textContent = '';
      sampled.textContent = sampledLine(status);
      charts.update(status);
      fillCards(bodies, status);
    },
    fail(err) { error.textContent = `Cannot read the system status: ${errorText(err)}`; },
    destroy: charts.destroy,
  };
}

function sampledLine(status) {
  const measured = status.cpu_window_ms ? `; CPU use measured over ${(status.cpu_window_ms / 1000).toFixed(1)} s` : '';
  return `Sampled ${time(status.sampled_at)}${measured}. Refreshed every ${POLL_MS / 1000} s while this page is open.`;
}

function fillCards(bodies, s) {
  replace(bodies.cpu, cpuCard(s.cpu ?? {}));
  replace(bodies.memory, memoryCard(s.memory ?? {}));
  replace(bodies.process, processCard(s.process ?? {}));
  replace(bodies.components, componentsCard(s.components ?? {}));
  replace(bodies.gpus, gpusCard(s));
  bodies.gpus.parentElement.classList.toggle('wide', (s.gpus ?? []).length > 0);
  replace(bodies.host, hostCard(s.host ?? {}));
  replace(bodies.disks, disksCard(s.disks ?? [], s.data_disk));
  replace(bodies.temperatures, temperaturesCard(s.temperatures ?? []));
  replace(bodies.network, networkCard(s.networks ?? []));
}

// ---------------------------------------------------------------------------------------
// Cards

function cpuCard(cpu) {
  const load = cpu.load_average;
  const cores = cpu.per_core_usage_percent ?? [];
  return [
    facts([
      ['Processor', cpu.brand || cpu.vendor_id],
      ['Cores', `${cpu.logical_cores ?? '?'} logical, ${cpu.physical_cores ?? '?'} physical`],
      ['Usage', percent(cpu.usage_percent)],
      ['Max frequency', cpu.max_frequency_mhz ? `${cpu.max_frequency_mhz} MHz` : 'not reported'],
      ['Load average', load ? `${fixed(load.one, 2)} · ${fixed(load.five, 2)} · ${fixed(load.fifteen, 2)} (1, 5, 15 min)` : '–'],
    ]),
    cores.length ? h('h3', { text: 'Per core' }) : null,
    cores.length ? h('ul', { class: 'core-bars' }, cores.map((usage, i) => coreBar(i, usage, cpu.per_core_frequency_mhz?.[i]))) : null,
  ];
}

function coreBar(index, usage, mhz) {
  const label = `Core ${index}: ${percent(usage)}${mhz ? ` at ${mhz} MHz` : ''}`;
  return h('li', { class: 'core', title: label },
    h('span', { class: 'core-name', text: index }), bar(usage, label), h('span', { class: 'core-value', text: percent(usage, 0) }));
}

function memoryCard(memory) {
  const used = memory.used_bytes;
  const total = memory.total_bytes;
  const swapTotal = memory.swap_total_bytes;
  return [
    h('p', { class: 'big', text: `${bytes(used)} of ${bytes(total)}` }),
    bar(ratio(used, total), `Memory used: ${percent(ratio(used, total))}`),
    facts([
      ['Used', `${bytes(used)} (${percent(ratio(used, total))})`],
      ['Available', bytes(memory.available_bytes)],
      ['Swap', swapTotal ? `${bytes(memory.swap_used_bytes)} of ${bytes(swapTotal)}` : 'none'],
    ]),
  ];
}

function processCard(p) {
  return facts([
    ['PID', p.pid],
    ['Resident memory', bytes(p.resident_memory_bytes)],
    ['Virtual memory', bytes(p.virtual_memory_bytes)],
    ['CPU', percent(p.cpu_usage_percent)],
    ['Threads', p.threads],
    ['Open files', p.open_files == null ? null : `${p.open_files}${p.open_files_limit ? ` of ${p.open_files_limit}` : ''}`],
    ['Running for', p.run_time_secs == null ? null : duration(p.run_time_secs)],
  ]);
}

function componentsCard(c) {
  const state = c.model_state ? h('span', { class: `badge ${c.model_state}`, text: c.model_state }) : null;
  return facts([
    ['Document queue', c.document_queue_depth == null ? null : `${c.document_queue_depth} queued or in processing`],
    ['Embedder', c.embedder ?? 'not part of this server'],
    ['Chat model', c.loaded_model ?? 'none'],
    ['Model state', state],
    ['Model size', c.model_size_bytes == null ? null : bytes(c.model_size_bytes)],
  ]);
}

function gpusCard(s) {
  const gpus = s.gpus ?? [];
  if (!gpus.length) {
    return h('p', { class: 'muted gpu-unavailable', text: s.gpus_unavailable_reason ?? 'No GPU found.' });
  }
  const driver = s.gpu_driver;
  return [
    driver ? h('p', { class: 'muted', text: `Driver ${driver.driver_version ?? '?'}, CUDA ${driver.cuda_version ?? '?'}` }) : null,
    h('div', { class: 'gpu-list' }, gpus.map(gpuBlock)),
  ];
}

function gpuBlock(gpu) {
  const memory = ratio(gpu.memory_used_bytes, gpu.memory_total_bytes);
  const clocks = [gpu.graphics_clock_mhz, gpu.sm_clock_mhz, gpu.memory_clock_mhz];
  return h('div', { class: 'gpu', dataset: { gpuIndex: gpu.index } },
    h('h3', { text: `GPU ${gpu.index}: ${gpu.name ?? 'unnamed'}` }),
    bar(gpu.utilization_percent, `GPU ${gpu.index} utilization: ${percent(gpu.utilization_percent)}`),
    facts([
      ['Utilization', percent(gpu.utilization_percent)],
      ['Memory', `${bytes(gpu.memory_used_bytes)} of ${bytes(gpu.memory_total_bytes)} (${percent(memory)})`],
      ['Memory activity', percent(gpu.memory_utilization_percent)],
      ['Temperature', celsius(gpu.temperature_celsius)],
      ['Power', gpu.power_draw_watts == null ? null : `${fixed(gpu.power_draw_watts, 0)} W${gpu.power_limit_watts ? ` of ${fixed(gpu.power_limit_watts, 0)} W` : ''}`],
      ['Fan', percent(gpu.fan_speed_percent, 0)],
      ['Clocks', clocks.some((c) => c != null) ? `${clocks.map((c) => c ?? '?').join(' / ')} MHz (graphics / SM / memory)` : null],
      ['Throttled by', gpu.throttle_reasons?.length ? gpu.throttle_reasons.join(', ') : 'nothing'],
      ['Processes', String(gpu.processes?.length ?? 0)],
    ]));
}

function hostCard(host) {
  return facts([
    ['Host name', host.hostname],
    ['System', [host.os_name, host.os_version].filter(Boolean).join(' ') || null],
    ['Kernel', host.kernel_version],
    ['Architecture', host.arch],
    ['Up for', host.uptime_secs == null ? null : duration(host.uptime_secs)],
  ]);
}

function disksCard(disks, dataDisk) {
  if (!disks.length) return h('p', { class: 'muted', text: 'No disks reported.' });
  const isData = (d) => dataDisk && d.name === dataDisk.name && d.mount_point === dataDisk.mount_point;
  return [
    dataDisk ? h('p', { class: 'muted hint', text: `ragd's data folder is on ${dataDisk.mount_point}, marked "data".` }) : null,
    table(['Disk', 'Mounted on', ['File system', 'optional'], ['Kind', 'optional'], 'Used', ['Free', 'num']], disks.map((d) => {
      const used = d.total_bytes - d.available_bytes;
      const row = h('tr', { class: isData(d) ? 'data-disk' : null },
        h('td', {}, h('span', { class: 'mono', text: d.name }), isData(d) ? [' ', h('span', { class: 'badge ok', text: 'data' })] : null),
        h('td', { class: 'mono', text: d.mount_point }),
        h('td', { class: 'optional', text: d.file_system }),
        h('td', { class: 'optional', text: [d.kind, d.removable ? 'removable' : null, d.read_only ? 'read-only' : null].filter(Boolean).join(', ') }),
        h('td', { class: 'used-cell' }, bar(ratio(used, d.total_bytes), `${d.mount_point} used: ${percent(ratio(used, d.total_bytes))}`),
          h('span', { class: 'small', text: `${bytes(used)} of ${bytes(d.total_bytes)}` })),
        h('td', { class: 'num', text: bytes(d.available_bytes) }));
      return row;
    })),
  ];
}

function temperaturesCard(sensors) {
  if (!sensors.length) return h('p', { class: 'muted', text: 'No sensors reported (usual in virtual machines).' });
  return table(['Sensor', ['Now', 'num'], ['Highest', 'num'], ['Critical', 'num']], sensors.map((sensor) => h('tr', {},
    h('td', { text: sensor.label }),
    h('td', { class: 'num', text: celsius(sensor.temperature_celsius) }),
    h('td', { class: 'num', text: celsius(sensor.max_celsius) }),
    h('td', { class: 'num', text: celsius(sensor.critical_celsius) }))));
}

function networkCard(networks) {
  if (!networks.length) return h('p', { class: 'muted', text: 'No network interfaces reported.' });
  return table(['Interface', ['Received', 'num'], ['Sent', 'num']], networks.map((net) => h('tr', {},
    h('td', { class: 'mono', text: net.interface }),
    h('td', { class: 'num', text: bytes(net.received_bytes_total) }),
    h('td', { class: 'num', text: bytes(net.transmitted_bytes_total) }))));
}

// ---------------------------------------------------------------------------------------
// Small builders and formats

/** A table; a heading is its text or `[text, class]` (`num`: right-aligned, `optional`: hidden on narrow screens). */
function table(headings, rows) {
  const th = (heading) => {
    const [text, cls] = [heading].flat();
    return h('th', { scope: 'col', class: cls, text });
  };
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, headings.map(th))),
    h('tbody', {}, rows)));
}

/** A horizontal bar filled to `value` %, described by `label`. */
function bar(value, label) {
  const fill = h('span', { class: 'bar-fill' });
  const clamped = Math.max(0, Math.min(100, Number(value) || 0));
  fill.style.width = `${clamped}%`;
  if (clamped >= 90) fill.classList.add('high');
  return h('span', { class: 'bar', role: 'img', 'aria-label': label }, fill);
}

function ratio(part, whole) {
  return part == null || !whole ? null : (100 * part) / whole;
}

function fixed(value, digits) {
  return value == null || Number.isNaN(Number(value)) ? '–' : Number(value).toFixed(digits);
}

function percent(value, digits = 1) {
  return value == null ? '–' : `${fixed(value, digits)} %`;
}

function celsius(value) {
  return value == null ? '–' : `${fixed(value, 0)} °C`;
}

// ---------------------------------------------------------------------------------------
// Charts

function chartSet() {
  const root = h('div', { class: 'charts' });
  const charts = [
    chart({ id: 'chart-cpu', title: 'CPU usage', value: (p) => p.cpu, max: () => 100, format: (v) => percent(v),
      axis: (v) => percent(v, 0) }),
    chart({ id: 'chart-memory', title: 'Memory used', value: (p) => p.memUsed,
      max: () => history.at(-1)?.memTotal ?? latest?.memory?.total_bytes ?? 1, format: bytes,
      of: () => ` of ${bytes(history.at(-1)?.memTotal)}` }),
  ];
  append(root, charts.map((c) => c.root));
  let gpuKey = '';
  const observer = new ResizeObserver((entries) => {
    for (const entry of entries) charts.find((c) => c.canvas === entry.target)?.draw();
  });
  for (const c of charts) observer.observe(c.canvas);
  const scheme = matchMedia('(prefers-color-scheme: dark)');
  const redraw = () => { for (const c of charts) c.draw(); };
  scheme.addEventListener('change', redraw);
  const syncGpus = (gpus) => {
    const key = gpus.map((g) => g.index).join(',');
    if (key === gpuKey) return;
    gpuKey = key;
    for (const old of charts.splice(2)) { observer.unobserve(old.canvas); old.root.remove(); }
    for (const gpu of gpus) {
      const c = chart({ id: `chart-gpu-${gpu.index}`, title: `GPU ${gpu.index} utilization`,
        value: (p) => p.gpus?.[gpu.index], max: () => 100, format: (v) => percent(v, 0), axis: (v) => percent(v, 0) });
      charts.push(c);
      root.append(c.root);
      observer.observe(c.canvas);
    }
  };
  return {
    root,
    update(status) {
      syncGpus(status.gpus ?? []);
      redraw();
    },
    destroy() { observer.disconnect(); scheme.removeEventListener('change', redraw); },
  };
}

/** One chart: a title, the current value, the canvas and its axis labels as text. */
function chart(spec) {
  const canvas = h('canvas', { id: spec.id, role: 'img', class: 'chart-canvas', 'aria-label': `${spec.title}: no data yet` });
  const now = h('span', { class: 'chart-now', text: '–' });
  const top = h('span', { class: 'chart-top' });
  const root = h('figure', { class: 'card chart' },
    h('figcaption', { class: 'chart-head' }, h('span', { class: 'chart-title', text: spec.title }), now),
    h('div', { class: 'chart-plot' },
      h('div', { class: 'chart-y' }, top, h('span', { text: '0' })),
      canvas,
      h('span'),
      h('div', { class: 'chart-x' }, h('span', { text: '10 min ago' }), h('span', { text: 'now' }))));
  const draw = () => {
    const max = spec.max() || 1;
    const current = history.length ? spec.value(history.at(-1)) : null;
    const text = current == null ? '–' : `${spec.format(current)}${spec.of ? spec.of() : ''}`;
    now.textContent = text;
    top.textContent = (spec.axis ?? spec.format)(max);
    canvas.setAttribute('aria-label', `${spec.title} over the last 10 minutes: now ${text}`);
    plot(canvas, history.map((p) => ({ t: p.t, v: spec.value(p) })), max);
  };
  return { root, canvas, draw };
}

/** Draws `points` ({t, v}) over the last HISTORY_MS on `canvas`, 0 to `max` high. */
function plot(canvas, points, max) {
  const { width, height } = canvas.getBoundingClientRect();
  if (!width || !height) return;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const css = getComputedStyle(canvas);
  const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  drawGrid(ctx, width, height, colour('--line', '#ccc'));
  const end = points.length ? points.at(-1).t : Date.now();
  const x = (t) => width - ((end - t) / HISTORY_MS) * width;
  const y = (v) => height - 1 - Math.max(0, Math.min(1, v / max)) * (height - 2);
  const line = colour('--accent', '#1f5f8b');
  for (const segment of segments(points)) drawSegment(ctx, segment.map((p) => [x(p.t), y(p.v)]), height, line);
}

function drawGrid(ctx, width, height, colour) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = Math.round(f * (height - 1)) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
  }
  ctx.stroke();
}

/** The runs of points with a value and no gap longer than GAP_MS. */
function segments(points) {
  const runs = [];
  let run = [];
  for (const p of points) {
    const gap = run.length && p.t - run.at(-1).t > GAP_MS;
    if (p.v == null || gap) { if (run.length) runs.push(run); run = []; }
    if (p.v != null) run.push(p);
  }
  if (run.length) runs.push(run);
  return runs;
}

function drawSegment(ctx, xy, height, colour) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  if (xy.length === 1) {
    ctx.beginPath();
    ctx.arc(xy[0][0], xy[0][1], 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  xy.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(xy.at(-1)[0], height);
  ctx.lineTo(xy[0][0], height);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fill();
  ctx.globalAlpha = 1;
}
