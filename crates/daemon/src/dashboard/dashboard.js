// baton's dashboard: renders the snapshot of /api/dashboard, then every
// snapshot /api/events pushes. No libraries; charts are SVG drawn here.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#2f5bd3', '#e07b39', '#1f8a4c', '#8e44ad', '#16a2b8', '#c62f2f', '#7a869a'];
const STAGE_COLORS = ['#2f5bd3', '#5b7fe0', '#e07b39', '#1f8a4c', '#8e44ad', '#16a2b8', '#b7791f', '#7a869a'];
const CHART = { width: 600, height: 180, left: 48, right: 8, top: 8, bottom: 20 };

const state = {
  snapshot: null,
  app: null,         // the app shown
  range: 'live',     // 'live': 5-second points over 10 minutes; 'hour': minutes
  colors: new Map(), // version label -> colour, stable while the page lives
  views: new Map(),  // app name -> its rendered elements
  open: new Map(),   // "app#id" -> {events, outcome} of an expanded history row (null while loading)
  source: null,
};

// ---------------------------------------------------------------------------
// Elements

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name === 'onclick') node.addEventListener('click', value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

function colorOf(version) {
  if (!state.colors.has(version)) {
    state.colors.set(version, PALETTE[state.colors.size % PALETTE.length]);
  }
  return state.colors.get(version);
}

/// A release id (`20261122T021500Z-3f9a2c1`) by its revision; other
/// labels as they are. The full label is in the tooltip.
function short(version) {
  const match = /^\d{8}T\d{6}Z-(.+)$/.exec(version);
  return match ? match[1] : version;
}

function swatch(version) {
  const node = el('span', { class: 'swatch' });
  node.style.background = colorOf(version);
  return node;
}

// ---------------------------------------------------------------------------
// Formatting

function pct(fraction, digits = 2) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

function num(value, digits = 1) {
  return Number(value).toFixed(digits);
}

function clock(ms, seconds) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, '0');
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return seconds ? `${hm}:${two(d.getSeconds())}` : hm;
}

