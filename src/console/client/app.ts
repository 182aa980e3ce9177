/// <reference lib="dom" />
/**
 * The console's page script (served as /console.js; src/console/build-assets.ts bundles it). No
 * framework: three views rendered with the DOM API (text only, never HTML from data), the fleet
 * drawn on one canvas that repaints only the cells that changed, live updates from
 * /api/events (server-sent events).
 */

interface StateMeta {
  readonly id: string;
  readonly label: string;
  readonly glyph: string;
  readonly help: string;
}
interface Meta {
  readonly states: readonly StateMeta[];
  readonly loginHint: string;
  readonly banner?: string;
}
type Row = [string, number, string, string, string, string, 0 | 1];
type May = Readonly<Record<string, boolean>>;
interface SessionInfo {
  readonly user: string;
  readonly csrf?: string;
  readonly may: May;
}

/** Cell colours by state id, with the glyph's colour (contrast ≥ 4.5:1 on the cell). */
const COLOURS: Readonly<Record<string, readonly [string, string]>> = {
  healthy: ['#2e7d32', '#ffffff'],
  faulty: ['#d32f2f', '#ffffff'],
  'cordoned-aegis': ['#7f0000', '#ffffff'],
  held: ['#f9a825', '#000000'],
  human: ['#6a1b9a', '#ffffff'],
  'cordoned-hand': ['#1565c0', '#ffffff'],
  stale: ['#9e9e9e', '#000000'],
  paused: ['#455a64', '#ffffff'],
  'opted-out': ['#d7ccc8', '#000000'],
  corrupt: ['#000000', '#ffffff'],
};

const $ = (id: string): HTMLElement => {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`#${id} missing`);
  return e;
};

type Child = Node | string | null | undefined | false;
function h(
  tag: string,
  attrs: Readonly<Record<string, string | boolean | undefined>> = {},
  ...children: Child[]
): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function fmtTime(iso: string | undefined): string {
  if (iso === undefined) return '-';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fmtDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

// ---------------------------------------------------------------- state

let meta: Meta = { states: [], loginHint: '' };
let session: SessionInfo | undefined;
const fleet = {
  rows: [] as Row[],
  index: new Map<string, number>(),
  seq: 0,
  loaded: false,
};
const listeners = new Set<(kind: string, data: unknown) => void>();
let events: EventSource | undefined;

/** Figures the benchmark and the tests read (window.aegisConsole). */
const perf = {
  firstRenderMs: -1,
  lastUpdateMs: -1,
  updates: 0,
  fleetRendered: 0,
};
/** The drawn fleet's geometry, while the fleet view is shown (tests sample cell colours). */
let cellCenter: ((name: string) => [number, number] | undefined) | undefined;
(window as unknown as { aegisConsole: unknown }).aegisConsole = {
  perf,
  nodes: (): number => fleet.rows.length,
  seq: (): number => fleet.seq,
  /** The centre of a node's cell in canvas pixels (CSS), when it is in view. */
  cellCenter: (name: string): [number, number] | undefined => cellCenter?.(name),
  stateOf: (name: string): string | undefined => {
    const i = fleet.index.get(name);
    const r = i === undefined ? undefined : fleet.rows[i];
    return r === undefined ? undefined : meta.states[r[1]]?.id;
  },
};

// ---------------------------------------------------------------- api

class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function api<T>(path: string, init?: { method: string; body?: unknown }): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init?.body !== undefined) headers['content-type'] = 'application/json';
  if (init !== undefined && init.method !== 'GET' && session?.csrf !== undefined)
    headers['x-aegis-csrf'] = session.csrf;
  const res = await fetch(path, {
    method: init?.method ?? 'GET',
    headers,
    credentials: 'same-origin',
    ...(init?.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const data = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, data.error ?? `HTTP ${res.status}`);
  return data as T;
}

function toast(text: string, bad = false): void {
  const t = $('toast');
  t.textContent = text;
  t.className = `toast show${bad ? ' bad' : ''}`;
  window.setTimeout(() => {
    if (t.textContent === text) t.className = 'toast';
  }, 6000);
}

// ---------------------------------------------------------------- live updates

function connect(): void {
  events?.close();
  const es = new EventSource('/api/events');
  events = es;
  const live = $('live');
  es.addEventListener('open', () => {
    live.textContent = 'live';
  });
  es.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
  });
  es.addEventListener('hello', (e) => {
    const d = JSON.parse((e as MessageEvent<string>).data) as { seq: number };
    // Missed changes while away: reload the fleet.
    if (fleet.loaded && d.seq !== fleet.seq)
      void loadFleet().then(() => {
        emit('fleet', null);
      });
  });
  es.addEventListener('fleet', (e) => {
    const t0 = performance.now();
    const d = JSON.parse((e as MessageEvent<string>).data) as {
      seq: number;
      changed: Row[];
      removed: string[];
    };
    const structural = applyDiff(d.changed, d.removed);
    fleet.seq = d.seq;
    emit('fleet', { changed: d.changed, structural, t0 });
  });
  for (const kind of ['cycle', 'control']) {
    es.addEventListener(kind, (e) => {
      live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
      emit(kind, JSON.parse((e as MessageEvent<string>).data));
    });
  }
}

function emit(kind: string, data: unknown): void {
  for (const l of listeners) l(kind, data);
}

