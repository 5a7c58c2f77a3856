// metacrm pages: the API client every page script uses, and the small behaviours of
// the shared pages (global search, lists, record page, approvals, notifications).
// Every write goes through the JSON API with the session cookie and its CSRF token.
'use strict';

(function () {
  const lang = document.documentElement.lang === 'en' ? 'en' : 'zh';
  const texts = {
    zh: {
      failed: '操作失败', moved: '阶段已更新', submitted: '已提交审批', assigned: '已转移',
      claimed: '已领取', done: '已完成', nothing_selected: '请先选择记录', view_name: '视图名称',
      reject_needs_comment: '驳回需要填写意见', no_results: '没有找到结果',
    },
    en: {
      failed: 'Failed', moved: 'Stage changed', submitted: 'Submitted for approval', assigned: 'Reassigned',
      claimed: 'Claimed', done: 'Done', nothing_selected: 'Select some records first', view_name: 'View name',
      reject_needs_comment: 'A rejection needs a comment', no_results: 'Nothing found',
    },
  };
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';

  /** Calls the API: resolves to the parsed JSON (null for 204); rejects with
   *  {status, code, message, details} from the error shape. */
  async function api(method, path, body, headers) {
    const init = { method, credentials: 'same-origin', headers: Object.assign({ 'x-csrf-token': csrf }, headers || {}) };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch('/api' + path, init);
    if (response.status === 204) return null;
    let json = null;
    try { json = await response.json(); } catch (_) { json = null; }
    if (!response.ok) {
      const error = (json && json.error) || {};
      throw { status: response.status, code: error.code || 'error', message: error.message || response.statusText, details: error.details };
    }
    return json;
  }

  function escape(text) {
    return String(text == null ? '' : text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  /** A search snippet: escaped text with matches in <em>; any other tag is escaped. */
  function snippetHtml(snippet) {
    return String(snippet || '').replace(/<(?!\/?em>)/g, '&lt;');
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v; else node.setAttribute(k, v === true ? '' : v);
    }
    for (const child of children) if (child != null) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function say(id, text, isError) {
    const node = document.getElementById(id);
    if (!node) return;
    node.textContent = text;
    node.classList.toggle('error', !!isError);
  }

  const t = (key) => texts[lang][key] || key;

  /** A reference picker (`.reference-picker[data-target]` holding a search input, a
   *  hidden input with the id, and a dropdown): typing searches the target entity,
   *  picking a hit sets the id; `changed()` runs after every change of the id. */
  function referencePicker(picker, changed) {
    const search = picker.querySelector('.reference-search');
    const hiddenInput = picker.querySelector('input[type=hidden]');
    const dropdown = picker.querySelector('.dropdown');
    const run = debounce(async () => {
      const q = search.value.trim();
      if (!q) { hiddenInput.value = ''; dropdown.hidden = true; changed(); return; }
      let found;
      try { found = await api('GET', `/search?entity=${encodeURIComponent(picker.dataset.target)}&limit=8&q=${encodeURIComponent(q)}`); } catch (_) { return; }
      dropdown.replaceChildren(...(found.hits || []).map((hit) => {
        const option = el('button', { type: 'button', class: 'hit', 'data-id': hit.id }, hit.title);
        option.addEventListener('click', () => {
          hiddenInput.value = hit.id;
          search.value = hit.title;
          dropdown.hidden = true;
          changed();
        });
        return option;
      }));
      dropdown.hidden = !(found.hits || []).length;
    }, 150);
    search.addEventListener('input', (e) => { e.stopPropagation(); run(); });
    search.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !dropdown.hidden) e.preventDefault(); });
  }

  window.metacrm = { api, escape, el, debounce, lang, t, snippetHtml, csrf, referencePicker };
  document.querySelectorAll('#list-filters .reference-picker').forEach((picker) => referencePicker(picker, () => {}));

  // Global search: results as you type, grouped by entity.
  const searchBox = document.getElementById('global-search');
  const searchResults = document.getElementById('search-results');
  if (searchBox && searchResults) {
    let latest = 0;
    const run = debounce(async () => {
      const q = searchBox.value.trim();
      const ticket = ++latest;
      if (!q) { searchResults.hidden = true; return; }
      let found;
      try { found = await api('GET', '/search?limit=12&q=' + encodeURIComponent(q)); } catch (e) { return; }
      if (ticket !== latest) return;
      searchResults.replaceChildren();
      const groups = new Map();
      for (const hit of found.hits || []) {
        if (!groups.has(hit.entity)) groups.set(hit.entity, []);
        groups.get(hit.entity).push(hit);
      }
      const labels = new Map([...document.querySelectorAll('[data-nav-entity]')].map((a) => [a.dataset.navEntity, a.textContent]));
      for (const [entity, hits] of groups) {
        searchResults.append(el('div', { class: 'group-label' }, labels.get(entity) || entity));
        for (const hit of hits) {
          const snippet = el('span', { class: 'snippet' });
          snippet.innerHTML = snippetHtml(hit.snippet);
          searchResults.append(el('a', { class: 'hit', href: `/e/${encodeURIComponent(entity)}/${hit.id}`, 'data-entity': entity }, el('b', {}, hit.title), snippet));
        }
      }
      if (!groups.size) searchResults.append(el('div', { class: 'empty' }, t('no_results')));
      searchResults.hidden = false;
    }, 150);
    searchBox.addEventListener('input', run);
    searchBox.addEventListener('keydown', (e) => { if (e.key === 'Escape') searchResults.hidden = true; });
    document.addEventListener('click', (e) => { if (!searchResults.contains(e.target) && e.target !== searchBox) searchResults.hidden = true; });
  }

  // Lists: selection, bulk reassign, claim from the pool, saved views.
  const table = document.getElementById('records');
  const selectAll = document.getElementById('select-all');
  const selected = () => [...document.querySelectorAll('.row-select:checked')].map((c) => Number(c.value));
  const count = () => { const n = document.getElementById('selected-count'); if (n) n.textContent = selected().length; };
  if (selectAll) selectAll.addEventListener('change', () => { document.querySelectorAll('.row-select').forEach((c) => { c.checked = selectAll.checked; }); count(); });
  if (table) table.addEventListener('change', (e) => { if (e.target.classList.contains('row-select')) count(); });
  const assignButton = document.getElementById('assign-selected');
  if (assignButton) {
    assignButton.addEventListener('click', async () => {
      const ids = selected();
      if (!ids.length) { say('bulk-message', t('nothing_selected'), true); return; }
      const entity = document.getElementById('bulk-bar').dataset.entity;
      const owner = Number(document.getElementById('assign-owner').value);
      try {
        const outcome = await api('POST', `/data/${entity}/bulk/assign`, { ids, owner });
        say('bulk-message', `${t('assigned')}: ${outcome.assigned}`);
        setTimeout(() => location.reload(), 600);
      } catch (e) { say('bulk-message', e.message, true); }
    });
  }
  document.querySelectorAll('button.claim').forEach((button) => button.addEventListener('click', async () => {
    try {
      await api('POST', `/pool/${button.dataset.entity}/${button.dataset.id}/claim`);
      location.href = `/e/${button.dataset.entity}/${button.dataset.id}`;
    } catch (e) { say('list-message', e.message, true); }
  }));
  const views = document.getElementById('saved-views');
  if (views) {
    const entity = views.dataset.entity;
    const links = views.querySelector('.view-links');
    const load = async () => {
      let list;
      try { list = await api('GET', `/views/${entity}`); } catch (e) { return; }
      links.replaceChildren();
      for (const view of list.items || []) {
        const link = el('a', { href: `${views.dataset.base}?${view.query}`, 'data-view': view.id }, view.name);
        const remove = el('button', { type: 'button', class: 'link remove-view', 'aria-label': '×' }, '×');
        remove.addEventListener('click', async () => { await api('DELETE', `/views/${entity}/${view.id}`); load(); });
        links.append(el('span', { class: 'view' }, link, remove));
      }
    };
    load();
    document.getElementById('save-view').addEventListener('click', async () => {
      const name = prompt(t('view_name'));
      if (!name) return;
      try { await api('POST', `/views/${entity}`, { name, query: views.dataset.query }); load(); } catch (e) { say('list-message', e.message, true); }
    });
  }

  // Record page: stage moves, submitting for approval, printing.
  const record = document.getElementById('record');
  if (record) {
    const { entity, id } = record.dataset;
    document.querySelectorAll('button.move-stage').forEach((button) => button.addEventListener('click', async () => {
      try {
        await api('POST', `/data/${entity}/${id}/stage`, { to: button.dataset.stage });
        location.reload();
      } catch (e) {
        const missing = Array.isArray(e.details) ? ': ' + e.details.map((d) => d.field + ' ' + d.message).join('; ') : '';
        say('record-message', e.message + missing, true);
      }
    }));
    const submit = document.getElementById('submit-approval');
    if (submit) submit.addEventListener('click', async () => {
      try {
        await api('POST', `/data/${entity}/${id}/submit`, { flow: document.getElementById('flow-select').value });
        location.reload();
      } catch (e) { say('record-message', e.message, true); }
    });
    const print = document.getElementById('print-record');
    if (print) print.addEventListener('click', () => window.print());
  }

  // Approvals inbox: approve, reject (comment required), delegate.
  const inbox = document.getElementById('inbox');
  if (inbox) {
    inbox.addEventListener('click', async (e) => {
      const button = e.target.closest('button[data-approval]');
      if (!button) return;
      const row = button.closest('tr');
      const comment = row.querySelector('.comment').value.trim();
      const id = button.dataset.approval;
      let action; let body = {};
      if (button.classList.contains('approve')) { action = 'approve'; if (comment) body.comment = comment; }
      if (button.classList.contains('reject')) {
        if (!comment) { say('approval-message', t('reject_needs_comment'), true); row.querySelector('.comment').focus(); return; }
        action = 'reject'; body.comment = comment;
      }
      if (button.classList.contains('delegate')) { action = 'delegate'; body.to = Number(row.querySelector('.delegate-to').value); if (comment) body.comment = comment; }
      try {
        await api('POST', `/approvals/${id}/${action}`, body);
        row.remove();
        say('approval-message', t('done'));
      } catch (err) { say('approval-message', err.message, true); }
    });
  }

  // Automation (administrators): plugins are previewed (a dry run's plan), enabled
  // with their settings or disabled; deliveries sent again; scheduled rules run now.
  const plugins = document.getElementById('plugins');
  if (plugins) {
    plugins.addEventListener('click', async (e) => {
      const button = e.target.closest('button');
      const section = button && button.closest('[data-plugin]');
      if (!section) return;
      const settings = {};
      for (const input of section.querySelectorAll('[data-setting]')) {
        const type = input.dataset.type;
        if (type === 'boolean') settings[input.dataset.setting] = input.checked;
        else if (input.value.trim() === '') continue;
        else settings[input.dataset.setting] = type === 'number' ? Number(input.value) : input.value.trim();
      }
      const name = section.dataset.plugin;
      const enabled = !button.classList.contains('plugin-disable');
      const dryRun = button.classList.contains('plugin-preview');
      try {
        const applied = await api('POST', '/plugins', { name, enabled, settings, dry_run: dryRun });
        if (dryRun) {
          const plan = section.querySelector('.plugin-plan');
          plan.textContent = (applied.steps || []).map((s) => `${s.op} ${s.entity}${s.field ? '.' + s.field : ''}`).join('\n') || (applied.changed ? '✓' : '—');
          plan.hidden = false;
        } else {
          location.reload();
        }
      } catch (err) {
        const details = (err.details || []).map ? (err.details || []).map((d) => `${d.field || d.path}: ${d.message}`).join('; ') : '';
        say('automation-message', details ? `${err.message} — ${details}` : err.message, true);
      }
    });
  }
  const deliveries = document.getElementById('deliveries');
  if (deliveries) deliveries.addEventListener('click', async (e) => {
    const button = e.target.closest('button.redeliver');
    if (!button) return;
    try {
      await api('POST', `/webhooks/deliveries/${button.dataset.delivery}/redeliver`, {});
      say('automation-message', t('done'));
    } catch (err) { say('automation-message', err.message, true); }
  });
  const schedulesTable = document.getElementById('schedules');
  if (schedulesTable) schedulesTable.addEventListener('click', async (e) => {
    const button = e.target.closest('button.run-now');
    if (!button) return;
    try {
      const run = await api('POST', `/schedules/${button.dataset.schedule}/run`, {});
      say('automation-message', `${t('done')} · ${run.status} · ${run.notified}`);
    } catch (err) { say('automation-message', err.message, true); }
  });

  const markAll = document.getElementById('mark-all-read');
  if (markAll) markAll.addEventListener('click', async () => {
    await api('POST', '/notifications/read', {});
    location.reload();
  });
})();