function when(ms) {
  const d = new Date(ms);
  return `${d.toLocaleDateString()} ${clock(ms, true)}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// ---------------------------------------------------------------------------
// Talking to the daemon

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'X-Baton-Csrf': '1', 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    // The session ended: back to the login form.
    window.location.assign('/');
    throw new Error('logged out');
  }
  const text = await response.text();
  let value = null;
  try { value = text ? JSON.parse(text) : null; } catch (_) { value = null; }
  if (!response.ok) {
    throw new Error((value && value.error) || `${method} ${path}: ${response.status}`);
  }
  return value;
}

function notify(message, bad) {
  const notice = document.getElementById('notice');
  notice.textContent = message;
  notice.className = bad ? 'notice bad' : 'notice';
  notice.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { notice.hidden = true; }, 6000);
}

function connect() {
  const live = document.getElementById('live');
  const source = new EventSource('/api/events');
  state.source = source;
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('snapshot', (event) => render(JSON.parse(event.data)));
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live';
    // EventSource retries on its own; a session that ended needs the login.
    call('GET', '/api/dashboard').catch(() => {});
  });
}

async function start() {
  try {
    render(await call('GET', '/api/dashboard'));
  } catch (error) {
    notify(error.message, true);
  }
  connect();
}

// ---------------------------------------------------------------------------
// The page

function render(snapshot) {
  state.snapshot = snapshot;
  const names = snapshot.apps.map((app) => app.status.app);
  if (!names.includes(state.app)) state.app = names[0] || null;
  document.getElementById('empty').hidden = names.length > 0;
  renderTabs(names);
  const container = document.getElementById('apps');
  for (const [name, view] of state.views) {
    if (!names.includes(name)) { view.root.remove(); state.views.delete(name); }
  }
  for (const app of snapshot.apps) {
    let view = state.views.get(app.status.app);
    if (!view) {
      view = buildApp(app.status.app);
      state.views.set(app.status.app, view);
      container.append(view.root);
    }
    view.root.hidden = app.status.app !== state.app;
    updateApp(view, app, snapshot.now_ms);
  }
  renderFlags(snapshot.flags);
}

function renderTabs(names) {
  const nav = document.getElementById('app-tabs');
  nav.replaceChildren(...names.map((name) => el('a', {
    href: '#',
    class: name === state.app ? 'current' : null,
    'data-app-tab': name,
    text: name,
    onclick: (event) => {
      event.preventDefault();
      state.app = name;
      render(state.snapshot);
    },
  })));
}

/// The elements of one app's section, built once and updated in place so
/// that a button is never replaced under the pointer.
function buildApp(name) {
  const view = {};
  view.root = el('section', { class: 'app', 'data-app': name });
  view.title = el('h2', { text: name });
  view.release = el('span', { class: 'muted release' });
  view.running = el('span', { class: 'badge running running-deploy' });
  view.split = el('div', { class: 'split', 'data-testid': 'split' });
  view.versions = el('tbody');
  view.phase = el('div', { class: 'phase' });
  view.reason = el('p', { class: 'reason' });
  view.times = el('p', { class: 'muted times' });
  view.promote = el('button', { class: 'primary promote', type: 'button', text: 'Promote' });
  view.abort = el('button', { class: 'danger abort', type: 'button', text: 'Abort' });
  view.promote.addEventListener('click', () => command(name, 'promote', view));
  view.abort.addEventListener('click', () => command(name, 'abort', view));
  view.buttons = el('div', { class: 'buttons' }, view.promote, view.abort);
  view.budget = el('div', { class: 'budget-body' });
  view.legend = el('div', { class: 'legend' });
  view.charts = {
    rps: chartBox('Requests per second'),
    error_rate: chartBox('Error rate'),
    p99_ms: chartBox('p99 latency (ms)'),
  };
  view.rangeButtons = ['live', 'hour'].map((range) => el('button', {
    type: 'button',
    'data-range': range,
    text: range === 'live' ? 'Last 10 minutes (5 s)' : 'Last hour (1 min)',
    onclick: () => { state.range = range; render(state.snapshot); },
  }));
  view.history = el('tbody');
  view.releases = el('tbody');
  view.processes = el('tbody');

  view.root.append(
    el('div', { class: 'app-head' }, view.title, view.release, view.running),
    el('div', { class: 'row' },
      el('div', { class: 'panel traffic' },
        el('h2', { text: 'Traffic split' }),
        view.split,
        el('table', { class: 'versions' },
          el('thead', {}, el('tr', {},
            el('th', { text: 'Version' }), el('th', { text: 'Role' }),
            el('th', { class: 'num', text: 'Weight' }), el('th', { class: 'num', text: 'req/s' }),
            el('th', { class: 'num', text: 'Errors' }), el('th', { class: 'num', text: 'p99' }))),
          view.versions)),
      el('div', { class: 'panel rollout' },
        el('h2', { text: 'Rollout' }), view.phase, view.times, view.reason, view.buttons),
      el('div', { class: 'panel budget' }, el('h2', { text: 'Error budget' }), view.budget)),
    el('div', { class: 'panel' },
      el('div', { class: 'charts-head' },
        el('h2', { text: 'Traffic' }),
        el('span', { class: 'range' }, ...view.rangeButtons),
        view.legend),
      el('div', { class: 'charts' },
        view.charts.rps.box, view.charts.error_rate.box, view.charts.p99_ms.box)),
    el('div', { class: 'panel history' },
      el('h2', { text: 'Deploy history' }),
      el('table', {},
        el('thead', {}, el('tr', {},
          el('th', { text: '#' }), el('th', { text: 'Started' }), el('th', { text: 'Kind' }),
          el('th', { text: 'Release' }), el('th', { text: 'By' }), el('th', { text: 'Outcome' }),
          el('th', { class: 'num', text: 'Took' }), el('th', { text: 'Stages' }),
          el('th', { text: 'Reason' }))),
        view.history)),
    el('div', { class: 'row' },
      el('div', { class: 'panel releases' },
        el('h2', { text: 'Releases' }),
        el('table', {},
          el('thead', {}, el('tr', {},
            el('th', { text: 'Release' }), el('th', { text: 'Created' }),
            el('th', { text: 'Source' }), el('th', { text: 'Revision' }), el('th', { text: '' }))),
          view.releases)),
      el('div', { class: 'panel processes' },
        el('h2', { text: 'Processes' }),
        el('table', {},
          el('thead', {}, el('tr', {},
            el('th', { text: 'Process' }), el('th', { text: 'Release' }), el('th', { class: 'num', text: 'PID' }),
            el('th', { class: 'num', text: 'Port' }), el('th', { text: 'Up' }),
            el('th', { class: 'num', text: 'Restarts' }), el('th', { class: 'num', text: 'RSS' }),
            el('th', { text: 'State' }))),
          view.processes))));
  return view;
}

async function command(app, what, view) {
  const question = what === 'abort'
    ? `Abort the rollout of ${app}? All traffic goes back to the stable version.`
    : `Promote the candidate of ${app} to all traffic now?`;
  if (!window.confirm(question)) return;
  view.promote.disabled = true;
  view.abort.disabled = true;
  try {
    await call('POST', `/api/apps/${encodeURIComponent(app)}/rollout/${what}`);
    notify(what === 'abort' ? `Aborting the rollout of ${app}…` : `Promoting ${app}…`);
  } catch (error) {
    notify(error.message, true);
    view.promote.disabled = false;
    view.abort.disabled = false;
  }
}

function updateApp(view, app, nowMs) {
  const status = app.status;
  view.release.textContent = status.current_release ? `serving ${status.current_release}` : 'no release serving';
  view.running.textContent = status.running_deploy || '';
  view.running.hidden = !status.running_deploy;
  updateSplit(view, status.versions);
  updateRollout(view, status.rollout, status.running_deploy);
  updateBudget(view, status.budget);
  updateCharts(view, app, nowMs);
  updateHistory(view, status.app, app.history);
  updateReleases(view, app.releases);
  updateProcesses(view, app.processes, nowMs);
}

function updateSplit(view, versions) {
  const routed = versions.filter((v) => v.role !== 'draining');
  const total = routed.reduce((sum, v) => sum + (v.weight_percent || 0), 0) || 1;
  const parts = routed.map((v) => {
    const weight = v.weight_percent || 0;
    const part = el('div', {
      class: weight > 0 ? 'part' : 'part zero',
      'data-version': v.label,
      'data-role': v.role,
      'data-weight': weight,
      title: `${v.label} (${v.role}): ${weight}%`,
      text: `${short(v.label)} ${num(weight, weight % 1 === 0 ? 0 : 1)}%`,
    });
    part.style.flexGrow = String(weight / total);
    part.style.background = colorOf(v.label);
    return part;
  });
  view.split.replaceChildren(...parts);
  view.versions.replaceChildren(...versions.map((v) => el('tr', { 'data-version': v.label },
    el('td', {}, swatch(v.label), v.label),
    el('td', { text: v.role }),
    el('td', { class: 'num', text: v.weight_percent === null ? '—' : `${num(v.weight_percent, 1)}%` }),
    el('td', { class: 'num', text: num(v.last_minute.req_per_s, 1) }),
    el('td', { class: 'num', text: pct(v.last_minute.error_rate) }),
    el('td', { class: 'num', text: `${num(v.last_minute.p99_ms, 1)} ms` }))));
}

function updateRollout(view, rollout, running) {
  view.root.dataset.rollout = rollout ? 'running' : 'none';
  if (!rollout) {
    view.phase.textContent = running ? `${running}: no traffic step yet` : 'No rollout running';
    view.times.textContent = '';
    view.reason.textContent = '';
    view.buttons.hidden = true;
    view.promote.disabled = false;
    view.abort.disabled = false;
    return;
  }
  view.phase.textContent = `${rollout.strategy}: ${rollout.phase}, candidate at ${num(rollout.weight_percent, 1)}%${rollout.paused ? ' (paused)' : ''}`;
  const times = [];
  if (rollout.next_step_in_s !== null && rollout.next_step_in_s !== undefined) {
    times.push(`next step in ${duration(rollout.next_step_in_s * 1000)}`);
  }
  if (rollout.times_out_in_s !== null && rollout.times_out_in_s !== undefined) {
    times.push(`gives up waiting for evidence in ${duration(rollout.times_out_in_s * 1000)}`);
  }
  view.times.textContent = times.join(' · ');
  view.reason.textContent = rollout.reason;
  view.buttons.hidden = false;
}

function updateBudget(view, budget) {
  if (!budget) {
    view.budget.replaceChildren(el('p', { class: 'muted', text: 'No [slo] in this app\'s config.' }));
    return;
  }
  const left = Math.max(0, Math.min(1, budget.left));
  const bar = el('span', { class: budget.left <= 0 ? 'spent' : budget.left < 0.25 ? 'low' : null });
  bar.style.width = `${left * 100}%`;
  view.budget.replaceChildren(
    el('p', { text: `${budget.availability} over ${budget.window}` }),
    el('div', { class: 'meter', title: `${pct(budget.left, 1)} left` }, bar),
    el('p', { class: 'budget-left', text: `${pct(budget.left, 1)} left: ${budget.errors} errors of ${Math.floor(budget.allowed_errors)} allowed in ${budget.requests} requests` }),
    el('p', { class: 'muted', text: `burn rate ${num(budget.burn_rate_1h, 2)}× over 1 h, ${num(budget.burn_rate_6h, 2)}× over 6 h` }));
}

// ---------------------------------------------------------------------------
// Charts

function chartBox(title) {
  const chart = svg('svg', {
    viewBox: `0 0 ${CHART.width} ${CHART.height}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': title,
  });
  return { box: el('div', { class: 'chart' }, el('h3', { text: title }), chart), svg: chart };
}