/** Applies changed rows; true when nodes came or went (the layout changes). */
function applyDiff(changed: readonly Row[], removed: readonly string[]): boolean {
  let structural = removed.length > 0;
  for (const r of changed) {
    const i = fleet.index.get(r[0]);
    if (i === undefined) {
      structural = true;
      fleet.rows.push(r);
    } else {
      const old = fleet.rows[i];
      if (old !== undefined && (old[2] !== r[2] || old[3] !== r[3] || old[4] !== r[4]))
        structural = true;
      fleet.rows[i] = r;
    }
  }
  if (removed.length > 0) {
    const gone = new Set(removed);
    fleet.rows = fleet.rows.filter((r) => !gone.has(r[0]));
  }
  if (structural) reindex();
  return structural;
}

function reindex(): void {
  fleet.rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  fleet.index = new Map(fleet.rows.map((r, i) => [r[0], i]));
}

async function loadFleet(): Promise<void> {
  const d = await api<{ seq: number; rows: Row[] }>('/api/fleet');
  fleet.rows = d.rows;
  fleet.seq = d.seq;
  reindex();
  fleet.loaded = true;
}

// ---------------------------------------------------------------- routing

let teardown: (() => void) | undefined;

async function route(): Promise<void> {
  teardown?.();
  teardown = undefined;
  listeners.clear();
  const main = $('main');
  main.replaceChildren();
  const hash = location.hash;
  for (const id of ['nav-fleet', 'nav-queue']) $(id).removeAttribute('aria-current');
  if (session === undefined) {
    renderLogin(main);
    return;
  }
  try {
    if (hash.startsWith('#/node/')) {
      await renderNode(main, decodeURIComponent(hash.slice('#/node/'.length)));
    } else if (hash === '#/queue') {
      $('nav-queue').setAttribute('aria-current', 'page');
      await renderQueue(main);
    } else {
      $('nav-fleet').setAttribute('aria-current', 'page');
      await renderFleet(main);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      session = undefined;
      void route();
      return;
    }
    main.append(h('p', { class: 'error', role: 'alert' }, (err as Error).message));
  }
}

// ---------------------------------------------------------------- login

function renderLogin(main: HTMLElement): void {
  document.title = 'Log in · Aegis console';
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    required: true,
    'aria-describedby': 'token-hint',
  }) as HTMLInputElement;
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { class: 'login' },
    h('h1', {}, 'Log in'),
    h('p', {}, h('label', { for: 'token' }, 'Kubernetes bearer token')),
    h('p', {}, input),
    h('p', { id: 'token-hint', class: 'note' }, meta.loginHint),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Log in')),
    error,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void login(input.value).catch((err: unknown) => {
      error.textContent = (err as Error).message;
    });
  });
  main.append(form);
  input.focus();
}

async function login(token: string): Promise<void> {
  session = await api<SessionInfo>('/api/login', { method: 'POST', body: { token } });
  afterLogin();
  await route();
}

function afterLogin(): void {
  if (session === undefined) return;
  const writes = Object.values(session.may).some((v) => v);
  $('who').textContent = `${session.user}${writes ? '' : ' (read only)'}`;
  $('logout').hidden = false;
  connect();
}

// ---------------------------------------------------------------- fleet view

interface Block {
  readonly key: string;
  readonly members: number[];
  x: number;
  y: number;
  cols: number;
  w: number;
  h: number;
}

