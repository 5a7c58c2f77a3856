// The import page: a dry run shows what would happen and every refused row; the real
// import runs as a background job whose progress the page polls.
(function () {
  'use strict';
  const { api, el, csrf } = window.metacrm;
  const form = document.getElementById('import-form');
  if (!form) return;
  const entity = form.dataset.entity;
  const file = document.getElementById('import-file');
  const run = document.getElementById('import-run');
  const message = document.getElementById('import-message');
  const progress = document.getElementById('import-progress');
  const report = document.getElementById('import-report');
  // Texts in the page's language, from the server.
  const text = report.dataset;
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ''));

  function query(extra) {
    const params = new URLSearchParams(extra);
    const upsert = document.getElementById('import-upsert').value;
    if (upsert) params.set('upsert_on', upsert);
    params.set('duplicates', document.getElementById('import-duplicates').value);
    if (file.files[0]) params.set('name', file.files[0].name);
    return params.toString();
  }

  async function send(extra) {
    const response = await fetch('/api/import/' + encodeURIComponent(entity) + '?' + query(extra), {
      method: 'POST', credentials: 'same-origin',
      headers: { 'x-csrf-token': csrf, 'content-type': 'application/octet-stream' },
      body: file.files[0],
    });
    const json = await response.json().catch(() => null);
    if (!response.ok) throw new Error((json && json.error && json.error.message) || response.statusText);
    return json;
  }

  function show(result) {
    report.replaceChildren();
    report.append(el('p', { id: 'import-counts' }, fill(text.counts, {
      rows: result.rows_total ?? result.rows, created: result.created, updated: result.updated,
      unchanged: result.unchanged, skipped: result.skipped,
    })));
    if (result.columns) {
      report.append(el('p', { class: 'help' }, text.columns + ' ' + result.columns.map((c) => `${c.column} → ${c.field}`).join(', ')));
    }
    if (result.ignored_columns && result.ignored_columns.length) {
      report.append(el('p', { class: 'help' }, text.ignored + ' ' + result.ignored_columns.map((c) => `${c.column} (${c.reason})`).join(', ')));
    }
    if ((result.duplicates || []).length) {
      report.append(el('p', { class: 'help' }, fill(text.duplicates, { count: result.duplicates.length })));
    }
    const errors = result.errors || [];
    if (errors.length) {
      const table = el('table', { class: 'list', id: 'import-errors' },
        el('caption', {}, text.errors),
        el('thead', {}, el('tr', {}, el('th', {}, text.row), el('th', {}, text.column), el('th', {}, text.message))));
      const body = el('tbody', {});
      for (const e of errors.slice(0, 500)) {
        body.append(el('tr', {}, el('td', {}, String(e.row)), el('td', {}, e.column || ''), el('td', {}, e.message)));
      }
      table.append(body);
      report.append(table);
    }
  }

  document.getElementById('import-check').addEventListener('click', async () => {
    if (!file.files[0]) { message.textContent = text.choose; return; }
    message.textContent = '…';
    try {
      const result = await send({ dry_run: 'true' });
      show(result);
      message.textContent = '';
      run.disabled = false;
    } catch (e) {
      message.textContent = e.message;
      run.disabled = true;
    }
  });

  run.addEventListener('click', async () => {
    run.disabled = true;
    message.textContent = '…';
    try {
      const started = await send({ background: 'true' });
      progress.hidden = false;
      for (;;) {
        const job = await api('GET', '/import/jobs/' + started.job);
        progress.max = Math.max(1, job.rows_total);
        progress.value = job.rows_done;
        message.textContent = `${job.rows_done} / ${job.rows_total}`;
        if (job.status !== 'running') {
          show(job);
          message.textContent = job.status === 'done' ? '' : (job.message || job.status);
          message.append(el('a', { href: '/e/' + encodeURIComponent(entity), id: 'import-done' }, ' →'));
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 800));
      }
    } catch (e) {
      message.textContent = e.message;
    }
  });
})();