function updateCharts(view, app, nowMs) {
  for (const button of view.rangeButtons) {
    button.className = button.dataset.range === state.range ? 'current' : '';
  }
  const series = state.range === 'live' ? app.live : app.minutes;
  const span = state.range === 'live' ? 10 * 60 * 1000 : 60 * 60 * 1000;
  // The range starts where the data does (a daemon that just started has
  // seconds, not ten minutes), and spans at least a few points.
  let first = nowMs;
  for (const v of series.versions) if (v.points.length) first = Math.min(first, v.points[0].t_ms);
  for (const m of app.markers) if (m.t_ms >= nowMs - span) first = Math.min(first, m.t_ms);
  const from = Math.max(nowMs - span, Math.min(first, nowMs - 12 * series.step_ms));
  const markers = app.markers.filter((m) => m.t_ms >= from && m.t_ms <= nowMs);
  const versions = series.versions.filter((v) => v.points.some((p) => p.t_ms + series.step_ms >= from));
  view.legend.replaceChildren(...versions.map((v) => el('span', { title: v.version }, swatch(v.version), short(v.version))));
  drawChart(view.charts.rps.svg, versions, 'rps', from, nowMs, markers, (v) => num(v, v < 10 ? 1 : 0), 1);
  drawChart(view.charts.error_rate.svg, versions, 'error_rate', from, nowMs, markers, (v) => pct(v, 1), 0.01);
  drawChart(view.charts.p99_ms.svg, versions, 'p99_ms', from, nowMs, markers, (v) => num(v, v < 10 ? 1 : 0), 1);
}