async function renderFleet(main: HTMLElement): Promise<void> {
  document.title = 'Fleet · Aegis console';
  const t0 = performance.now();
  if (!fleet.loaded) await loadFleet();
  const filter = {
    text: '',
    states: new Set(meta.states.map((_, i) => i)),
    group: 'rack' as 'rack' | 'leaf' | 'group' | 'none',
  };
  const search = h('input', {
    id: 'search',
    type: 'search',
    placeholder: 'node, rack, leaf, condition',
    'aria-label': 'Search nodes',
  }) as HTMLInputElement;
  const groupSel = h(
    'select',
    { id: 'group-by', 'aria-label': 'Group by' },
    h('option', { value: 'rack' }, 'Group by rack'),
    h('option', { value: 'leaf' }, 'Group by leaf switch'),
    h('option', { value: 'group' }, 'Group by node group'),
    h('option', { value: 'none' }, 'No grouping'),
  ) as HTMLSelectElement;
  const shown = h('span', { class: 'note', role: 'status' });
  const legend = h('ul', { class: 'legend', 'aria-label': 'States (press to show or hide)' });
  const legendButtons: HTMLElement[] = [];
  const counts = h('span', { class: 'sr-only' });
  meta.states.forEach((s, i) => {
    const [bg, fg] = COLOURS[s.id] ?? ['#888', '#000'];
    const sw = h('span', { class: 'swatch', 'aria-hidden': 'true' }, s.glyph);
    sw.style.background = bg;
    sw.style.color = fg;
    const count = h('span', { class: 'count' }, '0');
    const b = h(
      'button',
      { type: 'button', 'aria-pressed': 'true', title: s.help, 'data-state': s.id },
      sw,
      `${s.label} `,
      count,
    );
    b.addEventListener('click', () => {
      if (filter.states.has(i)) filter.states.delete(i);
      else filter.states.add(i);
      b.setAttribute('aria-pressed', String(filter.states.has(i)));
      repaintAll();
      renderAttention();
    });
    legendButtons.push(count);
    legend.append(h('li', {}, b));
  });
  const wrap = h('div', { class: 'grid-wrap' });
  const spacer = h('div');
  const canvas = h('canvas', {
    id: 'fleet-canvas',
    tabindex: '0',
    role: 'img',
    'aria-roledescription': 'fleet map',
  }) as HTMLCanvasElement;
  const announce = h('p', { class: 'sr-only', 'aria-live': 'polite', id: 'cell-focus' });
  wrap.append(canvas, spacer);
  const tip = h('div', { class: 'tip', hidden: true });
  const attention = h('table', { id: 'attention' });
  main.append(
    h('h1', {}, 'Fleet'),
    h(
      'div',
      { class: 'toolbar' },
      search,
      groupSel,
      shown,
      h(
        'span',
        { class: 'note' },
        'Arrow keys move between nodes, Enter opens one. Colours carry letters too: see the legend.',
      ),
    ),
    legend,
    counts,
    wrap,
    announce,
    tip,
    h('h2', {}, 'Nodes needing attention'),
    attention,
  );

  const ctx = canvas.getContext('2d', { alpha: false });
  if (ctx === null) throw new Error('no 2D canvas');
  const PITCH = 14;
  const CELL = 12;
  const HEAD = 16;
  const PAD = 8;
  const HEAD_FONT = '11px system-ui, sans-serif';
  let blocks: Block[] = [];
  let blockOf = new Int32Array(0);
  let posOf = new Int32Array(0);
  let height = 0;
  let focus = -1;
  let matches = new Uint8Array(0);

  const groupKey = (r: Row): string =>
    filter.group === 'rack'
      ? r[2] || '(no rack)'
      : filter.group === 'leaf'
        ? r[3] || '(no leaf)'
        : filter.group === 'group'
          ? r[4] || '(no node group)'
          : 'all nodes';

  const layout = (): void => {
    const width = wrap.clientWidth - 16;
    const byKey = new Map<string, number[]>();
    fleet.rows.forEach((r, i) => {
      const k = groupKey(r);
      let list = byKey.get(k);
      if (list === undefined) byKey.set(k, (list = []));
      list.push(i);
    });
    const keys = [...byKey.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    blocks = [];
    blockOf = new Int32Array(fleet.rows.length);
    posOf = new Int32Array(fleet.rows.length);
    let x = PAD;
    let y = PAD;
    let rowH = 0;
    ctx.font = HEAD_FONT;
    for (const key of keys) {
      const members = byKey.get(key) ?? [];
      const maxCols = Math.max(4, Math.floor((width - 2 * PAD) / PITCH));
      const cols =
        filter.group === 'none'
          ? maxCols
          : Math.min(maxCols, Math.max(4, Math.ceil(Math.sqrt(members.length * 2))));
      // Room for the header: the name, the size and how many are not healthy.
      const w = Math.max(
        cols * PITCH,
        ctx.measureText(`${key} (${members.length}, 99 not healthy)`).width,
      );
      const hgt = HEAD + Math.ceil(members.length / cols) * PITCH;
      if (x + w > width && x > PAD) {
        x = PAD;
        y += rowH + PAD;
        rowH = 0;
      }
      const b: Block = { key, members, x, y, cols, w, h: hgt };
      const bi = blocks.length;
      blocks.push(b);
      members.forEach((m, j) => {
        blockOf[m] = bi;
        posOf[m] = j;
      });
      x += w + PAD * 2;
      rowH = Math.max(rowH, hgt);
    }
    height = y + rowH + PAD;
    // A small fleet gets a small map (the table below stays in sight); a big one scrolls.
    wrap.style.height = `${Math.max(120, Math.min(height + 2, window.innerHeight - 240))}px`;
    spacer.style.height = `${Math.max(0, height - wrap.clientHeight)}px`;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.floor(width * dpr);
    canvas.height = Math.floor(wrap.clientHeight * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${wrap.clientHeight}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  };

  const computeMatches = (): void => {
    const text = filter.text.toLowerCase();
    matches = new Uint8Array(fleet.rows.length);
    let n = 0;
    fleet.rows.forEach((r, i) => {
      const ok =
        filter.states.has(r[1]) &&
        (text === '' ||
          r[0].toLowerCase().includes(text) ||
          r[2].toLowerCase().includes(text) ||
          r[3].toLowerCase().includes(text) ||
          r[4].toLowerCase().includes(text) ||
          r[5].toLowerCase().includes(text));
      if (ok) {
        matches[i] = 1;
        n++;
      }
    });
    shown.textContent = `${n} of ${fleet.rows.length} nodes shown`;
  };

  const cellXY = (i: number): [number, number] => {
    const b = blocks[blockOf[i] ?? 0];
    if (b === undefined) return [0, 0];
    const j = posOf[i] ?? 0;
    return [b.x + (j % b.cols) * PITCH, b.y + HEAD + Math.floor(j / b.cols) * PITCH];
  };

  const drawCell = (i: number, top: number): void => {
    const r = fleet.rows[i];
    if (r === undefined) return;
    const [x, y0] = cellXY(i);
    const y = y0 - top;
    if (y < -PITCH || y > wrap.clientHeight) return;
    const id = meta.states[r[1]]?.id ?? 'healthy';
    const [bg, fg] = COLOURS[id] ?? ['#888', '#000'];
    ctx.clearRect(x - 2, y - 2, CELL + 4, CELL + 4);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(x - 2, y - 2, CELL + 4, CELL + 4);
    ctx.globalAlpha = matches[i] === 1 ? 1 : 0.12;
    ctx.fillStyle = bg;
    ctx.fillRect(x, y, CELL, CELL);
    const glyph = meta.states[r[1]]?.glyph ?? '';
    if (glyph !== '') {
      ctx.fillStyle = fg;
      ctx.fillText(glyph, x + CELL / 2, y + CELL / 2 + 1);
    }
    if (r[6] === 0 && id !== 'healthy') {
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, CELL - 1, CELL - 1);
    }
    ctx.globalAlpha = 1;
    if (i === focus) {
      ctx.strokeStyle = '#ff8f00';
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, y - 1, CELL + 2, CELL + 2);
    }
  };

  const repaintAll = (): void => {
    const t = performance.now();
    computeMatches();
    const top = wrap.scrollTop;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.font = 'bold 10px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (const b of blocks) {
      if (b.y + b.h < top || b.y > top + wrap.clientHeight) continue;
      ctx.fillStyle = '#1a1a1a';
      ctx.textAlign = 'left';
      ctx.font = HEAD_FONT;
      const bad = b.members.reduce((n, m) => n + ((fleet.rows[m]?.[1] ?? 0) !== 0 ? 1 : 0), 0);
      ctx.fillText(
        `${b.key} (${b.members.length}${bad > 0 ? `, ${bad} not healthy` : ''})`,
        b.x,
        b.y - top + HEAD / 2,
        Math.max(b.w, 60),
      );
      ctx.textAlign = 'center';
      ctx.font = 'bold 10px system-ui, sans-serif';
      for (const m of b.members) drawCell(m, top);
    }
    updateCounts();
    perf.fleetRendered = performance.now() - t;
  };

  const updateCounts = (): void => {
    const c = new Array<number>(meta.states.length).fill(0);
    for (const r of fleet.rows) c[r[1]] = (c[r[1]] ?? 0) + 1;
    legendButtons.forEach((b, i) => (b.textContent = String(c[i] ?? 0)));
    canvas.setAttribute(
      'aria-label',
      `Fleet map of ${fleet.rows.length} nodes: ${meta.states
        .map((s, i) => ((c[i] ?? 0) > 0 ? `${c[i] ?? 0} ${s.label}` : ''))
        .filter((x) => x !== '')
        .join(', ')}. The table below lists the nodes needing attention.`,
    );
  };

  const renderAttention = (): void => {
    const rows: HTMLElement[] = [];
    let total = 0;
    for (let i = 0; i < fleet.rows.length; i++) {
      const r = fleet.rows[i];
      if (r === undefined || r[1] === 0 || matches[i] !== 1) continue;
      total++;
      if (rows.length >= 200) continue;
      const s = meta.states[r[1]];
      rows.push(
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `#/node/${encodeURIComponent(r[0])}` }, r[0])),
          h('td', {}, badge(s?.id ?? '', s?.label ?? '')),
          h('td', {}, r[5] || '-'),
          h('td', {}, r[2] || '-'),
          h('td', {}, r[3] || '-'),
          h('td', {}, r[6] === 1 ? 'Ready' : 'NotReady'),
        ),
      );
    }
    attention.replaceChildren(
      h(
        'caption',
        { class: 'note' },
        total > rows.length ? `first ${rows.length} of ${total}` : `${total} node(s)`,
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Node', 'State', 'Condition', 'Rack', 'Leaf', 'Ready'].map((t) =>
            h('th', { scope: 'col' }, t),
          ),
        ),
      ),
      h('tbody', {}, ...rows),
    );
  };

  const hit = (clientX: number, clientY: number): number => {
    const rect = canvas.getBoundingClientRect();
    const x = clientX - rect.left;
    const y = clientY - rect.top + wrap.scrollTop;
    for (const b of blocks) {
      if (x < b.x || x >= b.x + b.w || y < b.y + HEAD || y >= b.y + b.h) continue;
      const col = Math.floor((x - b.x) / PITCH);
      const row = Math.floor((y - b.y - HEAD) / PITCH);
      const j = row * b.cols + col;
      return b.members[j] ?? -1;
    }
    return -1;
  };

  const describe = (i: number): string => {
    const r = fleet.rows[i];
    if (r === undefined) return '';
    const s = meta.states[r[1]];
    return `${r[0]}: ${s?.label ?? '?'}${r[5] === '' ? '' : `, ${r[5]}`}${r[2] === '' ? '' : `, rack ${r[2]}`}${r[3] === '' ? '' : `, leaf ${r[3]}`}${r[6] === 1 ? '' : ', NotReady'}`;
  };

  const full = (): void => {
    layout();
    repaintAll();
    renderAttention();
  };
  cellCenter = (name) => {
    const i = fleet.index.get(name);
    if (i === undefined) return undefined;
    const [x, y] = cellXY(i);
    return [x + CELL / 2, y - wrap.scrollTop + CELL / 2];
  };
  full();
  perf.firstRenderMs = performance.now() - t0;

  let timer: number | undefined;
  search.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      filter.text = search.value.trim();
      repaintAll();
      renderAttention();
    }, 120);
  });
  groupSel.addEventListener('change', () => {
    filter.group = groupSel.value as typeof filter.group;
    full();
  });
  wrap.addEventListener('scroll', () => {
    requestAnimationFrame(repaintAll);
  });
  const onResize = (): void => {
    full();
  };
  window.addEventListener('resize', onResize);
  canvas.addEventListener('mousemove', (e) => {
    const i = hit(e.clientX, e.clientY);
    if (i < 0) {
      tip.hidden = true;
      canvas.style.cursor = 'default';
      return;
    }
    canvas.style.cursor = 'pointer';
    tip.textContent = describe(i);
    tip.hidden = false;
    tip.style.left = `${e.clientX + 12}px`;
    tip.style.top = `${e.clientY + 12}px`;
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
  canvas.addEventListener('click', (e) => {
    const i = hit(e.clientX, e.clientY);
    const r = fleet.rows[i];
    if (r !== undefined) location.hash = `#/node/${encodeURIComponent(r[0])}`;
  });
  const moveFocus = (next: number): void => {
    if (next < 0 || next >= fleet.rows.length) return;
    const prev = focus;
    focus = next;
    const top = wrap.scrollTop;
    const [, y] = cellXY(next);
    if (y < top || y + PITCH > top + wrap.clientHeight) {
      wrap.scrollTop = Math.max(0, y - wrap.clientHeight / 2);
      repaintAll();
    } else {
      if (prev >= 0) drawCell(prev, top);
      drawCell(next, top);
    }
    announce.textContent = describe(next);
  };
  canvas.addEventListener('focus', () => {
    if (focus < 0) moveFocus(blocks[0]?.members[0] ?? 0);
  });
  canvas.addEventListener('keydown', (e) => {
    const b = blocks[blockOf[focus] ?? 0];
    const j = posOf[focus] ?? 0;
    const order = (bi: number, k: number): number | undefined => blocks[bi]?.members[k];
    let next: number | undefined;
    switch (e.key) {
      case 'ArrowRight':
        next =
          b !== undefined && j + 1 < b.members.length
            ? b.members[j + 1]
            : order((blockOf[focus] ?? 0) + 1, 0);
        break;
      case 'ArrowLeft':
        next =
          j > 0 && b !== undefined
            ? b.members[j - 1]
            : (() => {
                const pb = blocks[(blockOf[focus] ?? 0) - 1];
                return pb?.members[pb.members.length - 1];
              })();
        break;
      case 'ArrowDown':
        next =
          b !== undefined && j + b.cols < b.members.length
            ? b.members[j + b.cols]
            : order((blockOf[focus] ?? 0) + 1, 0);
        break;
      case 'ArrowUp':
        next =
          b !== undefined && j - b.cols >= 0
            ? b.members[j - b.cols]
            : (() => {
                const pb = blocks[(blockOf[focus] ?? 0) - 1];
                return pb?.members[0];
              })();
        break;
      case 'Enter':
      case ' ': {
        const r = fleet.rows[focus];
        if (r !== undefined) location.hash = `#/node/${encodeURIComponent(r[0])}`;
        e.preventDefault();
        return;
      }
      default:
        return;
    }
    e.preventDefault();
    if (next !== undefined) moveFocus(next);
  });

  let attentionTimer: number | undefined;
  listeners.add((kind, data) => {
    if (kind !== 'fleet') return;
    const d = data as { changed: Row[]; structural: boolean; t0: number } | null;
    if (d === null || d.structural) full();
    else {
      const top = wrap.scrollTop;
      ctx.font = 'bold 10px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const text = filter.text.toLowerCase();
      for (const r of d.changed) {
        const i = fleet.index.get(r[0]);
        if (i === undefined) continue;
        matches[i] =
          filter.states.has(r[1]) &&
          (text === '' ||
            [r[0], r[2], r[3], r[4], r[5]].some((v) => v.toLowerCase().includes(text)))
            ? 1
            : 0;
        drawCell(i, top);
      }
      updateCounts();
    }
    perf.lastUpdateMs = performance.now() - (d?.t0 ?? performance.now());
    perf.updates++;
    canvas.dataset['seq'] = String(fleet.seq);
    window.clearTimeout(attentionTimer);
    attentionTimer = window.setTimeout(renderAttention, 250);
  });
  canvas.dataset['seq'] = String(fleet.seq);
  teardown = () => {
    window.removeEventListener('resize', onResize);
    tip.remove();
    cellCenter = undefined;
  };
}

function badge(id: string, label: string): HTMLElement {
  const [bg, fg] = COLOURS[id] ?? ['#888', '#000'];
  const b = h('span', { class: 'badge', 'data-state': id }, label);
  b.style.background = bg;
  b.style.color = fg;
  return b;
}

// ---------------------------------------------------------------- node view

interface TimelineEntry {
  at?: string;
  end?: string;
  kind: string;
  what: string;
  status?: string;
  job?: string;
  exitCode?: number;
  condition?: string;
  message?: string;
  by?: string;
}
interface ConditionView {
  recorded: string;
  device?: string;
  priority?: number;
  bucket?: string;
  domain?: string;
  sop?: string | null;
  served: boolean;
}
interface NodeDetail {
  node: string;
  cell: string;
  explanation: {
    state: string;
    stateText: string;
    ready: boolean | 'Unknown';
    unschedulable: boolean;
    paused: boolean;
    fleetPaused: boolean;
    supervisor?: string;
    ticket?: { status: string; condition: string; reason: string; creationTime: string };
    conditions: ConditionView[];
    nodeConditions: { type: string; reason: string; message?: string }[];
    sop?: { id: string; description?: string };
    hold?: { gate: string; reason: string; since?: string };
    approval?: { action: string; state: string; requestedAt: string; by?: string };
    running?: { action: string };
    why: string[];
    prioritySource: string;
  };
  ticket: { status: string; supervisor: string } | null;
  timeline: TimelineEntry[];
  links: { title: string; url: string }[];
  place: Record<string, string>;
  engineHold?: { gate: string; action: string; reason: string };
  stale: boolean;
  may: May;
}

async function renderNode(main: HTMLElement, name: string): Promise<void> {
  document.title = `${name} · Aegis console`;
  const d = await api<NodeDetail>(`/api/nodes/${encodeURIComponent(name)}`);
  const e = d.explanation;
  const state = meta.states.find((s) => s.id === d.cell);
  const open = d.ticket !== null && d.ticket.status !== 'resolved' && d.ticket.status !== 'closed';
  const human =
    open && d.ticket !== null && d.ticket.supervisor !== 'aegis' && d.ticket.supervisor !== '';
  const pending = e.approval?.state === 'pending';
  const facts: [string, string][] = [
    ['State', `${e.state}: ${e.stateText}`],
    ['Ready', e.ready === true ? 'True' : e.ready === false ? 'False' : 'Unknown'],
    ['Schedulable', e.unschedulable ? 'no (cordoned)' : 'yes'],
    ['Paused', e.paused ? 'yes (aegis.io/pause=true)' : e.fleetPaused ? 'fleet-wide' : 'no'],
    [
      'Place',
      Object.entries(d.place)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-',
    ],
  ];
  if (e.supervisor !== undefined) facts.push(['Supervisor', e.supervisor]);
  if (e.ticket !== undefined)
    facts.push([
      'Ticket',
      `${e.ticket.status}, opened ${fmtTime(e.ticket.creationTime)} for ${e.ticket.condition}${e.ticket.reason === '' ? '' : ` (${e.ticket.reason})`}`,
    ]);
  if (e.sop !== undefined)
    facts.push([
      'SOP',
      `${e.sop.id}${e.sop.description === undefined ? '' : `: ${e.sop.description}`}`,
    ]);
  if (e.hold !== undefined)
    facts.push(['Held by', `${e.hold.gate}${e.hold.reason === '' ? '' : ` (${e.hold.reason})`}`]);
  if (d.engineHold !== undefined)
    facts.push([
      'Last cycle',
      `${d.engineHold.action} held by ${d.engineHold.gate}${d.engineHold.reason === '' ? '' : ` (${d.engineHold.reason})`}`,
    ]);
  if (d.stale) facts.push(['Data', 'stale: its metrics are stale or missing this cycle']);

  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' });
  const add = (action: string, label: string, applies: boolean, why: string): void => {
    const allowed = d.may[action] === true;
    const b = h(
      'button',
      {
        type: 'button',
        id: `action-${action}`,
        disabled: !allowed || !applies,
        title: !allowed ? 'your RBAC does not allow it (read only)' : !applies ? why : '',
      },
      label,
    );
    b.addEventListener('click', () => {
      void act(
        `/api/nodes/${encodeURIComponent(name)}/${action}`,
        `${label} on ${name}? This is recorded in the ticket as ${session?.user ?? 'you'}.`,
        action === 'takeover',
      );
    });
    actions.append(b);
  };
  add('approve', `Approve ${e.approval?.action ?? 'step'}`, pending, 'no step waits for approval');
  add('dismiss', `Dismiss ${e.approval?.action ?? 'step'}`, pending, 'no step waits for approval');
  add(
    'takeover',
    'Take over',
    open && !human,
    open ? 'already owned by a human' : 'no open ticket',
  );
  add('release', 'Release to Aegis', human, 'not owned by a human');
  add('ack', 'Acknowledge (close)', open, 'no open ticket');
  add('pause', 'Pause node', !e.paused, 'already paused');
  add('resume', 'Resume node', e.paused, 'not paused');

  const condTable =
    e.conditions.length === 0
      ? h('p', { class: 'note' }, 'No active condition.')
      : table(
          ['', 'Priority', 'Bucket', 'Condition', 'Device', 'Domain', 'SOP'],
          e.conditions.map((c) => [
            c.served ? 'served' : '',
            c.priority === undefined ? '?' : String(c.priority),
            c.bucket ?? '?',
            c.recorded,
            c.device ?? '-',
            c.domain ?? '?',
            c.sop === undefined ? '?' : (c.sop ?? 'record only'),
          ]),
          'Active conditions',
        );
  const tl =
    d.timeline.length === 0
      ? h('p', { class: 'note' }, 'No ticket: Aegis has not acted on this node.')
      : table(
          ['Time', 'Event', 'Status', 'Job', 'Exit', 'Condition', 'Message', 'Who'],
          d.timeline.map((t) => [
            fmtTime(t.at),
            t.what,
            t.status ?? '',
            t.job ?? '',
            t.exitCode === undefined ? '' : String(t.exitCode),
            t.condition ?? '',
            t.message ?? '',
            t.by ?? (t.kind === 'step' ? 'Aegis' : ''),
          ]),
          'Ticket timeline',
          'timeline',
        );

  main.append(
    h('p', {}, h('a', { href: '#/fleet' }, '← Fleet')),
    h('h1', {}, `Node ${name} `, badge(d.cell, state?.label ?? d.cell)),
    actions,
    h('h2', {}, 'Why'),
    h('ul', { class: 'why', id: 'why' }, ...e.why.map((w) => h('li', {}, w))),
    h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('h2', {}, 'Active conditions'),
    h('p', { class: 'note' }, `Priorities from ${e.prioritySource}.`),
    condTable,
    e.nodeConditions.length === 0
      ? ''
      : h(
          'div',
          {},
          h('h2', {}, 'Node conditions set by detectors'),
          table(
            ['Type', 'Reason', 'Message'],
            e.nodeConditions.map((c) => [c.type, c.reason, c.message ?? '']),
            'Node conditions',
          ),
        ),
    h('h2', {}, 'Ticket timeline'),
    tl,
    h('h2', {}, 'Dashboards'),
    d.links.length === 0
      ? h('p', { class: 'note' }, 'No Grafana URL configured (console.grafana.url).')
      : h(
          'ul',
          {},
          ...d.links.map((l) =>
            h(
              'li',
              {},
              h('a', { href: l.url, target: '_blank', rel: 'noopener noreferrer' }, l.title),
            ),
          ),
        ),
  );
  let last = 0;
  listeners.add((kind, data) => {
    const changed =
      kind === 'fleet' &&
      (data === null || (data as { changed: Row[] }).changed.some((r) => r[0] === name));
    if (!changed && kind !== 'control') return;
    if (Date.now() - last < 500) return;
    last = Date.now();
    void route();
  });
}

function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  caption: string,
  id?: string,
): HTMLElement {
  return h(
    'table',
    { ...(id === undefined ? {} : { id }) },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

async function act(path: string, question: string, askOwner: boolean): Promise<void> {
  const dialog = $('confirm') as HTMLDialogElement;
  $('confirm-text').textContent = question;
  const ownerRow = $('confirm-owner-row');
  const owner = $('confirm-owner') as HTMLInputElement;
  ownerRow.hidden = !askOwner;
  owner.value = '';
  dialog.returnValue = '';
  dialog.showModal();
  ($('confirm-ok') as HTMLButtonElement).focus();
  const answer = await new Promise<string>((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        resolve(dialog.returnValue);
      },
      { once: true },
    );
  });
  if (answer !== 'ok') return;
  try {
    const r = await api<{ message: string; warning?: string }>(path, {
      method: 'POST',
      body: {
        confirm: true,
        ...(askOwner && owner.value.trim() !== '' ? { owner: owner.value.trim() } : {}),
      },
    });
    toast(r.warning === undefined ? r.message : `${r.message} (${r.warning})`);
  } catch (err) {
    toast((err as Error).message, true);
  }
  await route();
}

