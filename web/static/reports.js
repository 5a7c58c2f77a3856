// Report builder, report viewer and dashboards: views over the reports API
// (`/api/reports…`, `/api/dashboards/{key}`), rendered with Chart.js (global `Chart`).
// Everything a person typed or the server returned is put in the page as text.
(() => {
  'use strict';

  const LANG = (document.documentElement.lang || 'zh').toLowerCase().startsWith('en') ? 'en' : 'zh';
  const LOCALE = LANG === 'en' ? 'en-US' : 'zh-CN';

  const I18N = {
    zh: {
      loading: '加载中…',
      running: '正在计算…',
      error: '出错了',
      view: '查看报表',
      edit: '编辑',
      export_csv: '导出 CSV',
      export_xlsx: '导出 Excel',
      total: '合计',
      empty: '（空）',
      yes: '是',
      no: '否',
      no_rows: '没有数据。',
      rows_count: '共 {0} 行',
      truncated: '结果已截断：只显示前 {0} 行。',
      period: '本期 {0} 至 {1}，对比上期 {2} 至 {3}',
      view_rows: '明细行',
      view_matrix: '交叉表',
      more_rows: '还有 {0} 行…',
      open_report: '打开报表',
      no_reports: '这个仪表盘没有报表。',
      panel_error: '此报表无法显示：{0}',
      entity: '数据对象',
      choose_entity: '— 请选择 —',
      entity_required: '请选择数据对象。',
      filters: '筛选条件',
      match: '满足',
      match_all: '全部条件',
      match_any: '任一条件',
      add_filter: '+ 添加条件',
      advanced_filter: '高级筛选（JSON）',
      advanced_filter_hint: '填写后将替代上面的条件。格式见元数据文档的“Filters”一节。',
      advanced_json_bad: '不是有效的 JSON：{0}',
      group_by: '分组',
      add_group: '+ 添加分组',
      measures: '统计指标',
      measures_hint: '不添加指标时统计记录数。',
      add_measure: '+ 添加指标',
      display: '报表类型与图表',
      kind: '报表类型',
      kind_table: '表格',
      kind_funnel: '漏斗',
      kind_forecast: '销售预测',
      kind_pivot: '交叉表',
      kind_comparison: '同比/环比',
      kind_hint_funnel: '漏斗按阶段统计（需要有阶段的对象）：到达数、转化率、平均停留天数。',
      kind_hint_forecast: '预测把每个“求和”指标按阶段赢率加权（需要有阶段的对象和一个求和指标）。',
      kind_hint_pivot: '交叉表至少需要两个分组：最后一个分组横向展开，其余纵向。',
      kind_hint_comparison: '第一个分组须是带时间粒度的日期字段，与上一期对比。',
      needs_pipeline: '（需要阶段）',
      compare: '对比周期',
      compare_year: '年（同比）',
      compare_quarter: '季度',
      compare_month: '月（环比）',
      chart: '图表',
      chart_table: '仅表格',
      chart_bar: '柱状图',
      chart_line: '折线图',
      chart_pie: '饼图',
      chart_funnel: '漏斗图',
      limit: '最多行数',
      sort: '排序',
      add_sort: '+ 添加排序',
      asc: '升序',
      desc: '降序',
      remove: '删除',
      field: '字段',
      operator: '条件',
      value: '值',
      bucket: '时间粒度',
      bucket_none: '按日期值',
      bucket_day: '按日',
      bucket_week: '按周',
      bucket_month: '按月',
      bucket_quarter: '按季度',
      bucket_year: '按年',
      fn_count: '计数',
      fn_count_distinct: '去重计数',
      fn_sum: '求和',
      fn_avg: '平均值',
      fn_min: '最小值',
      fn_max: '最大值',
      all_records: '（全部记录）',
      measure_label: '显示名称（可选）',
      op_eq: '等于',
      op_ne: '不等于',
      op_lt: '小于',
      op_lte: '小于等于',
      op_gt: '大于',
      op_gte: '大于等于',
      op_in: '属于',
      op_nin: '不属于',
      op_between: '介于',
      op_contains: '包含',
      op_starts_with: '开头是',
      op_is_null: '是否为空',
      is_empty: '为空',
      not_empty: '不为空',
      specific_date: '指定日期',
      rel_today: '今天',
      rel_yesterday: '昨天',
      rel_tomorrow: '明天',
      rel_start_of_week: '本周一',
      rel_start_of_month: '本月初',
      rel_start_of_quarter: '本季度初',
      rel_start_of_year: '今年年初',
      user_me: '我自己',
      user_id: '其他用户 ID',
      record_id: '记录 ID',
      comma_values: '多个值用逗号分隔',
      col_owner: '负责人',
      col_created_by: '创建人',
      col_created_at: '创建时间',
      col_updated_at: '更新时间',
      col_stage: '阶段',
      system_columns: '系统字段',
      via: '{0} › {1}',
      save_section: '保存',
      report_key: '报表编码',
      report_label: '报表名称',
      share_with: '共享给角色（不选则仅您自己和管理员可见）',
      save: '保存报表',
      saved: '已保存。',
      saving: '正在保存…',
      delete: '删除报表',
      confirm_delete: '确定删除这个报表吗？',
      deleted: '已删除。',
      key_invalid: '编码只能包含小写字母、数字和下划线，并以字母开头。',
      key_required: '请填写报表编码。',
      label_required: '请填写报表名称。',
      copy_note: '这是系统内置报表：保存时会另存为您自己的报表（请填写新的编码）。',
      copy_note_other: '这个报表属于其他人：保存时会另存为您自己的报表（请填写新的编码）。',
      copy_suffix: '（副本）',
      preview: '预览',
      preview_hint: '选择数据对象后，这里会显示报表结果。',
      fix_marked: '报表定义有问题，请修改标出的地方。',
      not_found: '找不到这个报表。',
      forbidden: '您无权查看。',
    },
    en: {
      loading: 'Loading…',
      running: 'Running…',
      error: 'Something went wrong',
      view: 'View report',
      edit: 'Edit',
      export_csv: 'Export CSV',
      export_xlsx: 'Export Excel',
      total: 'Total',
      empty: '(empty)',
      yes: 'Yes',
      no: 'No',
      no_rows: 'No data.',
      rows_count: '{0} rows',
      truncated: 'The result was cut: only the first {0} rows are shown.',
      period: 'This period {0} to {1}, compared with {2} to {3}',
      view_rows: 'Rows',
      view_matrix: 'Matrix',
      more_rows: '{0} more rows…',
      open_report: 'Open report',
      no_reports: 'This dashboard has no reports.',
      panel_error: 'This report cannot be shown: {0}',
      entity: 'Records of',
      choose_entity: '— choose —',
      entity_required: 'Choose the records to report on.',
      filters: 'Filters',
      match: 'Match',
      match_all: 'all conditions',
      match_any: 'any condition',
      add_filter: '+ Add condition',
      advanced_filter: 'Advanced filter (JSON)',
      advanced_filter_hint: 'When filled in, replaces the conditions above. See “Filters” in the metadata reference.',
      advanced_json_bad: 'Not valid JSON: {0}',
      group_by: 'Group by',
      add_group: '+ Add grouping',
      measures: 'Measures',
      measures_hint: 'Without measures the report counts records.',
      add_measure: '+ Add measure',
      display: 'Kind and chart',
      kind: 'Kind',
      kind_table: 'Table',
      kind_funnel: 'Funnel',
      kind_forecast: 'Forecast',
      kind_pivot: 'Pivot',
      kind_comparison: 'Period comparison',
      kind_hint_funnel: 'A funnel counts by stage (needs an entity with a pipeline): reached, conversion, average days in stage.',
      kind_hint_forecast: 'A forecast weighs every sum by the stage probability (needs a pipeline and a sum measure).',
      kind_hint_pivot: 'A pivot needs at least two groupings: the last goes across, the others down.',
      kind_hint_comparison: 'The first grouping must be a date field with a bucket; each bucket is compared with the period before.',
      needs_pipeline: '(needs a pipeline)',
      compare: 'Compare',
      compare_year: 'Year over year',
      compare_quarter: 'Quarter over quarter',
      compare_month: 'Month over month',
      chart: 'Chart',
      chart_table: 'Table only',
      chart_bar: 'Bar',
      chart_line: 'Line',
      chart_pie: 'Pie',
      chart_funnel: 'Funnel',
      limit: 'Row limit',
      sort: 'Sort',
      add_sort: '+ Add sort',
      asc: 'Ascending',
      desc: 'Descending',
      remove: 'Remove',
      field: 'Field',
      operator: 'Operator',
      value: 'Value',
      bucket: 'Date bucket',
      bucket_none: 'Exact date',
      bucket_day: 'Day',
      bucket_week: 'Week',
      bucket_month: 'Month',
      bucket_quarter: 'Quarter',
      bucket_year: 'Year',
      fn_count: 'Count',
      fn_count_distinct: 'Count distinct',
      fn_sum: 'Sum',
      fn_avg: 'Average',
      fn_min: 'Minimum',
      fn_max: 'Maximum',
      all_records: '(all records)',
      measure_label: 'Label (optional)',
      op_eq: 'equals',
      op_ne: 'does not equal',
      op_lt: 'less than',
      op_lte: 'at most',
      op_gt: 'greater than',
      op_gte: 'at least',
      op_in: 'is one of',
      op_nin: 'is none of',
      op_between: 'between',
      op_contains: 'contains',
      op_starts_with: 'starts with',
      op_is_null: 'is empty?',
      is_empty: 'is empty',
      not_empty: 'is not empty',
      specific_date: 'A date',
      rel_today: 'Today',
      rel_yesterday: 'Yesterday',
      rel_tomorrow: 'Tomorrow',
      rel_start_of_week: 'Start of this week',
      rel_start_of_month: 'Start of this month',
      rel_start_of_quarter: 'Start of this quarter',
      rel_start_of_year: 'Start of this year',
      user_me: 'Me',
      user_id: 'Another user id',
      record_id: 'Record id',
      comma_values: 'Separate values with commas',
      col_owner: 'Owner',
      col_created_by: 'Created by',
      col_created_at: 'Created',
      col_updated_at: 'Updated',
      col_stage: 'Stage',
      system_columns: 'System fields',
      via: '{0} › {1}',
      save_section: 'Save',
      report_key: 'Key',
      report_label: 'Name',
      share_with: 'Share with roles (none: only you and administrators)',
      save: 'Save report',
      saved: 'Saved.',
      saving: 'Saving…',
      delete: 'Delete report',
      confirm_delete: 'Delete this report?',
      deleted: 'Deleted.',
      key_invalid: 'Lowercase letters, digits and _, starting with a letter.',
      key_required: 'Give the report a key.',
      label_required: 'Give the report a name.',
      copy_note: 'This is a built-in report: saving keeps a copy of your own (give it a new key).',
      copy_note_other: 'This report belongs to someone else: saving keeps a copy of your own (give it a new key).',
      copy_suffix: ' (copy)',
      preview: 'Preview',
      preview_hint: 'Choose the records to report on; the result shows here.',
      fix_marked: 'The definition has problems: see the marked controls.',
      not_found: 'This report does not exist.',
      forbidden: 'You do not have access to this.',
    },
  };

  function t(key, ...args) {
    let text = I18N[LANG][key] ?? I18N.en[key] ?? key;
    args.forEach((arg, i) => { text = text.split(`{${i}}`).join(String(arg)); });
    return text;
  }

  // ---- small helpers -------------------------------------------------------

  function api(method, path, body) {
    if (!window.metacrm || typeof window.metacrm.api !== 'function') {
      return Promise.reject({ status: 0, code: 'no_api', message: 'metacrm.api is not loaded' });
    }
    return window.metacrm.api(method, path, body);
  }

  const enc = encodeURIComponent;

  /** `h('div', {class: 'x', text: 'y', dataset: {a: 1}}, child…)`: an element, text as text. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'value') el.value = value;
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function option(value, label, selected) {
    const el = h('option', { value }, label);
    if (selected) el.selected = true;
    return el;
  }

  function errorMessage(err) {
    if (!err) return t('error');
    if (typeof err === 'string') return err;
    return err.message || (err.status ? `${t('error')} (${err.status})` : t('error'));
  }

  function applyI18n(root) {
    root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  }

  function debounce(fn, ms) {
    let timer = null;
    const run = (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => { timer = null; fn(...args); }, ms);
    };
    run.cancel = () => clearTimeout(timer);
    return run;
  }

  // ---- cells ---------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 6 });
  const percentFormat = new Intl.NumberFormat(LOCALE, { style: 'percent', maximumFractionDigits: 1 });
  const NUMERIC = new Set(['integer', 'decimal', 'number', 'ratio']);

  function isNumericColumn(col) {
    return !col.dimension && NUMERIC.has(col.type);
  }

  function formatDatetime(value) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(LOCALE, { hour12: false });
  }

  /** How a cell reads: option and stage labels, user names, record titles, numbers. */
  function displayCell(col, value) {
    if (value === null || value === undefined) return col.dimension ? t('empty') : '';
    if (typeof value === 'boolean') return value ? t('yes') : t('no');
    if (col.labels && Object.prototype.hasOwnProperty.call(col.labels, String(value))) {
      return String(col.labels[String(value)]);
    }
    if (col.dimension) {
      if ((col.type === 'user' || col.type === 'reference') && typeof value === 'number') return `#${value}`;
      if (col.type === 'datetime' && typeof value === 'string') return formatDatetime(value);
      return String(value);
    }
    if (typeof value === 'number') {
      return col.type === 'ratio' ? percentFormat.format(value) : numberFormat.format(value);
    }
    if (col.type === 'datetime' && typeof value === 'string') return formatDatetime(value);
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  // ---- tables --------------------------------------------------------------

  /** The flat result: one `tr` per row in `tbody`, the totals row in `tfoot`. */
  function resultTable(output, maxRows) {
    const columns = output.columns || [];
    const rows = output.rows || [];
    const table = h('table', { class: 'rp-result' });
    const head = h('tr');
    columns.forEach((col) => {
      head.append(h('th', { scope: 'col', class: isNumericColumn(col) ? 'num' : null }, col.label || col.key));
    });
    table.append(h('thead', null, head));
    const body = h('tbody');
    const shown = maxRows ? rows.slice(0, maxRows) : rows;
    shown.forEach((row) => {
      const tr = h('tr');
      columns.forEach((col, i) => {
        tr.append(h('td', { class: isNumericColumn(col) ? 'num' : null }, displayCell(col, row[i])));
      });
      body.append(tr);
    });
    if (!rows.length) {
      body.append(h('tr', { class: 'rp-empty' }, h('td', { colspan: Math.max(columns.length, 1) }, t('no_rows'))));
    }
    table.append(body);
    if (Array.isArray(output.totals) && rows.length) {
      const tr = h('tr');
      let labelled = false;
      columns.forEach((col, i) => {
        const value = output.totals[i];
        if (col.dimension && (value === null || value === undefined)) {
          tr.append(h(labelled ? 'td' : 'th', { scope: labelled ? null : 'row' }, labelled ? '' : t('total')));
          labelled = true;
        } else {
          tr.append(h('td', { class: isNumericColumn(col) ? 'num' : null }, displayCell(col, value)));
        }
      });
      table.append(h('tfoot', null, tr));
    }
    return table;
  }

  /** A pivot's matrix: the last dimension across, the others down, with totals. */
  function pivotTable(output) {
    const pivot = output.pivot;
    const columns = output.columns || [];
    const dims = columns.filter((c) => c.dimension);
    const measure = columns.find((c) => c.key === pivot.measure) || columns[dims.length] || { type: 'number' };
    const across = dims[dims.length - 1];
    const down = dims.slice(0, -1);
    const table = h('table', { class: 'rp-result rp-pivot' });
    const head = h('tr');
    down.forEach((d) => head.append(h('th', { scope: 'col' }, d.label || d.key)));
    (pivot.column_keys || []).forEach((key) => {
      head.append(h('th', { scope: 'col', class: 'num' }, displayCell(across, key)));
    });
    head.append(h('th', { scope: 'col', class: 'num' }, t('total')));
    table.append(h('thead', null, h('tr', null, h('th', {
      colspan: down.length + (pivot.column_keys || []).length + 1,
      class: 'rp-pivot-caption',
    }, `${measure.label || measure.key} · ${across ? across.label || across.key : ''}`)), head));
    const body = h('tbody');
    (pivot.row_keys || []).forEach((keys, r) => {
      const tr = h('tr');
      down.forEach((d, i) => tr.append(h('th', { scope: 'row' }, displayCell(d, keys[i]))));
      (pivot.cells[r] || []).forEach((value) => tr.append(h('td', { class: 'num' }, displayCell(measure, value))));
      tr.append(h('td', { class: 'num rp-subtotal' }, displayCell(measure, (pivot.row_totals || [])[r])));
      body.append(tr);
    });
    table.append(body);
    const foot = h('tr');
    foot.append(h('th', { scope: 'row', colspan: Math.max(down.length, 1) }, t('total')));
    (pivot.column_totals || []).forEach((value) => foot.append(h('td', { class: 'num' }, displayCell(measure, value))));
    foot.append(h('td', { class: 'num rp-subtotal' }, displayCell(measure, pivot.total)));
    table.append(h('tfoot', null, foot));
    return table;
  }

  // ---- charts --------------------------------------------------------------

  const PALETTE = ['#2f6fdb', '#e8833a', '#3aa57a', '#d64545', '#8e5bd6', '#c9a227',
    '#2bb3c0', '#e05fa8', '#6b7a8f', '#7fb03f', '#a0522d', '#4b5bd6'];

  function color(i, alpha) {
    const hex = PALETTE[i % PALETTE.length];
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  /** The series worth drawing: ratios (conversion, change) only when nothing else is there. */
  function chartSeries(output) {
    const series = (output.series || []).filter((s) => Array.isArray(s.data));
    const types = new Map((output.columns || []).map((c) => [c.key, c.type]));
    const plain = series.filter((s) => s.measure !== undefined || types.get(s.key) !== 'ratio');
    return plain.length ? plain : series;
  }

  /** Draws the output's chart into `box` (replacing any chart there); false when none. */
  function drawChart(box, output, type, options) {
    const small = options && options.small;
    if (box._chart) { box._chart.destroy(); box._chart = null; }
    box.replaceChildren();
    const categories = output.categories || [];
    const series = chartSeries(output);
    if (!type || type === 'table' || typeof window.Chart !== 'function' || !series.length || !categories.length) {
      box.hidden = true;
      return false;
    }
    box.hidden = false;
    const canvas = h('canvas', { role: 'img', 'aria-label': output.label || '' });
    box.append(h('div', { class: small ? 'rp-canvas rp-canvas-small' : 'rp-canvas' }, canvas));
    const number = (v) => (typeof v === 'number' ? numberFormat.format(v) : String(v ?? ''));
    const config = {
      data: { labels: categories.map(String), datasets: [] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: small ? 0 : 300 },
        plugins: { legend: { display: true, position: 'bottom', labels: { boxWidth: 12 } } },
      },
    };
    if (type === 'pie') {
      const first = series[0];
      config.type = 'pie';
      config.data.datasets = [{
        label: first.name,
        data: first.data.map((v) => (typeof v === 'number' ? v : 0)),
        backgroundColor: categories.map((_, i) => color(i)),
      }];
    } else if (type === 'funnel') {
      const reached = series.find((s) => s.key === 'reached');
      const first = reached || series[0];
      const values = first.data.map((v) => (typeof v === 'number' ? v : 0));
      config.type = 'bar';
      config.data.datasets = [{
        label: first.name,
        data: values.map((v) => [-v / 2, v / 2]),
        backgroundColor: categories.map((_, i) => color(i, 0.85)),
        borderSkipped: false,
        barPercentage: 0.95,
        categoryPercentage: 1,
      }];
      config.options.indexAxis = 'y';
      config.options.scales = { x: { display: false }, y: { grid: { display: false } } };
      config.options.plugins.legend.display = false;
      config.options.plugins.tooltip = {
        callbacks: { label: (ctx) => `${first.name}: ${number(values[ctx.dataIndex])}` },
      };
      // Each stage's number in the middle of its bar.
      config.plugins = [{
        id: 'funnelValues',
        afterDatasetsDraw(chart) {
          const { ctx } = chart;
          const meta = chart.getDatasetMeta(0);
          ctx.save();
          ctx.font = `${small ? 11 : 12}px sans-serif`;
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          meta.data.forEach((bar, i) => {
            const v = values[i];
            if (!v) return;
            const { x, base, y } = bar.getProps(['x', 'base', 'y'], true);
            ctx.fillStyle = '#fff';
            ctx.fillText(number(v), (x + base) / 2, y);
          });
          ctx.restore();
        },
      }];
    } else {
      config.type = type === 'line' ? 'line' : 'bar';
      // Series over a second dimension split one measure: stack them. Measures of very
      // different size (amounts beside counts) get a second axis, so both can be read.
      const split = series.some((s) => s.measure !== undefined);
      const peak = (s) => s.data.reduce((m, v) => (typeof v === 'number' ? Math.max(m, Math.abs(v)) : m), 0);
      const top = Math.max(...series.map(peak));
      const minor = (s) => !split && series.length > 1 && peak(s) > 0 && peak(s) * 20 < top;
      const twoAxes = series.some(minor);
      config.data.datasets = series.map((s, i) => ({
        label: s.name,
        data: s.data,
        backgroundColor: color(i, type === 'line' ? 0.2 : 0.8),
        borderColor: color(i),
        borderWidth: type === 'line' ? 2 : 1,
        tension: 0.2,
        spanGaps: true,
        fill: false,
        yAxisID: minor(s) ? 'y1' : 'y',
      }));
      const stacked = split && type !== 'line';
      config.options.scales = {
        x: { stacked },
        y: { beginAtZero: true, stacked, ticks: { callback: (v) => number(v) } },
      };
      if (twoAxes) {
        config.options.scales.y1 = {
          beginAtZero: true,
          position: 'right',
          grid: { drawOnChartArea: false },
          ticks: { callback: (v) => number(v) },
        };
      }
      config.options.plugins.legend.display = series.length > 1;
      config.options.plugins.tooltip = {
        callbacks: { label: (ctx) => `${ctx.dataset.label}: ${number(ctx.raw)}` },
      };
    }
    try {
      box._chart = new window.Chart(canvas, config);
    } catch (err) {
      console.error('chart', err);
      box.hidden = true;
      return false;
    }
    return true;
  }

  // ---- a rendered result (viewer and builder preview) ----------------------

  /**
   * Fills a result area (`.rp-status`, `.rp-period`, `.rp-chart`, `.rp-view-switch`,
   * `.rp-table` inside `area`) with an output. A pivot's matrix is a second view of
   * the rows, switched with buttons; one table is on the page at a time.
   */
  function renderResult(area, output, chartType) {
    const status = area.querySelector('.rp-status');
    const period = area.querySelector('.rp-period');
    const chartBox = area.querySelector('.rp-chart');
    const switcher = area.querySelector('.rp-view-switch');
    const tableBox = area.querySelector('.rp-table');
    const rows = output.rows || [];
    if (status) {
      status.classList.toggle('rp-warning', !!output.truncated);
      status.textContent = output.truncated ? t('truncated', rows.length) : t('rows_count', rows.length);
    }
    if (period) {
      const p = output.period;
      if (p && Array.isArray(p.current) && Array.isArray(p.previous)) {
        period.textContent = t('period', p.current[0], p.current[1], p.previous[0], p.previous[1]);
        period.hidden = false;
      } else {
        period.hidden = true;
        period.textContent = '';
      }
    }
    drawChart(chartBox, output, chartType || output.chart);
    const showRows = () => tableBox.replaceChildren(h('div', { class: 'rp-scroll' }, resultTable(output)));
    const showMatrix = () => tableBox.replaceChildren(h('div', { class: 'rp-scroll' }, pivotTable(output)));
    if (output.pivot && Array.isArray(output.pivot.row_keys)) {
      const current = area.dataset.tableView === 'matrix' ? 'matrix' : 'rows';
      const rowsButton = h('button', { type: 'button', class: 'rp-button rp-toggle view-rows' }, t('view_rows'));
      const matrixButton = h('button', { type: 'button', class: 'rp-button rp-toggle view-matrix' }, t('view_matrix'));
      const select = (view) => {
        area.dataset.tableView = view;
        rowsButton.setAttribute('aria-pressed', String(view === 'rows'));
        matrixButton.setAttribute('aria-pressed', String(view === 'matrix'));
        if (view === 'matrix') showMatrix(); else showRows();
      };
      rowsButton.addEventListener('click', () => select('rows'));
      matrixButton.addEventListener('click', () => select('matrix'));
      switcher.replaceChildren(rowsButton, matrixButton);
      switcher.hidden = false;
      select(current);
    } else {
      switcher.replaceChildren();
      switcher.hidden = true;
      showRows();
    }
  }

  function clearResult(area) {
    const chartBox = area.querySelector('.rp-chart');
    if (chartBox) drawChart(chartBox, {}, 'table');
    area.querySelectorAll('.rp-table, .rp-view-switch').forEach((el) => el.replaceChildren());
    const period = area.querySelector('.rp-period');
    if (period) period.hidden = true;
  }

  // ---- viewer --------------------------------------------------------------

  async function initViewer(root) {
    const key = root.dataset.report;
    const status = root.querySelector('.rp-status');
    const title = root.querySelector('.rp-title');
    applyI18n(root);
    const csv = root.querySelector('a.export-csv');
    const xlsx = root.querySelector('a.export-xlsx');
    if (csv) { csv.textContent = t('export_csv'); csv.href = `/api/reports/${enc(key)}/run?format=csv`; }
    if (xlsx) { xlsx.textContent = t('export_xlsx'); xlsx.href = `/api/reports/${enc(key)}/run?format=xlsx`; }
    const edit = root.querySelector('a.edit-report');
    if (edit) { edit.textContent = t('edit'); edit.href = `/reports/${enc(key)}/edit`; }
    status.textContent = t('running');
    root.classList.add('rp-busy');
    try {
      const output = await api('GET', `/reports/${enc(key)}/run?format=json`);
      const label = output.label || key;
      title.textContent = label;
      renderResult(root, output, output.chart);
    } catch (err) {
      status.classList.add('rp-error');
      status.textContent = err && err.status === 404 ? t('not_found') : errorMessage(err);
    } finally {
      root.classList.remove('rp-busy');
    }
  }

  // ---- dashboard -----------------------------------------------------------

  const DASHBOARD_TABLE_ROWS = 8;

  function dashboardCard(panel) {
    const key = panel.key;
    const result = panel.result;
    const label = (result && result.label) || key;
    const link = h('a', { href: `/reports/${enc(key)}` }, label);
    const card = h('section', { class: 'dashboard-card', dataset: { report: key } },
      h('h2', { class: 'db-card-title' }, link));
    const body = h('div', { class: 'db-card-body' });
    card.append(body);
    if (!result) {
      const message = panel.error ? panel.error.message || panel.error.code : t('error');
      card.classList.add('db-card-error');
      body.append(h('p', { class: 'rp-error' }, t('panel_error', message)));
      return { card };
    }
    const chartType = result.chart;
    const chartBox = h('div', { class: 'rp-chart' });
    body.append(chartBox);
    const draw = () => drawChart(chartBox, result, chartType, { small: true });
    if (!chartType || chartType === 'table') {
      chartBox.hidden = true;
      body.append(h('div', { class: 'rp-scroll' }, resultTable(result, DASHBOARD_TABLE_ROWS)));
      const extra = (result.rows || []).length - DASHBOARD_TABLE_ROWS;
      if (extra > 0) body.append(h('p', { class: 'db-more' }, h('a', { href: `/reports/${enc(key)}` }, t('more_rows', extra))));
      return { card };
    }
    return { card, draw };
  }

  async function initDashboard(root) {
    const key = root.dataset.dashboard;
    const status = root.querySelector('.rp-status');
    const title = root.querySelector('.rp-title');
    const grid = root.querySelector('.db-grid');
    status.textContent = t('loading');
    root.classList.add('rp-busy');
    try {
      const dashboard = await api('GET', `/dashboards/${enc(key)}`);
      const label = dashboard.label || key;
      title.textContent = label;
      const panels = dashboard.reports || [];
      status.textContent = panels.length ? '' : t('no_reports');
      const cards = panels.map(dashboardCard);
      grid.replaceChildren(...cards.map((c) => c.card));
      // Charts measure their box: draw once the cards are in the page.
      cards.forEach((c) => { if (c.draw) c.draw(); });
    } catch (err) {
      status.classList.add('rp-error');
      status.textContent = err && err.status === 404 ? t('not_found') : errorMessage(err);
    } finally {
      root.classList.remove('rp-busy');
    }
  }

  // ---- builder: the entity's columns ----------------------------------------

  const UNGROUPABLE = new Set(['multi_select', 'attachment']);
  const DATE_TYPES = new Set(['date', 'datetime']);
  const NUMBER_TYPES = new Set(['integer', 'decimal']);
  const TEXT_TYPES = new Set(['text', 'long_text', 'email', 'phone', 'url', 'auto_number']);
  const RELATIVE = ['today', 'yesterday', 'tomorrow', 'start_of_week', 'start_of_month', 'start_of_quarter', 'start_of_year'];
  const BUCKETS = ['day', 'week', 'month', 'quarter', 'year'];
  const MEASURE_FNS = ['count', 'count_distinct', 'sum', 'avg', 'min', 'max'];

  const forms = new Map();
  function loadForm(entity) {
    if (!forms.has(entity)) {
      const promise = api('GET', `/meta/entities/${enc(entity)}/form`);
      promise.catch(() => forms.delete(entity));
      forms.set(entity, promise);
    }
    return forms.get(entity);
  }

  function formFields(form) {
    const seen = new Set();
    const fields = [];
    for (const section of form.sections || []) {
      for (const field of section.fields || []) {
        if (seen.has(field.key)) continue;
        seen.add(field.key);
        fields.push({
          key: field.key,
          label: field.label || field.key,
          type: field.type,
          options: (field.options || []).map((o) => ({ value: o.value, label: o.label || o.value })),
          target: field.target || null,
        });
      }
    }
    return fields;
  }

  function systemColumns(form) {
    const columns = [
      { key: 'owner', label: t('col_owner'), type: 'user', system: true },
      { key: 'created_by', label: t('col_created_by'), type: 'user', system: true },
      { key: 'created_at', label: t('col_created_at'), type: 'datetime', system: true },
      { key: 'updated_at', label: t('col_updated_at'), type: 'datetime', system: true },
    ];
    if (Array.isArray(form.stages) && form.stages.length) {
      columns.unshift({
        key: 'stage',
        label: t('col_stage'),
        type: 'select',
        system: true,
        options: form.stages.map((s) => ({ value: s.key, label: s.label || s.key })),
      });
    }
    return columns;
  }

  /**
   * What the builder may offer for an entity: its own fields, the system columns, and
   * one hop through each reference field to the target's columns (`customer.region`);
   * a target the user may not read is left out.
   */
  async function loadCatalog(entity) {
    const form = await loadForm(entity);
    const own = formFields(form);
    const system = systemColumns(form);
    const references = own.filter((f) => f.type === 'reference' && f.target);
    const targets = await Promise.allSettled(references.map((f) => loadForm(f.target)));
    const refs = [];
    references.forEach((ref, i) => {
      if (targets[i].status !== 'fulfilled') return;
      const targetForm = targets[i].value;
      const columns = [...formFields(targetForm), ...systemColumns(targetForm)]
        .filter((c) => !UNGROUPABLE.has(c.type))
        .map((c) => ({ ...c, key: `${ref.key}.${c.key}`, label: t('via', ref.label, c.label), via: ref.key }));
      refs.push({ ref, columns });
    });
    const all = new Map();
    [...own, ...system].forEach((c) => all.set(c.key, c));
    refs.forEach((r) => r.columns.forEach((c) => all.set(c.key, c)));
    return {
      entity,
      label: form.label || entity,
      own,
      system,
      refs,
      all,
      hasPipeline: Array.isArray(form.stages) && form.stages.length > 0,
    };
  }

  // ---- builder: filters ------------------------------------------------------

  function operatorsFor(type) {
    if (type === 'multi_select') return ['contains', 'is_null'];
    if (type === 'attachment') return ['is_null'];
    if (type === 'boolean') return ['eq', 'ne', 'is_null'];
    if (type === 'select') return ['eq', 'ne', 'in', 'nin', 'is_null'];
    if (NUMBER_TYPES.has(type)) return ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'between', 'is_null'];
    if (type === 'date') return ['eq', 'ne', 'gte', 'lte', 'gt', 'lt', 'between', 'is_null'];
    if (type === 'datetime') return ['gte', 'lt', 'lte', 'gt', 'between', 'is_null'];
    if (type === 'user') return ['eq', 'ne', 'is_null'];
    if (type === 'reference') return ['eq', 'ne', 'in', 'nin', 'is_null'];
    return ['contains', 'eq', 'ne', 'starts_with', 'in', 'nin', 'is_null'];
  }

  // ---- builder ----------------------------------------------------------------

  function initBuilder(root) {
    applyI18n(root);
    const form = root.querySelector('.rb-form');
    const entitySelect = root.querySelector('select[name="entity"]');
    const filterMode = root.querySelector('select[name="filter-mode"]');
    const filterJson = root.querySelector('textarea[name="filter-json"]');
    const filtersBox = root.querySelector('#filters');
    const groupsBox = root.querySelector('#groups');
    const measuresBox = root.querySelector('#measures');
    const sortsBox = root.querySelector('#sorts');
    const addFilter = root.querySelector('#add-filter');
    const addGroup = root.querySelector('#add-group');
    const addMeasure = root.querySelector('#add-measure');
    const addSort = root.querySelector('#add-sort');
    const kindSelect = root.querySelector('select[name="kind"]');
    const compareBox = root.querySelector('.rb-compare');
    const compareSelect = root.querySelector('select[name="compare"]');
    const chartSelect = root.querySelector('select[name="chart"]');
    const limitInput = root.querySelector('input[name="limit"]');
    const kindHint = root.querySelector('.rb-kind-hint');
    const keyInput = root.querySelector('input[name="report-key"]');
    const labelInput = root.querySelector('input[name="report-label"]');
    const rolesBox = root.querySelector('.rb-roles');
    const roleList = root.querySelector('.rb-role-list');
    const saveButton = root.querySelector('#save-report');
    const deleteButton = root.querySelector('#delete-report');
    const saveStatus = root.querySelector('.rb-save-status');
    const saveNote = root.querySelector('.rb-save-note');
    const links = root.querySelector('.rb-links');
    const loadStatus = root.querySelector('.rb-load-status');
    const preview = root.querySelector('#preview');
    const previewStatus = preview.querySelector('.rb-preview-status');
    const previewErrors = preview.querySelector('.rb-preview-errors');
    const titleEl = root.querySelector('.rp-title');

    /** `saved`: the caller's saved report (PUT); `copy`: a package report (POST under a new key). */
    const state = {
      catalog: null,
      mode: 'new',
      savedKey: root.dataset.report || '',
      loading: false,
      runSeq: 0,
      entitySeq: 0,
    };

    chartSelect.value = 'bar';
    previewStatus.textContent = t('preview_hint');

    // The users, for filters on user fields (a list every signed-in user may read).
    const usersLoaded = api('GET', '/users')
      .then((list) => { state.users = ((list && list.items) || []).filter((u) => u.active !== false); })
      .catch(() => { state.users = []; });

    // -- field pickers --

    function fieldSelect(name, accept, current, extra) {
      const select = h('select', { name, 'aria-label': t('field') });
      fillFieldSelect(select, accept, current, extra);
      return select;
    }

    /** Options for the columns `accept` lets through, grouped; keeps `current` even if unknown. */
    function fillFieldSelect(select, accept, current, extra) {
      const cat = state.catalog;
      select.replaceChildren();
      if (extra) extra.forEach(([value, label]) => select.append(option(value, label)));
      if (cat) {
        const own = h('optgroup', { label: cat.label });
        cat.own.filter(accept).forEach((c) => own.append(option(c.key, c.label)));
        if (own.children.length) select.append(own);
        const system = h('optgroup', { label: t('system_columns') });
        cat.system.filter(accept).forEach((c) => system.append(option(c.key, c.label)));
        if (system.children.length) select.append(system);
        if (!select.dataset.noRefs) {
          cat.refs.forEach(({ ref, columns }) => {
            const group = h('optgroup', { label: ref.label });
            columns.filter(accept).forEach((c) => group.append(option(c.key, c.label)));
            if (group.children.length) select.append(group);
          });
        }
      }
      if (current !== undefined && current !== null) {
        const exists = Array.from(select.options).some((o) => o.value === current);
        if (!exists) select.append(option(current, current));
        select.value = current;
      }
    }

    function column(key) {
      return (state.catalog && state.catalog.all.get(key)) || null;
    }

    // -- rows --

    function removeButton(row) {
      const button = h('button', { type: 'button', class: 'rb-remove remove-row', title: t('remove'), 'aria-label': t('remove') }, '×');
      button.addEventListener('click', () => {
        row.remove();
        structureChanged();
      });
      return button;
    }

    // Filters

    function filterRow(initial) {
      const row = h('div', { class: 'rb-row filter-row' });
      const fieldSel = h('select', { name: 'filter-field', 'aria-label': t('field'), dataset: { noRefs: '1' } });
      fillFieldSelect(fieldSel, () => true, initial ? initial.field : undefined);
      const opSel = h('select', { name: 'filter-op', 'aria-label': t('operator') });
      const valueBox = h('div', { class: 'rb-filter-value filter-value' });
      row.append(fieldSel, opSel, valueBox, removeButton(row));
      const fillOps = (wanted) => {
        const col = column(fieldSel.value);
        const ops = operatorsFor(col ? col.type : 'text');
        opSel.replaceChildren(...ops.map((op) => option(op, t(`op_${op}`))));
        if (wanted && !ops.includes(wanted)) opSel.append(option(wanted, wanted));
        opSel.value = wanted || ops[0];
      };
      fillOps(initial ? initial.op : undefined);
      buildValue(row, initial ? initial.value : undefined);
      fieldSel.addEventListener('change', () => { fillOps(); buildValue(row); });
      opSel.addEventListener('change', () => buildValue(row, row._value ? row._value() : undefined, true));
      return row;
    }

    /** The value editor for the row's field and operator; `row._value()` reads it back. */
    function buildValue(row, initial, keep) {
      const fieldSel = row.querySelector('select[name="filter-field"]');
      const op = row.querySelector('select[name="filter-op"]').value;
      const box = row.querySelector('.filter-value');
      const col = column(fieldSel.value) || { type: 'text', options: [] };
      const type = col.type;
      box.replaceChildren();
      const listOp = op === 'in' || op === 'nin';
      if (keep && initial !== undefined) {
        // Carry a value across an operator change where it still makes sense.
        if (listOp && !Array.isArray(initial)) initial = initial === null || initial === '' ? [] : [initial];
        else if (!listOp && Array.isArray(initial)) initial = op === 'between' ? initial : initial[0];
        if (op === 'between' && !Array.isArray(initial)) initial = [initial, undefined];
        if (op === 'is_null') initial = true;
      }

      if (op === 'is_null') {
        const sel = h('select', { name: 'filter-value', 'aria-label': t('value') },
          option('true', t('is_empty')), option('false', t('not_empty')));
        sel.value = initial === false ? 'false' : 'true';
        box.append(sel);
        row._value = () => sel.value === 'true';
        return;
      }

      // One scalar editor; returns [elements, read()] where read() gives undefined when empty.
      const scalar = (value, suffix) => {
        const name = `filter-value${suffix || ''}`;
        if ((type === 'select' || type === 'multi_select') && col.options && col.options.length) {
          const sel = h('select', { name, 'aria-label': t('value') },
            col.options.map((o) => option(o.value, o.label)));
          if (typeof value === 'string') {
            if (!col.options.some((o) => o.value === value)) sel.append(option(value, value));
            sel.value = value;
          }
          return [[sel], () => sel.value];
        }
        if (type === 'boolean') {
          const sel = h('select', { name, 'aria-label': t('value') }, option('true', t('yes')), option('false', t('no')));
          sel.value = value === false ? 'false' : 'true';
          return [[sel], () => sel.value === 'true'];
        }
        if (DATE_TYPES.has(type)) {
          const mode = h('select', { name: `filter-date-mode${suffix || ''}`, 'aria-label': t('value') },
            option('date', t('specific_date')), RELATIVE.map((r) => option(r, t(`rel_${r}`))));
          const input = h('input', { type: 'date', name, 'aria-label': t('value') });
          if (value && typeof value === 'object' && value.relative) {
            if (!RELATIVE.includes(value.relative)) mode.append(option(value.relative, value.relative));
            mode.value = value.relative;
          } else if (typeof value === 'string') {
            mode.value = 'date';
            input.value = value.slice(0, 10);
          } else {
            mode.value = 'date';
          }
          const sync = () => { input.hidden = mode.value !== 'date'; };
          mode.addEventListener('change', sync);
          sync();
          return [[mode, input], () => {
            if (mode.value !== 'date') return { relative: mode.value };
            if (!input.value) return undefined;
            // A datetime is compared with the instant that day begins in China time.
            return type === 'datetime' ? `${input.value}T00:00:00+08:00` : input.value;
          }];
        }
        if (type === 'user') {
          // Me (whoever runs the report), one of the users, or an id typed in.
          const mode = h('select', { name: `filter-user-mode${suffix || ''}`, 'aria-label': t('value') },
            option('me', t('user_me')),
            (state.users || []).map((u) => option(`u:${u.id}`, u.display_name || u.username || `#${u.id}`)),
            option('id', t('user_id')));
          const input = h('input', { type: 'number', name, min: 1, step: 1, 'aria-label': t('user_id') });
          if (value && typeof value === 'object' && value.user === 'me') mode.value = 'me';
          else if (value !== undefined && value !== null) {
            const known = (state.users || []).some((u) => String(u.id) === String(value));
            mode.value = known ? `u:${value}` : 'id';
            if (!known) input.value = String(value);
          }
          const sync = () => { input.hidden = mode.value !== 'id'; };
          mode.addEventListener('change', sync);
          sync();
          return [[mode, input], () => {
            if (mode.value === 'me') return { user: 'me' };
            if (mode.value.startsWith('u:')) return Number(mode.value.slice(2));
            const n = parseInt(input.value, 10);
            return Number.isFinite(n) ? n : undefined;
          }];
        }
        if (type === 'reference' || type === 'integer') {
          const input = h('input', { type: 'number', name, step: 1, 'aria-label': type === 'reference' ? t('record_id') : t('value') });
          if (value !== undefined && value !== null) input.value = String(value);
          return [[input], () => {
            if (input.value.trim() === '') return undefined;
            const n = Number(input.value);
            return Number.isInteger(n) ? n : input.value.trim();
          }];
        }
        if (type === 'decimal') {
          const input = h('input', { type: 'text', inputmode: 'decimal', name, 'aria-label': t('value') });
          if (value !== undefined && value !== null) input.value = String(value);
          // Decimals travel as strings: exact, whatever their scale.
          return [[input], () => (input.value.trim() === '' ? undefined : input.value.trim())];
        }
        const input = h('input', { type: 'text', name, 'aria-label': t('value') });
        if (value !== undefined && value !== null) input.value = String(value);
        return [[input], () => (input.value === '' ? undefined : input.value)];
      };

      if (listOp) {
        if ((type === 'select') && col.options && col.options.length) {
          const sel = h('select', { name: 'filter-value', multiple: true, size: Math.min(5, col.options.length), 'aria-label': t('value') },
            col.options.map((o) => option(o.value, o.label)));
          const wanted = Array.isArray(initial) ? initial.map(String) : [];
          wanted.forEach((v) => { if (!col.options.some((o) => o.value === v)) sel.append(option(v, v)); });
          Array.from(sel.options).forEach((o) => { o.selected = wanted.includes(o.value); });
          box.append(sel);
          row._value = () => {
            const values = Array.from(sel.selectedOptions).map((o) => o.value);
            return values.length ? values : undefined;
          };
          return;
        }
        const input = h('input', { type: 'text', name: 'filter-value', placeholder: t('comma_values'), 'aria-label': t('value') });
        if (Array.isArray(initial)) input.value = initial.map(String).join(', ');
        box.append(input);
        row._value = () => {
          const parts = input.value.split(/[,，]/).map((s) => s.trim()).filter((s) => s !== '');
          if (!parts.length) return undefined;
          if (type === 'reference' || type === 'integer') return parts.map((p) => (Number.isInteger(Number(p)) ? Number(p) : p));
          return parts;
        };
        return;
      }

      if (op === 'between') {
        const pair = Array.isArray(initial) ? initial : [];
        const [lowEls, low] = scalar(pair[0], '-low');
        const [highEls, high] = scalar(pair[1], '-high');
        box.append(...lowEls, h('span', { class: 'rb-between' }, '–'), ...highEls);
        row._value = () => {
          const a = low();
          const b = high();
          return a === undefined || b === undefined ? undefined : [a, b];
        };
        return;
      }

      const [els, read] = scalar(initial);
      box.append(...els);
      row._value = read;
    }

    // Groups

    function groupRow(initial) {
      const row = h('div', { class: 'rb-row group-row' });
      const first = state.catalog ? [...state.catalog.own, ...state.catalog.system].find((c) => !UNGROUPABLE.has(c.type)) : null;
      const fieldSel = fieldSelect('group-field', (c) => !UNGROUPABLE.has(c.type),
        initial ? initial.field : (first ? first.key : undefined));
      const bucketSel = h('select', { name: 'group-bucket', 'aria-label': t('bucket') },
        option('', t('bucket_none')), BUCKETS.map((b) => option(b, t(`bucket_${b}`))));
      row.append(fieldSel, bucketSel, removeButton(row));
      const sync = (fresh) => {
        const col = column(fieldSel.value);
        const dated = !!col && DATE_TYPES.has(col.type);
        bucketSel.hidden = !dated;
        bucketSel.disabled = !dated;
        if (dated && fresh) bucketSel.value = 'month';
        if (!dated) bucketSel.value = '';
      };
      if (initial && initial.bucket) {
        bucketSel.value = initial.bucket;
        sync(false);
      } else {
        sync(!initial);
      }
      fieldSel.addEventListener('change', () => sync(true));
      return row;
    }

    // Measures

    function measureAccepts(fn) {
      if (fn === 'sum' || fn === 'avg') return (c) => NUMBER_TYPES.has(c.type);
      if (fn === 'min' || fn === 'max') return (c) => NUMBER_TYPES.has(c.type) || DATE_TYPES.has(c.type);
      return (c) => !UNGROUPABLE.has(c.type);
    }

    function measureRow(initial) {
      const row = h('div', { class: 'rb-row measure-row' });
      const fnSel = h('select', { name: 'measure-fn', 'aria-label': t('measures') },
        MEASURE_FNS.map((fn) => option(fn, t(`fn_${fn}`))));
      fnSel.value = initial && MEASURE_FNS.includes(initial.fn) ? initial.fn : 'count';
      const fieldSel = h('select', { name: 'measure-field', 'aria-label': t('field') });
      const labelIn = h('input', { type: 'text', name: 'measure-label', placeholder: t('measure_label'), 'aria-label': t('measure_label') });
      if (initial && initial.label) labelIn.value = initial.label;
      const fill = (current) => {
        const fn = fnSel.value;
        const accept = measureAccepts(fn);
        const extra = fn === 'count' ? [['', t('all_records')]] : null;
        let wanted = current;
        if (wanted === '' && fn !== 'count') wanted = undefined;
        if (wanted && state.catalog && state.catalog.all.has(wanted) && !accept(state.catalog.all.get(wanted))) wanted = undefined;
        fillFieldSelect(fieldSel, accept, wanted === undefined ? undefined : wanted, extra);
        if (wanted === undefined) fieldSel.selectedIndex = 0;
        fieldSel.disabled = fieldSel.options.length === 0;
      };
      fill(initial ? (initial.field || (initial.fn === 'count' ? '' : undefined)) : '');
      fnSel.addEventListener('change', () => fill(fieldSel.value));
      row.append(fnSel, fieldSel, labelIn, removeButton(row));
      return row;
    }

    function measureKey(row) {
      const fn = row.querySelector('select[name="measure-fn"]').value;
      const field = row.querySelector('select[name="measure-field"]').value;
      return field ? `${fn}:${field}` : fn;
    }

    // Sorts: by a grouping or a measure key

    function sortChoices() {
      const choices = [];
      groupsBox.querySelectorAll('.group-row').forEach((row) => {
        const key = row.querySelector('select[name="group-field"]').value;
        if (key && !choices.some((c) => c[0] === key)) {
          const col = column(key);
          choices.push([key, col ? col.label : key]);
        }
      });
      // Measure keys as the definition names them (`count`, `sum:amount`): without
      // measures the report still counts, but there is no measure to sort by.
      const measureRows = measuresBox.querySelectorAll('.measure-row');
      measureRows.forEach((row) => {
        const key = measureKey(row);
        if (choices.some((c) => c[0] === key)) return;
        const fn = row.querySelector('select[name="measure-fn"]').value;
        const field = row.querySelector('select[name="measure-field"]').value;
        const custom = row.querySelector('input[name="measure-label"]').value.trim();
        const col = field ? column(field) : null;
        const label = custom || (field ? `${t(`fn_${fn}`)} · ${col ? col.label : field}` : t(`fn_${fn}`));
        choices.push([key, label]);
      });
      return choices;
    }

    function fillSort(select, wanted) {
      const choices = sortChoices();
      select.replaceChildren(...choices.map(([value, label]) => option(value, label)));
      if (wanted && !choices.some((c) => c[0] === wanted)) return false;
      if (wanted) select.value = wanted;
      return true;
    }

    function sortRow(initial) {
      const row = h('div', { class: 'rb-row sort-row' });
      const fieldSel = h('select', { name: 'sort-field', 'aria-label': t('sort') });
      if (!fillSort(fieldSel, initial ? initial.field : undefined)) {
        fieldSel.append(option(initial.field, initial.field));
        fieldSel.value = initial.field;
      }
      const dirSel = h('select', { name: 'sort-dir', 'aria-label': t('sort') }, option('asc', t('asc')), option('desc', t('desc')));
      dirSel.value = initial && initial.desc ? 'desc' : 'asc';
      row.append(fieldSel, dirSel, removeButton(row));
      return row;
    }

    /** Sort options follow the groupings and measures; a sort on a removed one goes. */
    function refreshSorts() {
      sortsBox.querySelectorAll('.sort-row').forEach((row) => {
        const select = row.querySelector('select[name="sort-field"]');
        if (!fillSort(select, select.value)) row.remove();
      });
    }

    // -- kind --

    function refreshKind() {
      const hasPipeline = !!(state.catalog && state.catalog.hasPipeline);
      Array.from(kindSelect.options).forEach((o) => {
        if (o.value === 'funnel' || o.value === 'forecast') {
          o.disabled = !hasPipeline && kindSelect.value !== o.value;
          o.textContent = t(`kind_${o.value}`) + (hasPipeline ? '' : ` ${t('needs_pipeline')}`);
        }
      });
      const kind = kindSelect.value;
      compareBox.hidden = kind !== 'comparison';
      kindHint.textContent = kind === 'table' ? '' : t(`kind_hint_${kind}`);
      kindHint.hidden = kind === 'table';
    }

    // -- definition --

    /**
     * The definition the controls describe. Paths the server reports problems under
     * (`report.group_by[0].field`) are put on the controls as `data-path`.
     */
    function definition() {
      const def = { entity: entitySelect.value };
      const label = labelInput.value.trim();
      if (label) def.label = label;
      const kind = kindSelect.value;
      if (kind && kind !== 'table') def.kind = kind;

      const raw = filterJson.value.trim();
      filterJson.removeAttribute('data-path');
      if (raw) {
        try {
          def.filter = JSON.parse(raw);
        } catch (err) {
          return { error: { path: 'report.filter.json', message: t('advanced_json_bad', err.message) } };
        }
        filtersBox.querySelectorAll('.filter-row').forEach((row) => clearPaths(row));
      } else {
        const mode = filterMode.value === 'or' ? 'or' : 'and';
        const conditions = [];
        filtersBox.querySelectorAll('.filter-row').forEach((row) => {
          clearPaths(row);
          const field = row.querySelector('select[name="filter-field"]').value;
          const op = row.querySelector('select[name="filter-op"]').value;
          const value = row._value ? row._value() : undefined;
          const complete = !!field && !!op && value !== undefined;
          row.classList.toggle('rb-incomplete', !complete);
          if (!complete) return;
          const base = `report.filter.${mode}[${conditions.length}]`;
          row.dataset.path = base;
          row.querySelector('select[name="filter-field"]').dataset.path = `${base}.field`;
          row.querySelector('select[name="filter-op"]').dataset.path = `${base}.op`;
          row.querySelector('.filter-value').dataset.path = `${base}.value`;
          conditions.push({ field, op, value });
        });
        if (conditions.length) def.filter = { [mode]: conditions };
      }

      const groups = [];
      groupsBox.querySelectorAll('.group-row').forEach((row, i) => {
        const base = `report.group_by[${i}]`;
        row.dataset.path = base;
        const fieldSel = row.querySelector('select[name="group-field"]');
        const bucketSel = row.querySelector('select[name="group-bucket"]');
        fieldSel.dataset.path = `${base}.field`;
        bucketSel.dataset.path = `${base}.bucket`;
        const group = { field: fieldSel.value };
        if (!bucketSel.disabled && bucketSel.value) group.bucket = bucketSel.value;
        groups.push(group);
      });
      if (groups.length) def.group_by = groups;

      const measures = [];
      measuresBox.querySelectorAll('.measure-row').forEach((row, i) => {
        const base = `report.measures[${i}]`;
        row.dataset.path = base;
        const fnSel = row.querySelector('select[name="measure-fn"]');
        const fieldSel = row.querySelector('select[name="measure-field"]');
        const labelIn = row.querySelector('input[name="measure-label"]');
        fnSel.dataset.path = `${base}.fn`;
        fieldSel.dataset.path = `${base}.field`;
        labelIn.dataset.path = `${base}.label`;
        const measure = { fn: fnSel.value };
        if (fieldSel.value) measure.field = fieldSel.value;
        if (labelIn.value.trim()) measure.label = labelIn.value.trim();
        measures.push(measure);
      });
      if (measures.length) def.measures = measures;

      const sorts = [];
      sortsBox.querySelectorAll('.sort-row').forEach((row, i) => {
        const base = `report.sort[${i}]`;
        row.dataset.path = base;
        const fieldSel = row.querySelector('select[name="sort-field"]');
        fieldSel.dataset.path = `${base}.field`;
        if (!fieldSel.value) return;
        const sort = { field: fieldSel.value };
        if (row.querySelector('select[name="sort-dir"]').value === 'desc') sort.desc = true;
        sorts.push(sort);
      });
      if (sorts.length) def.sort = sorts;

      const limitText = limitInput.value.trim();
      if (limitText !== '') {
        const limit = Number(limitText);
        def.limit = Number.isInteger(limit) ? limit : limitText;
      }
      def.chart = chartSelect.value || 'table';
      if (kind === 'comparison') def.compare = compareSelect.value || 'year';
      return def;
    }

    function clearPaths(row) {
      row.removeAttribute('data-path');
      row.querySelectorAll('[data-path]').forEach((el) => el.removeAttribute('data-path'));
    }

    // -- errors next to the controls --

    function clearErrors() {
      root.querySelectorAll('.rb-error-msg').forEach((el) => el.remove());
      root.querySelectorAll('.rb-invalid').forEach((el) => {
        el.classList.remove('rb-invalid');
        el.removeAttribute('aria-invalid');
      });
      previewErrors.replaceChildren();
      previewErrors.hidden = true;
    }

    function parentPath(path) {
      const m = path.match(/^(.*)(\.[^.[\]]+|\[\d+\])$/);
      return m ? m[1] : '';
    }

    /** Shows `message` next to the control for `path` (or its nearest ancestor); false if none. */
    function markError(path, message) {
      let p = path;
      let el = null;
      while (p && p !== 'report') {
        el = root.querySelector(`[data-path="${CSS.escape(p)}"]`);
        if (el && !el.hidden && !el.closest('[hidden]')) break;
        el = null;
        p = parentPath(p);
      }
      if (!el) return false;
      el.classList.add('rb-invalid');
      el.setAttribute('aria-invalid', 'true');
      const note = h('div', { class: 'rb-error-msg', role: 'alert', dataset: { errorFor: path } }, message);
      const host = el.matches('.rb-row, .rb-section, .rb-subsection, fieldset') ? el : el.closest('.rb-row, .rb-field');
      if (host) host.append(note);
      else el.after(note);
      return true;
    }

    /** The problems of an API error as `[{path, message}]`. */
    function problems(err) {
      if (err && Array.isArray(err.details) && err.details.length && err.details[0].path !== undefined) {
        return err.details.map((d) => ({ path: String(d.path || ''), message: String(d.message || '') }));
      }
      if (err && Array.isArray(err.details) && err.details.length && err.details[0].field !== undefined) {
        return err.details.map((d) => ({ path: `report.${d.field}`, message: String(d.message || '') }));
      }
      const message = errorMessage(err);
      // 400s and 403s name the place first: `filter.and[1].op: unknown operator …`.
      const m = message.match(/^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)*): ([\s\S]+)$/);
      if (m && err && (err.status === 400 || err.status === 403 || err.status === 422)) {
        const path = m[1].startsWith('report') ? m[1] : `report.${m[1]}`;
        return [{ path, message: m[2] }];
      }
      return [{ path: '', message }];
    }

    function showErrors(list, general) {
      const unplaced = list.filter((p) => !p.path || !markError(p.path, p.message));
      const items = [];
      if (unplaced.length < list.length) items.push(h('p', null, t('fix_marked')));
      unplaced.forEach((p) => items.push(h('p', { class: 'rp-error' }, p.path ? `${p.path}: ${p.message}` : p.message)));
      if (general && items.length) {
        previewErrors.replaceChildren(...items);
        previewErrors.hidden = false;
      }
      return unplaced;
    }

    // -- preview --

    async function runPreview() {
      const seq = ++state.runSeq;
      clearErrors();
      if (!entitySelect.value || !state.catalog) {
        previewStatus.textContent = t('preview_hint');
        clearResult(preview);
        return;
      }
      const def = definition();
      if (def.error) {
        showErrors([def.error], true);
        return;
      }
      preview.classList.add('rp-busy');
      previewStatus.textContent = t('running');
      try {
        const output = await api('POST', '/reports/run', def);
        if (seq !== state.runSeq) return;
        preview.classList.remove('rp-stale');
        renderResult(preview, output, def.chart);
      } catch (err) {
        if (seq !== state.runSeq) return;
        preview.classList.add('rp-stale');
        previewStatus.textContent = '';
        showErrors(problems(err), true);
      } finally {
        if (seq === state.runSeq) preview.classList.remove('rp-busy');
      }
    }

    const schedulePreview = debounce(runPreview, 350);

    function structureChanged() {
      refreshSorts();
      refreshKind();
      if (!state.loading) schedulePreview();
    }

    // -- entity --

    function setAddButtons(enabled) {
      [addFilter, addGroup, addMeasure, addSort].forEach((b) => { b.disabled = !enabled; });
    }

    async function selectEntity(entity) {
      const seq = ++state.entitySeq;
      state.catalog = null;
      setAddButtons(false);
      filtersBox.replaceChildren();
      groupsBox.replaceChildren();
      measuresBox.replaceChildren();
      sortsBox.replaceChildren();
      clearErrors();
      refreshKind();
      if (!entity) {
        runPreview();
        return;
      }
      loadStatus.textContent = t('loading');
      try {
        const catalog = await loadCatalog(entity);
        if (seq !== state.entitySeq) return;
        state.catalog = catalog;
        loadStatus.textContent = '';
        setAddButtons(true);
        if (!catalog.hasPipeline && (kindSelect.value === 'funnel' || kindSelect.value === 'forecast')) kindSelect.value = 'table';
        refreshKind();
      } catch (err) {
        if (seq !== state.entitySeq) return;
        loadStatus.textContent = errorMessage(err);
        loadStatus.classList.add('rp-error');
      }
    }

    // -- roles --

    async function loadRoles(selected) {
      try {
        const meta = await api('GET', '/meta');
        const roles = (meta && meta.roles) || [];
        if (!roles.length) return;
        roleList.replaceChildren(...roles.map((role) => {
          const box = h('input', { type: 'checkbox', name: 'report-role', value: role.key });
          box.checked = selected.includes(role.key);
          return h('label', { class: 'rb-role' }, box, ' ', role.label || role.key);
        }));
        selected.filter((r) => !roles.some((role) => role.key === r)).forEach((r) => {
          const box = h('input', { type: 'checkbox', name: 'report-role', value: r });
          box.checked = true;
          roleList.append(h('label', { class: 'rb-role' }, box, ' ', r));
        });
        rolesBox.hidden = false;
      } catch (err) {
        // Without the package the report is saved with the roles it had.
        rolesBox.hidden = true;
      }
    }

    function chosenRoles() {
      if (rolesBox.hidden) return state.roles || [];
      return Array.from(roleList.querySelectorAll('input[name="report-role"]:checked')).map((b) => b.value);
    }

    // -- saving --

    function showSaved(key) {
      state.mode = 'saved';
      state.savedKey = key;
      keyInput.value = key;
      keyInput.readOnly = true;
      saveNote.hidden = true;
      deleteButton.hidden = false;
      links.hidden = false;
      links.querySelector('a.view-report').href = `/reports/${enc(key)}`;
      const csv = links.querySelector('a.export-csv');
      const xlsx = links.querySelector('a.export-xlsx');
      csv.href = `/api/reports/${enc(key)}/run?format=csv`;
      xlsx.href = `/api/reports/${enc(key)}/run?format=xlsx`;
      csv.textContent = t('export_csv');
      xlsx.textContent = t('export_xlsx');
    }

    async function save() {
      clearErrors();
      saveStatus.textContent = '';
      saveStatus.classList.remove('rp-error');
      const key = keyInput.value.trim();
      const label = labelInput.value.trim();
      const local = [];
      if (!entitySelect.value) local.push({ path: 'report.entity', message: t('entity_required') });
      if (!key) local.push({ path: 'report.key', message: t('key_required') });
      else if (!/^[a-z][a-z0-9_]{0,63}$/.test(key)) local.push({ path: 'report.key', message: t('key_invalid') });
      if (!label) local.push({ path: 'report.label', message: t('label_required') });
      if (local.length) {
        showErrors(local, false);
        return;
      }
      const def = definition();
      if (def.error) {
        showErrors([def.error], true);
        return;
      }
      def.key = key;
      def.label = label;
      const roles = chosenRoles();
      if (roles.length) def.roles = roles;
      saveButton.disabled = true;
      saveStatus.textContent = t('saving');
      try {
        if (state.mode === 'saved') {
          await api('PUT', `/reports/${enc(state.savedKey)}`, def);
        } else {
          await api('POST', '/reports', def);
          showSaved(key);
          titleEl.textContent = `${t('edit')} · ${key}`;
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, '', `/reports/${enc(key)}/edit`);
          }
        }
        saveStatus.textContent = t('saved');
      } catch (err) {
        saveStatus.textContent = '';
        if (err && err.status === 409) {
          markError('report.key', errorMessage(err));
        } else {
          const unplaced = showErrors(problems(err), false);
          if (unplaced.length) {
            saveStatus.textContent = unplaced.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
            saveStatus.classList.add('rp-error');
          }
        }
      } finally {
        saveButton.disabled = false;
      }
    }

    async function remove() {
      if (state.mode !== 'saved' || !window.confirm(t('confirm_delete'))) return;
      try {
        await api('DELETE', `/reports/${enc(state.savedKey)}`);
        saveStatus.textContent = t('deleted');
        window.location.href = '/reports';
      } catch (err) {
        saveStatus.textContent = errorMessage(err);
        saveStatus.classList.add('rp-error');
      }
    }

    // -- loading a saved report --

    /** A filter as rows when it is one comparison or a flat and/or of comparisons. */
    function filterAsRows(filter) {
      const isLeaf = (f) => f && typeof f === 'object' && !Array.isArray(f) && typeof f.field === 'string' && typeof f.op === 'string'
        && Object.keys(f).every((k) => k === 'field' || k === 'op' || k === 'value');
      if (!filter) return { mode: 'and', rows: [] };
      if (isLeaf(filter)) return { mode: 'and', rows: [filter] };
      const keys = Object.keys(filter);
      if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or') && Array.isArray(filter[keys[0]]) && filter[keys[0]].every(isLeaf)) {
        return { mode: keys[0], rows: filter[keys[0]] };
      }
      return null;
    }

    async function loadSaved(key) {
      state.loading = true;
      loadStatus.textContent = t('loading');
      let report;
      let listed = null;
      let me = null;
      try {
        const [def, list, user] = await Promise.all([
          api('GET', `/reports/${enc(key)}`),
          api('GET', '/reports').catch(() => null),
          api('GET', '/auth/me').catch(() => null),
          usersLoaded,
        ]);
        report = def;
        me = user;
        listed = list && Array.isArray(list.items) ? list.items.find((i) => i.key === key) : null;
      } catch (err) {
        state.loading = false;
        loadStatus.textContent = err && err.status === 404 ? t('not_found') : errorMessage(err);
        loadStatus.classList.add('rp-error');
        return;
      }
      if (!Array.from(entitySelect.options).some((o) => o.value === report.entity)) {
        entitySelect.append(option(report.entity, report.entity));
      }
      entitySelect.value = report.entity;
      kindSelect.value = report.kind || 'table';
      await selectEntity(report.entity);
      if (!state.catalog) { state.loading = false; return; }

      const rows = filterAsRows(report.filter);
      if (rows) {
        filterMode.value = rows.mode;
        rows.rows.forEach((f) => filtersBox.append(filterRow(f)));
      } else {
        filterJson.value = JSON.stringify(report.filter, null, 2);
        filterJson.closest('details').open = true;
      }
      (report.group_by || []).forEach((g) => groupsBox.append(groupRow(g)));
      (report.measures || []).forEach((m) => measuresBox.append(measureRow(m)));
      (report.sort || []).forEach((s) => sortsBox.append(sortRow(s)));
      if (report.limit) limitInput.value = String(report.limit);
      chartSelect.value = report.chart || (report.kind === 'funnel' ? 'funnel' : 'table');
      if (report.compare) compareSelect.value = report.compare;
      refreshKind();
      // The owner (or an administrator) changes a saved report; anyone else, and
      // anyone opening a package report, saves a copy of their own.
      const mine = !!listed && listed.saved && (!me || me.is_admin || me.id === listed.owner);
      if (mine) {
        state.roles = report.roles || [];
        labelInput.value = report.label || '';
        showSaved(key);
      } else {
        state.roles = [];
        state.mode = 'copy';
        keyInput.value = '';
        keyInput.placeholder = `${key}_copy`;
        labelInput.value = (report.label || key) + t('copy_suffix');
        saveNote.textContent = listed && listed.saved ? t('copy_note_other') : t('copy_note');
        saveNote.hidden = false;
      }
      loadRoles(state.roles);
      loadStatus.textContent = '';
      state.loading = false;
      runPreview();
    }

    // -- events --

    form.addEventListener('submit', (e) => e.preventDefault());
    entitySelect.addEventListener('change', async () => {
      await selectEntity(entitySelect.value);
      runPreview();
    });
    addFilter.addEventListener('click', () => { filtersBox.append(filterRow()); structureChanged(); });
    addGroup.addEventListener('click', () => {
      groupsBox.append(groupRow());
      structureChanged();
    });
    addMeasure.addEventListener('click', () => { measuresBox.append(measureRow()); structureChanged(); });
    addSort.addEventListener('click', () => { sortsBox.append(sortRow()); structureChanged(); });
    saveButton.addEventListener('click', save);
    deleteButton.addEventListener('click', remove);

    // Any other edit re-runs the preview (after the row handlers above have run).
    const notPreviewed = new Set(['entity', 'report-key', 'report-label', 'report-role']);
    const onEdit = (e) => {
      const name = e.target && e.target.name;
      if (notPreviewed.has(name)) return;
      if (name === 'kind') refreshKind();
      if (e.type === 'change' && /^(group-field|measure-fn|measure-field|measure-label)$/.test(name)) refreshSorts();
      if (state.loading) return;
      schedulePreview();
    };
    form.addEventListener('change', onEdit);
    form.addEventListener('input', (e) => {
      // Text boxes preview as you type; selects already fire `change`.
      if (e.target && e.target.tagName !== 'SELECT') onEdit(e);
    });
    labelInput.addEventListener('input', () => { if (labelInput.value.trim()) clearLocalError('report.label'); });
    keyInput.addEventListener('input', () => clearLocalError('report.key'));

    function clearLocalError(path) {
      root.querySelectorAll(`.rb-error-msg[data-error-for="${CSS.escape(path)}"]`).forEach((el) => el.remove());
      const el = root.querySelector(`[data-path="${CSS.escape(path)}"]`);
      if (el) { el.classList.remove('rb-invalid'); el.removeAttribute('aria-invalid'); }
    }

    refreshKind();
    if (state.savedKey) {
      loadSaved(state.savedKey);
    } else {
      state.roles = [];
      loadRoles([]);
      if (entitySelect.value) selectEntity(entitySelect.value).then(runPreview);
    }
  }

  // ---- start -----------------------------------------------------------------

  function start() {
    const viewer = document.getElementById('report-view');
    if (viewer) initViewer(viewer);
    const builder = document.getElementById('report-builder');
    if (builder) initBuilder(builder);
    const dashboard = document.getElementById('dashboard');
    if (dashboard) {
      applyI18n(dashboard);
      initDashboard(dashboard);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