function drawChart(chart, versions, metric, from, to, markers, format, floor) {
  const w = CHART.width - CHART.left - CHART.right;
  const h = CHART.height - CHART.top - CHART.bottom;
  let max = floor;
  for (const v of versions) for (const p of v.points) if (p.t_ms >= from) max = Math.max(max, p[metric]);
  max *= 1.1;
  const x = (t) => CHART.left + ((t - from) / (to - from)) * w;
  const y = (value) => CHART.top + h - (value / max) * h;
  const nodes = [];
  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    nodes.push(svg('line', { class: 'axis', x1: CHART.left, x2: CHART.left + w, y1: y(value), y2: y(value) }));
    nodes.push(svg('text', { class: 'tick', x: CHART.left - 4, y: y(value) + 3, 'text-anchor': 'end' }, format(value)));
  }
  const seconds = to - from <= 15 * 60 * 1000;
  for (const fraction of [0, 0.5, 1]) {
    const t = from + (to - from) * fraction;
    const anchor = fraction === 0 ? 'start' : fraction === 1 ? 'end' : 'middle';
    nodes.push(svg('text', { class: 'tick', x: x(t), y: CHART.height - 5, 'text-anchor': anchor }, clock(t, seconds)));
  }
  for (const marker of markers) {
    const line = svg('line', {
      class: `marker ${marker.kind}`,
      'data-kind': marker.kind,
      'data-deploy': marker.deploy_id,
      x1: x(marker.t_ms), x2: x(marker.t_ms), y1: CHART.top, y2: CHART.top + h,
    }, svg('title', {}, `${clock(marker.t_ms, true)} ${marker.text}`));
    nodes.push(line);
  }
  // A rate is 0 without requests; an error rate or a latency is unknown
  // then, so its line breaks there rather than dropping to 0.
  const gapless = metric === 'rps';
  for (const v of versions) {
    const segments = [[]];
    for (const p of v.points) {
      if (p.t_ms < from) continue;
      if (!gapless && p.requests === 0) {
        if (segments[segments.length - 1].length) segments.push([]);
        continue;
      }
      segments[segments.length - 1].push(`${x(p.t_ms).toFixed(1)},${y(p[metric]).toFixed(1)}`);
    }
    for (const points of segments) {
      if (points.length === 0) continue;
      if (points.length === 1) points.push(points[0]);
      nodes.push(svg('polyline', {
        class: 'line',
        'data-version': v.version,
        stroke: colorOf(v.version),
        points: points.join(' '),
      }));
    }
  }
  chart.replaceChildren(...nodes);
}