// ---------------------------------------------------------------- queue view

interface StepRef {
  node: string;
  action: string;
  since?: string;
  gate?: string;
  reason?: string;
}
interface Queue {
  summary: {
    automation: { paused: boolean; pausedBy?: string; pausedAt?: string; pausedByConfig: boolean };
    dryRun: { value: boolean };
    controller: { holder?: string; expired?: boolean; unknown?: string };
    nodes: { total: number; notReady: string[] };
    tickets: {
      open: number;
      byCondition: { condition: string; bucket?: string; priority?: number; count: number }[];
    };
    steps: { running: StepRef[]; held: StepRef[]; approvalsPending: StepRef[] };
    breaker: {
      holding: StepRef[];
      resetAt?: string;
      resetBy?: string;
      limit: number;
      windowMs: number;
    };
    cordonBudget: { used: number; budget: number; eligible: number; fraction: number };
  };
  waiting: {
    node: string;
    action: string;
    gate: string;
    reason: string;
    since?: string;
    condition?: string;
    priority?: number;
    bucket?: string;
  }[];
  engine?: { atMs: number; breakerOpen: boolean };
  limits: {
    maxConcurrent: Record<string, number>;
    maxPerRack: number;
    maxPerLeaf: number;
    nodeCooldownMs: number;
    stormCooldownMs: number;
  };
  may: May;
}

