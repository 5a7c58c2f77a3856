// Generated create/edit forms: live visible_if/required_if and formulas (asked of the
// server, which applies the same rules a save does), the duplicate warning while the
// title is typed, reference pickers that search, and saving through the API with
// per-field errors and the optimistic-lock conflict explained.
'use strict';

(function () {
  const { api, el, debounce, lang } = window.metacrm;
  const form = document.getElementById('record-form');
  if (!form) return;
  const entity = form.dataset.entity;
  const id = form.dataset.id;
  const texts = {
    zh: { save_anyway: '仍然保存', saving: '保存中…', failed: '保存失败', uploading: '正在上传' },
    en: { save_anyway: 'Save anyway', saving: 'Saving…', failed: 'Saving failed', uploading: 'Uploading' },
  }[lang];

  const fieldNodes = [...form.querySelectorAll('.form-field[data-field]')];

  /** The value of one field as the API takes it; undefined when it is not editable. */
  function valueOf(node) {
    const key = node.dataset.field;
    const type = node.dataset.type;
    if (type === 'multi_select') {
      const boxes = [...node.querySelectorAll(`input[type=checkbox][name="${CSS.escape(key)}"]`)];
      if (!boxes.length) return undefined;
      return boxes.filter((b) => b.checked).map((b) => b.value);
    }
    const input = node.querySelector(`[name="${CSS.escape(key)}"]`);
    if (!input) return undefined;
    if (type === 'boolean') return input.checked;
    if (type === 'attachment') return JSON.parse(input.value || '[]');
    const raw = input.value.trim();
    if (raw === '') return null;
    switch (type) {
      case 'integer': return /^-?\d+$/.test(raw) ? Number(raw) : raw;
      case 'user': case 'reference': return /^\d+$/.test(raw) ? Number(raw) : raw;
      // The input holds China local time; the API takes RFC 3339.
      case 'datetime': return raw.length === 16 ? `${raw}:00+08:00` : raw;
      default: return raw;
    }
  }

  function values() {
    const out = {};
    for (const node of fieldNodes) {
      const value = valueOf(node);
      if (value !== undefined) out[node.dataset.field] = value;
    }
    return out;
  }

  function clearErrors() {
    form.querySelectorAll('.field-error').forEach((p) => { p.hidden = true; p.textContent = ''; });
    form.querySelectorAll('.form-field.invalid').forEach((n) => n.classList.remove('invalid'));
    const summary = document.getElementById('form-errors');
    summary.hidden = true;
    summary.replaceChildren();
  }

  function showErrors(error) {
    const summary = document.getElementById('form-errors');
    summary.replaceChildren(el('p', {}, error.message));
    const list = el('ul');
    for (const item of Array.isArray(error.details) ? error.details : []) {
      const slot = form.querySelector(`.field-error[data-error-for="${CSS.escape(item.field)}"]`);
      const label = form.querySelector(`.form-field[data-field="${CSS.escape(item.field)}"] label`);
      if (slot) {
        slot.textContent = item.message;
        slot.hidden = false;
        slot.closest('.form-field').classList.add('invalid');
      }
      list.append(el('li', {}, `${label ? label.firstChild.textContent.trim() : item.field}: ${item.message}`));
    }
    if (list.children.length) summary.append(list);
    summary.hidden = false;
    const first = form.querySelector('.form-field.invalid input, .form-field.invalid select, .form-field.invalid textarea');
    (first || summary).focus && (first || summary).focus();
  }

  // Live rules: which fields show and which are required for what is typed so far.
  const refresh = debounce(async () => {
    let state;
    try { state = await api('POST', `/meta/entities/${entity}/form/state`, { values: values() }); } catch (_) { return; }
    const hidden = new Set(state.hidden || []);
    const required = new Set(state.required || []);
    for (const node of fieldNodes) {
      const key = node.dataset.field;
      node.hidden = hidden.has(key);
      const mark = node.querySelector(`[data-required-for="${CSS.escape(key)}"]`);
      if (mark) mark.hidden = !required.has(key);
    }
    for (const [key, value] of Object.entries(state.computed || {})) {
      const input = form.querySelector(`#f-${CSS.escape(key)}[disabled]`);
      if (input) input.value = value == null ? '' : value;
    }
  }, 200);

  // Duplicate warning (查重) while a new record's title is typed.
  const duplicates = document.getElementById('duplicates');
  const titleField = form.dataset.titleField;
  const checkDuplicates = debounce(async () => {
    const typed = values();
    if (!typed[titleField] || String(typed[titleField]).length < 2) { duplicates.hidden = true; return; }
    let found;
    try { found = await api('POST', `/data/${entity}/duplicates`, typed); } catch (_) { return; }
    const list = duplicates.querySelector('ul');
    list.replaceChildren(...(found.items || []).map((m) => el('li', { 'data-verdict': m.verdict },
      el('a', { href: `/e/${entity}/${m.id}`, target: '_blank', rel: 'noopener' }, m.title), ` (${m.verdict})`)));
    duplicates.hidden = !(found.items || []).length;
  }, 300);

  form.addEventListener('input', (e) => {
    refresh();
    if (!id && form.dataset.duplicateCheck === 'true' && e.target.name && (e.target.name === titleField || e.target.type === 'tel' || e.target.type === 'email')) checkDuplicates();
  });
  form.addEventListener('change', refresh);
  refresh();

  // Reference pickers: type to search the target entity, pick a hit.
  form.querySelectorAll('.reference-picker').forEach((picker) => window.metacrm.referencePicker(picker, refresh));

  // Attachments: each chosen file is uploaded at once (POST /api/files); the field
  // holds the uploaded items until the record is saved.
  form.querySelectorAll('.attachments').forEach((box) => {
    const hiddenInput = box.querySelector('input[type=hidden]');
    const list = box.querySelector('.attachment-list');
    const status = box.querySelector('.upload-status');
    const items = () => JSON.parse(hiddenInput.value || '[]');
    const render = () => {
      list.replaceChildren(...items().map((item, index) => {
        const remove = el('button', { type: 'button', class: 'link remove-attachment', 'aria-label': '×' }, '×');
        remove.addEventListener('click', () => {
          const kept = items();
          kept.splice(index, 1);
          hiddenInput.value = JSON.stringify(kept);
          render();
        });
        const size = item.size ? ` (${Math.ceil(item.size / 1024)} KB)` : '';
        return el('li', { 'data-file': item.file }, item.name, size, ' ', remove);
      }));
    };
    render();
    box.querySelector('.attachment-input').addEventListener('change', async (e) => {
      e.stopPropagation();
      for (const file of [...e.target.files]) {
        status.textContent = `${texts.uploading} ${file.name}`;
        status.classList.remove('error');
        const response = await fetch(`/api/files?name=${encodeURIComponent(file.name)}`, {
          method: 'POST', credentials: 'same-origin', body: file,
          headers: { 'content-type': 'application/octet-stream', 'x-csrf-token': window.metacrm.csrf },
        });
        const body = await response.json().catch(() => null);
        if (!response.ok) {
          status.textContent = `${file.name}: ${(body && body.error && body.error.message) || response.statusText}`;
          status.classList.add('error');
          continue;
        }
        hiddenInput.value = JSON.stringify(items().concat([body]));
        status.textContent = '';
        render();
      }
      e.target.value = '';
    });
  });

  async function save(force) {
    clearErrors();
    document.getElementById('conflict').hidden = true;
    const button = document.getElementById('save-record');
    button.disabled = true;
    try {
      const body = values();
      const saved = id
        ? await api('PATCH', `/data/${entity}/${id}`, body, { 'if-match': form.dataset.version })
        : await api('POST', `/data/${entity}${force ? '?force=true' : ''}`, body);
      location.href = `/e/${entity}/${saved.id}`;
    } catch (error) {
      if (error.code === 'version_conflict') {
        document.getElementById('conflict').hidden = false;
      } else if (error.code === 'duplicate') {
        const list = duplicates.querySelector('ul');
        list.replaceChildren(...((error.details && error.details.matches) || []).map((m) =>
          el('li', {}, el('a', { href: `/e/${entity}/${m.id}`, target: '_blank', rel: 'noopener' }, m.title))));
        const again = el('button', { type: 'button', id: 'save-anyway' }, texts.save_anyway);
        again.addEventListener('click', () => save(true));
        list.append(el('li', {}, again));
        duplicates.hidden = false;
        showErrors(error);
      } else {
        showErrors(error);
      }
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); save(false); });
})();