// ---------------------------------------------------------------------------
// History, releases, processes

function updateHistory(view, app, history) {
  const rows = [];
  for (const run of history) {
    const key = `${app}#${run.id}`;
    const total = run.stages.reduce((sum, s) => sum + s.duration_ms, 0) || 1;
    const stages = el('div', { class: 'stages' }, ...run.stages.map((s, i) => {
      const part = el('span', { title: `${s.stage}: ${duration(s.duration_ms)}` });
      part.style.flexGrow = String(s.duration_ms / total);
      part.style.background = STAGE_COLORS[i % STAGE_COLORS.length];
      return part;
    }));
    rows.push(el('tr', {
      class: 'run',
      'data-deploy': run.id,
      title: 'Show stages and rollout decisions',
      onclick: () => toggleRun(app, run),
    },
    el('td', { text: run.id }),
    el('td', { text: when(run.started_at_ms) }),
    el('td', { text: run.kind }),
    el('td', {}, el('code', { text: run.release || '—' })),
    el('td', { text: run.user }),
    el('td', {}, el('span', { class: `badge ${run.outcome}`, text: run.outcome })),
    el('td', { class: 'num', text: duration(run.duration_ms) }),
    el('td', {}, stages),
    el('td', { class: 'muted', text: run.reason || '' })));
    if (state.open.has(key)) {
      const record = state.open.get(key);
      // A running run's record grows; one that just ended has its last words.
      if (record && (run.outcome === 'running' || record.outcome !== run.outcome)) refreshRun(app, run);
      rows.push(el('tr', { class: 'details', 'data-deploy-details': run.id },
        el('td', { colspan: 9 }, runDetails(run, record && record.events))));
    }
  }
  view.history.replaceChildren(...rows);
}