async function renderQueue(main: HTMLElement): Promise<void> {
  document.title = 'Queue · Aegis console';
  const q = await api<Queue>('/api/queue');
  const s = q.summary;
  const breakerOpen = q.engine?.breakerOpen ?? s.breaker.holding.length > 0;
  const card = (title: string, big: string, ...lines: string[]): HTMLElement =>
    h(
      'div',
      { class: 'card' },
      h('div', {}, title),
      h('div', { class: 'big' }, big),
      ...lines.map((l) => h('div', { class: 'note' }, l)),
    );
  const nodeLink = (n: string): HTMLElement =>
    h('a', { href: `#/node/${encodeURIComponent(n)}` }, n);
  const rowsOf = (cols: readonly (string | HTMLElement)[][]): HTMLElement[] =>
    cols.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))));
  const tbl = (
    head: string[],
    rows: (string | HTMLElement)[][],
    caption: string,
    id: string,
  ): HTMLElement =>
    rows.length === 0
      ? h('p', { class: 'note', id }, 'None.')
      : h(
          'table',
          { id },
          h('caption', { class: 'sr-only' }, caption),
          h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...rowsOf(rows)),
        );
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Fleet actions' });
  const add = (action: string, path: string, label: string, applies: boolean): void => {
    const allowed = q.may[action] === true;
    const b = h(
      'button',
      {
        type: 'button',
        id: `action-${action}`,
        disabled: !allowed || !applies,
        title: allowed ? '' : 'your RBAC does not allow it (read only)',
      },
      label,
    );
    b.addEventListener('click', () => {
      void act(
        path,
        `${label}? Recorded in ConfigMap aegis-control as ${session?.user ?? 'you'}.`,
        false,
      );
    });
    actions.append(b);
  };
  add('fleet-pause', '/api/fleet/pause', 'Pause all automation', !s.automation.paused);
  add(
    'fleet-resume',
    '/api/fleet/resume',
    'Resume automation',
    s.automation.paused && !s.automation.pausedByConfig,
  );
  add('breaker-reset', '/api/fleet/breaker-reset', 'Reset the storm breaker', true);
  const mc = q.limits.maxConcurrent;
  main.append(
    h('h1', {}, 'Queue'),
    actions,
    h(
      'div',
      { class: 'cards' },
      card(
        'Automation',
        s.automation.paused ? 'PAUSED' : 'running',
        s.automation.paused
          ? s.automation.pausedByConfig && s.automation.pausedBy === undefined
            ? 'by the config (safety.paused)'
            : `by ${s.automation.pausedBy ?? 'an operator'} ${fmtTime(s.automation.pausedAt)}`
          : s.dryRun.value
            ? 'dry-run: plans only, acts on nothing'
            : 'acting',
      ),
      card(
        'Storm breaker',
        breakerOpen ? 'OPEN (tripped)' : 'closed',
        `trips above ${s.breaker.limit} new faulty nodes in ${fmtDuration(s.breaker.windowMs)}`,
        s.breaker.resetAt === undefined
          ? 'never reset'
          : `reset by ${s.breaker.resetBy ?? '?'} ${fmtTime(s.breaker.resetAt)}`,
      ),
      card(
        'Cordon budget',
        `${s.cordonBudget.used} / ${s.cordonBudget.budget}`,
        `${Math.round(s.cordonBudget.fraction * 100)}% of ${s.cordonBudget.eligible} eligible nodes`,
      ),
      card(
        'Concurrency',
        `${s.steps.running.length} running`,
        `at most ${mc['reboot'] ?? '?'} reboots, ${mc['shutdown'] ?? '?'} shutdowns, ${mc['drain'] ?? '?'} drains, ${mc['total'] ?? '?'} in all`,
        `${q.limits.maxPerRack} per rack, ${q.limits.maxPerLeaf} per leaf; node cooldown ${fmtDuration(q.limits.nodeCooldownMs)}`,
      ),
      card(
        'Tickets',
        `${s.tickets.open} open`,
        `${s.nodes.total} nodes, ${s.nodes.notReady.length} NotReady`,
        s.controller.unknown ??
          `leader ${s.controller.holder ?? 'none'}${s.controller.expired === true ? ' (lease EXPIRED)' : ''}`,
      ),
    ),
    h('h2', {}, `Running now (${s.steps.running.length})`),
    tbl(
      ['Node', 'Step', 'Since'],
      s.steps.running.map((r) => [nodeLink(r.node), r.action, fmtTime(r.since)]),
      'Running steps',
      'running',
    ),
    h('h2', {}, `Waiting (${q.waiting.length})`),
    tbl(
      ['Node', 'Next step', 'Gate', 'Why', 'Bucket', 'Priority', 'Condition', 'Since'],
      q.waiting.map((w) => [
        nodeLink(w.node),
        w.action,
        w.gate,
        w.reason,
        w.bucket ?? '?',
        w.priority === undefined ? '?' : String(w.priority),
        w.condition ?? '-',
        fmtTime(w.since),
      ]),
      'Waiting steps',
      'waiting',
    ),
    h('h2', {}, 'Open tickets by condition'),
    tbl(
      ['Bucket', 'Priority', 'Condition', 'Count'],
      s.tickets.byCondition.map((c) => [
        c.bucket ?? '?',
        c.priority === undefined ? '?' : String(c.priority),
        c.condition,
        String(c.count),
      ]),
      'Open tickets by condition',
      'by-condition',
    ),
  );
  let last = 0;
  listeners.add(() => {
    if (Date.now() - last < 1000) return;
    last = Date.now();
    void route();
  });
}

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  meta = await api<Meta>('/api/meta');
  if (meta.banner !== undefined) {
    const b = $('banner');
    b.textContent = meta.banner;
    b.hidden = false;
  }
  $('logout').addEventListener('click', () => {
    void api('/api/logout', { method: 'POST', body: {} }).finally(() => {
      session = undefined;
      events?.close();
      $('who').textContent = '';
      $('logout').hidden = true;
      void route();
    });
  });
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (m !== null) {
    // A token in the URL (the demo's link): log in with it and take it out of the address bar.
    history.replaceState(null, '', `${location.pathname}#/fleet`);
    try {
      await login(decodeURIComponent(m[1] ?? ''));
    } catch (err) {
      toast((err as Error).message, true);
      await route();
    }
  } else {
    try {
      session = await api<SessionInfo>('/api/session');
      afterLogin();
    } catch {
      session = undefined;
    }
    await route();
  }
  window.addEventListener('hashchange', () => {
    void route();
  });
}

void start();