function toggleRun(app, run) {
  const key = `${app}#${run.id}`;
  if (state.open.has(key)) {
    state.open.delete(key);
    render(state.snapshot);
    return;
  }
  state.open.set(key, null);
  render(state.snapshot);
  refreshRun(app, run);
}

async function refreshRun(app, run) {
  const key = `${app}#${run.id}`;
  if (refreshRun.busy.has(key)) return;
  refreshRun.busy.add(key);
  try {
    const events = await call('GET', `/api/dashboard/apps/${encodeURIComponent(app)}/deploys/${run.id}`);
    if (state.open.has(key)) {
      state.open.set(key, { events, outcome: run.outcome });
      render(state.snapshot);
    }
  } catch (error) {
    notify(error.message, true);
  } finally {
    refreshRun.busy.delete(key);
  }
}
refreshRun.busy = new Set();

function runDetails(run, events) {
  const stages = el('ul', { class: 'stage-list' }, ...run.stages.map((s) =>
    el('li', { text: `${s.stage}: ${duration(s.duration_ms)}` })));
  if (events === null || events === undefined) {
    return el('div', {}, el('h3', { text: 'Stages' }), stages, el('p', { class: 'muted', text: 'Loading the run\'s record…' }));
  }
  const lines = [];
  for (const event of events) {
    switch (event.event) {
      case 'stage_started':
        if (event.detail) lines.push(el('li', { class: 'stage', text: `${event.stage}: ${event.detail}` }));
        break;
      case 'stage_finished':
        lines.push(el('li', { class: 'stage', text: `${event.stage} done in ${duration(event.duration_ms)}${event.detail ? `: ${event.detail}` : ''}` }));
        break;
      case 'output':
        lines.push(el('li', { class: 'rollout', text: event.line }));
        break;
      case 'warning':
        lines.push(el('li', { class: 'warning', text: `warning: ${event.message}` }));
        break;
      case 'failed':
        lines.push(el('li', { class: 'failed', text: `failed at ${event.stage}: ${event.error}` }));
        break;
      case 'succeeded':
        lines.push(el('li', { class: 'stage', text: `succeeded in ${duration(event.report.duration_ms)}` }));
        break;
      default:
        break;
    }
  }
  const decisions = events.filter((e) => e.event === 'output').length;
  return el('div', {},
    el('h3', { text: 'Stages' }), stages,
    ...trafficReport(run.traffic),
    el('h3', { text: `Record, with the evidence behind ${decisions} rollout decision${decisions === 1 ? '' : 's'}` }),
    el('ul', { class: 'record' }, ...lines));
}

// The traffic report kept with a successful run: the new version against
// the same clock hour of the previous days, as `baton deploy` printed it.
function trafficReport(report) {
  if (!report) return [];
  const figures = (t) => `${t.requests} requests (${num(t.req_per_s)} req/s), errors ${pct(t.error_rate)}, ` +
    `p50 ${num(t.p50_ms)} ms, p95 ${num(t.p95_ms)} ms, p99 ${num(t.p99_ms)} ms`;
  const hour = String(report.baseline_hour_utc).padStart(2, '0');
  const lines = [el('li', { text: `${short(report.version)} over ${duration(report.observed_ms)}: ${figures(report.new_version)}` })];
  const base = report.baseline;
  if (base) {
    lines.push(el('li', { text: `baseline ${hour}:00 UTC, ${report.baseline_days} of the previous 7 days: ${figures(base)}` }));
    const compared = [];
    if (base.p99_ms > 0 && report.new_version.requests > 0) compared.push(`p99 ${num(report.new_version.p99_ms / base.p99_ms, 2)}x baseline`);
    if (report.new_version.requests > 0) compared.push(`error rate ${num((report.new_version.error_rate - base.error_rate) * 100, 2)} points`);
    if (base.req_per_s > 0) compared.push(`traffic ${num(report.app_req_per_s / base.req_per_s, 2)}x baseline`);
    if (compared.length) lines.push(el('li', { text: compared.join(', ') }));
  } else {
    lines.push(el('li', { class: 'muted', text: `no baseline: no traffic in ${hour}:00 UTC on the previous 7 days` }));
  }
  return [el('h3', { text: 'Traffic report' }), el('ul', { class: 'traffic-report' }, ...lines)];
}

function updateReleases(view, releases) {
  view.releases.replaceChildren(...releases.map((r) => el('tr', { 'data-release': r.id },
    el('td', {}, el('code', { text: r.id })),
    el('td', { text: when(r.created_at_ms) }),
    el('td', { class: 'muted', text: r.source }),
    el('td', {}, el('code', { text: r.revision.slice(0, 12) })),
    el('td', {},
      r.current ? el('span', { class: 'badge succeeded', text: 'current' }) : null,
      r.rollback_target ? el('span', { class: 'badge', text: 'rollback target' }) : null,
      r.running ? el('span', { class: 'badge running', text: 'running' }) : null))));
}

function updateProcesses(view, processes, nowMs) {
  view.processes.replaceChildren(...processes.map((p) => el('tr', {},
    el('td', { text: `${p.role}.${p.index}` }),
    el('td', {}, el('code', { text: p.release })),
    el('td', { class: 'num', text: p.pid || '—' }),
    el('td', { class: 'num', text: p.port || '' }),
    el('td', { text: p.pid ? duration(Math.max(0, nowMs - p.started_at_ms)) : '—' }),
    el('td', { class: 'num', text: p.restarts }),
    el('td', { class: 'num', text: bytes(p.rss_bytes) }),
    el('td', { text: p.state }))));
}

// ---------------------------------------------------------------------------
// Flags

function rolloutPercent(flag) {
  const strategies = (flag.definition && flag.definition.strategies) || [];
  if (strategies.length === 0) return '100%';
  for (const s of strategies) {
    const params = s.parameters || {};
    if (s.name === 'flexibleRollout' && params.rollout !== undefined) return `${params.rollout}%`;
    if (s.name.startsWith('gradualRollout') && params.percentage !== undefined) return `${params.percentage}%`;
    if (s.name === 'default') return '100%';
  }
  return '—';
}

function renderFlags(list) {
  const body = document.querySelector('#flag-table tbody');
  document.getElementById('no-flags').hidden = list.flags.length > 0;
  document.getElementById('flag-table').hidden = list.flags.length === 0;
  body.replaceChildren(...list.flags.map((flag) => {
    const toggle = el('button', {
      type: 'button',
      class: 'flag-toggle',
      text: flag.enabled ? 'Turn off' : 'Turn on',
      onclick: async () => {
        toggle.disabled = true;
        try {
          await call('POST', `/api/flags/${encodeURIComponent(flag.name)}/${flag.enabled ? 'off' : 'on'}`, { user: '' });
        } catch (error) {
          notify(error.message, true);
          toggle.disabled = false;
        }
      },
    });
    return el('tr', { 'data-flag': flag.name },
      el('td', {}, el('code', { text: flag.name }),
        flag.description ? el('div', { class: 'muted', text: flag.description }) : null),
      el('td', {}, el('span', { class: `switch ${flag.enabled ? 'on' : 'off'}`, text: flag.enabled ? 'on' : 'off' })),
      el('td', { class: 'rollout-percent', text: rolloutPercent(flag) }),
      el('td', { class: 'muted', text: flag.strategies.length ? flag.strategies.join('; or ') : 'everyone' }),
      el('td', {}, toggle));
  }));
}

document.addEventListener('DOMContentLoaded', start);
