/* metacrm — metadata designer.
 *
 * A client-side editor over the tenant's metadata package: GET /api/meta loads the
 * whole package, the designer edits that object in place (every key it does not
 * edit is kept untouched), PUT /api/meta?dry_run=true shows the plan and PUT /api/meta
 * publishes it. Validation problems come back with metadata paths
 * (`entities[0].fields[3].options`); every editable element carries the path of the
 * thing it edits in `data-path`, and each problem is shown next to that element and
 * in the summary at the top.
 *
 * No inline scripts or styles (strict CSP): the DOM is built with createElement and
 * textContent only, so labels such as `<script>` render as text.
 */
(function () {
  'use strict';

  const root = document.getElementById('designer');
  if (!root) return;

  const LANG = String(document.documentElement.lang || (window.metacrm && window.metacrm.lang) || 'zh')
    .toLowerCase().startsWith('en') ? 'en' : 'zh';

  // ---------------------------------------------------------------- texts

  const I18N = {
    zh: {
      title: '元数据设计器',
      loading: '正在加载元数据…',
      loadFailed: '无法加载元数据：{message}',
      version: '版本 {version}',
      unsaved: '有未发布的修改',
      saved: '与已发布版本一致',
      publish: '发布…',
      checking: '正在检查…',
      discard: '放弃修改',
      discardConfirm: '放弃所有未发布的修改，重新加载已发布的元数据？',
      leaveConfirm: '有未发布的修改。',
      entities: '实体',
      addEntity: '+ 新建实体',
      archivedSession: '已归档（未发布）',
      archivedPast: '已归档的表',
      archivedPastHint: '添加同一标识的实体即可恢复表及数据。',
      restore: '恢复',
      noEntities: '还没有实体。',
      tabFields: '字段',
      tabStages: '阶段',
      tabLayout: '布局',
      tabSettings: '设置',
      tabRoles: '角色权限',
      tabFlows: '审批流',
      tabReports: '报表',
      pickEntity: '请在左侧选择或新建一个实体。',
      entityKey: '实体标识',
      entityLabel: '实体名称',
      archiveEntity: '归档实体',
      archiveEntityConfirm: '归档实体“{name}”？发布后其表会被改名保留（数据不会删除）。各角色对它的权限随之移除；引用它的审批流和报表需要一并修改。',
      key: '标识',
      label: '名称',
      type: '类型',
      flags: '属性',
      actions: '操作',
      edit: '编辑',
      moveUp: '上移',
      moveDown: '下移',
      dragHint: '拖动排序',
      remove: '删除',
      archive: '归档',
      addField: '+ 添加字段',
      noFields: '还没有字段。',
      archivedFieldsSession: '已归档的字段（发布后生效）',
      archivedFieldsPast: '以前归档的字段',
      archivedFieldsPastHint: '添加一个同一标识、同一类型的字段即可恢复该列及其数据。',
      restoreAsNew: '以此标识添加',
      archiveHint: '归档：发布后该列会被改名保留，数据不会删除；可随时恢复。',
      flagRequired: '必填',
      flagUnique: '唯一',
      flagIndexed: '索引',
      flagSearchable: '可搜索',
      flagReadOnly: '只读',
      flagFormula: '公式',
      fieldEditor: '字段：{name}',
      fieldDone: '完成',
      help: '帮助文字',
      renamedFrom: '原标识（改名）',
      renamedFromHint: '修改已发布字段的标识时自动填写：列会被改名，数据保留。',
      required: '必填',
      unique: '唯一',
      indexed: '建索引',
      searchable: '参与全文搜索',
      readOnly: '只读（只能由默认值或审批流写入）',
      options: '选项',
      optionValue: '值（代码）',
      optionLabel: '显示名称',
      optionColor: '颜色',
      addOption: '+ 添加选项',
      noOptions: '单选/多选字段至少需要一个选项。',
      target: '关联的实体',
      scale: '小数位数',
      scaleHint: '0–6，默认 2；发布后只能增大。',
      min: '最小值',
      max: '最大值',
      maxLength: '最大长度',
      pattern: '正则表达式',
      patternHint: '搜索匹配；用 ^…$ 锚定整串。',
      format: '编号格式',
      formatHint: '例如 KH{YYYY}{MM}-{0000}；{0000} 为序号。',
      defaultValue: '默认值',
      formula: '公式（计算字段）',
      formulaHint: '例如 add_months(delivered_on, warranty_months)',
      visibleIf: '显示条件',
      requiredIf: '必填条件',
      exprHint: '表达式，例如 stage == \'lost\'',
      sectionBasics: '基本',
      sectionFlags: '属性',
      sectionType: '类型设置',
      sectionRules: '默认值与规则',
      defText: '表达式；文本常量要加引号：\'未分类\'',
      defInteger: '整数，或表达式',
      defDecimal: '数字（如 12.50），或表达式',
      defBoolean: 'true 或 false，或表达式',
      defDate: 'YYYY-MM-DD，或表达式如 add_days(today(), 30)',
      defDatetime: '带时区的 RFC 3339 时间，或 now()',
      defSelect: '一个选项值，或表达式',
      defMultiSelect: '选项值的 JSON 列表，如 ["a","b"]',
      defId: 'ID，或表达式如 owner',
      noDefault: '此类型没有默认值。',
      stages: '阶段',
      noPipeline: '此实体没有销售阶段（管道）。添加一个阶段即可启用。',
      addStage: '+ 添加阶段',
      probability: '赢率 %',
      requiredFields: '进入时必填',
      won: '赢单',
      lost: '输单',
      none: '无',
      transitions: '阶段流转',
      transForward: '只能向前（默认）',
      transAny: '任意阶段之间',
      transList: '指定的流转',
      from: '从',
      to: '到',
      roles: '角色',
      addTransition: '+ 添加流转',
      removePipeline: '移除管道',
      removePipelineConfirm: '移除管道？发布后 stage 列会被归档。',
      removeStageConfirm: '删除阶段“{name}”？',
      layout: '布局',
      noLayout: '没有布局：表单按字段顺序列出所有字段。',
      addLayout: '创建布局',
      removeLayout: '移除布局',
      removeLayoutConfirm: '移除布局？表单将按字段顺序列出所有字段。',
      sectionLabel: '分组名称',
      columns: '列数',
      addSection: '+ 添加分组',
      unplaced: '不在表单上的字段',
      unplacedEmpty: '所有字段都已放到表单上。',
      dropHere: '把字段拖到这里',
      removeFromSection: '移出表单',
      settings: '设置',
      titleField: '标题字段',
      followup: '跟进周期',
      followupEnable: '启用跟进周期',
      followupField: '按哪个单选字段',
      followupDays: '每隔几天跟进',
      activity: '跟进记录（活动实体）',
      activityField: '指向本实体的关联字段',
      pool: '公海',
      poolEnable: '启用公海',
      reclaimAfter: '多少天未跟进收回公海',
      claimLimit: '每人每天最多领取',
      holdLimit: '每人最多持有（超过则不能再领取）',
      duplicateCheck: '查重',
      duplicateEnable: '新建时查重',
      duplicateBlock: '确定重复时阻止创建',
      forceRoles: '允许强制创建的角色',
      addRole: '+ 新建角色',
      noRoles: '还没有角色。',
      roleKey: '角色标识',
      roleLabel: '角色名称',
      roleAdmin: '管理员（可使用设计器）',
      deleteRole: '删除角色',
      deleteRoleConfirm: '删除角色“{name}”？',
      permissions: '权限矩阵',
      entity: '实体',
      field: '字段',
      scope: '范围',
      denyRead: '不可见字段',
      denyWrite: '不可改字段',
      all: '全部',
      clear: '清空',
      act_create: '新建', act_read: '查看', act_update: '修改', act_delete: '删除',
      act_export: '导出', act_import: '导入', act_assign: '分配',
      scope_own: '本人', scope_department: '本部门', scope_subordinates: '下属', scope_all: '全部',
      roleReports: '可运行的报表与看板',
      roleReportsHint: '报表未指定角色时，能查看其实体的人都可运行。',
      dashboards: '看板',
      addFlow: '+ 新建审批流',
      noFlows: '还没有审批流。',
      flowKey: '审批流标识',
      flowLabel: '审批流名称',
      deleteFlow: '删除审批流',
      deleteFlowConfirm: '删除审批流“{name}”？',
      trigger: '触发',
      triggerOn: '触发时机',
      noTrigger: '无（手动）',
      on_submit: '提交审批', on_create: '新建时', on_update: '修改时', on_stage_enter: '进入阶段',
      stage: '阶段',
      when: '条件',
      steps: '审批步骤',
      stepKey: '步骤标识',
      approvers: '审批人',
      appr_role: '角色', appr_user: '指定用户', appr_manager_of: '提交人的上级', appr_field: '字段中的用户',
      submitter: '提交人',
      mode: '方式',
      mode_any: '任一人通过', mode_all: '所有人通过',
      addStep: '+ 添加步骤',
      onApprove: '通过后',
      onReject: '驳回后',
      setStage: '设为阶段',
      setFields: '设置字段',
      addSet: '+ 设置字段',
      value: '值',
      notifyCc: '抄送角色',
      reports: '报表',
      addReport: '+ 新建报表',
      addDashboard: '+ 新建看板',
      noReports: '还没有报表。',
      noDashboards: '还没有看板。',
      reportKey: '报表标识',
      reportLabel: '报表名称',
      deleteReport: '删除报表',
      deleteReportConfirm: '删除报表“{name}”？',
      kind: '类型',
      kind_table: '表格', kind_funnel: '漏斗', kind_forecast: '预测', kind_pivot: '透视', kind_comparison: '同比/环比',
      chart: '图表',
      chart_table: '表格', chart_bar: '柱状图', chart_line: '折线图', chart_pie: '饼图', chart_funnel: '漏斗图',
      compare: '对比周期',
      period_month: '月', period_quarter: '季度', period_year: '年',
      limit: '行数上限',
      groupBy: '分组',
      bucket: '时间粒度',
      bucket_day: '日', bucket_week: '周', bucket_month: '月', bucket_quarter: '季度', bucket_year: '年',
      addGroup: '+ 添加分组',
      measures: '指标',
      fn: '函数',
      fn_count: '计数', fn_count_distinct: '去重计数', fn_sum: '求和', fn_avg: '平均', fn_min: '最小', fn_max: '最大',
      addMeasure: '+ 添加指标',
      sort: '排序',
      desc: '降序',
      addSort: '+ 添加排序',
      filter: '筛选条件（JSON）',
      filterHint: '例如 {"field": "stage", "op": "eq", "value": "signed"}',
      filterInvalid: '不是有效的 JSON：{message}',
      reportRoles: '可运行的角色',
      dashboardKey: '看板标识',
      dashboardLabel: '看板名称',
      dashboardReports: '看板中的报表',
      addToDashboard: '添加报表…',
      deleteDashboard: '删除看板',
      deleteDashboardConfirm: '删除看板“{name}”？',
      defaultChoice: '（默认）',
      choose: '（请选择）',
      errorsTitle: '发布被拒绝：{count} 个问题',
      errorTitle: '出错了',
      packageRoot: '（整个元数据包）',
      planTitle: '发布计划',
      planVersion: '当前版本 {version}，发布后为新版本。',
      planNoChange: '与已发布的元数据相同，无需发布。',
      planNoSql: '只修改元数据，不改动数据库表。',
      planSteps: '{count} 个数据库步骤：',
      apply: '确认发布',
      applying: '正在发布…',
      cancel: '取消',
      published: '已发布，当前版本 ',
      publishedNoChange: '没有修改，版本仍为 ',
      sql: 'SQL',
      op_create_table: '新建表', op_rename_table: '重命名表', op_archive_table: '归档表', op_restore_table: '恢复表',
      op_add_column: '新增列', op_rename_column: '重命名列', op_archive_column: '归档列', op_restore_column: '恢复列',
      op_convert_column: '转换列', op_add_index: '新增索引', op_drop_index: '删除索引', op_rename_index: '重命名索引',
      op_rename_sequence: '重命名编号序列',
      staleHint: '已修改，请重新发布以查看计划。',
      type_text: '单行文本', type_long_text: '多行文本', type_integer: '整数', type_decimal: '小数',
      type_boolean: '是/否', type_date: '日期', type_datetime: '日期时间', type_select: '单选',
      type_multi_select: '多选', type_reference: '关联', type_user: '用户', type_email: '邮箱',
      type_phone: '电话', type_url: '网址', type_attachment: '附件', type_auto_number: '自动编号',
    },
    en: {
      title: 'Metadata designer',
      loading: 'Loading the metadata…',
      loadFailed: 'Could not load the metadata: {message}',
      version: 'version {version}',
      unsaved: 'unpublished changes',
      saved: 'same as published',
      publish: 'Publish…',
      checking: 'Checking…',
      discard: 'Discard changes',
      discardConfirm: 'Discard every unpublished change and reload the published metadata?',
      leaveConfirm: 'There are unpublished changes.',
      entities: 'Entities',
      addEntity: '+ New entity',
      archivedSession: 'Archived (not yet published)',
      archivedPast: 'Archived tables',
      archivedPastHint: 'Add an entity with the same key to restore its table and data.',
      restore: 'Restore',
      noEntities: 'No entities yet.',
      tabFields: 'Fields',
      tabStages: 'Stages',
      tabLayout: 'Layout',
      tabSettings: 'Settings',
      tabRoles: 'Roles',
      tabFlows: 'Flows',
      tabReports: 'Reports',
      pickEntity: 'Pick an entity on the left, or create one.',
      entityKey: 'Entity key',
      entityLabel: 'Entity label',
      archiveEntity: 'Archive entity',
      archiveEntityConfirm: 'Archive the entity "{name}"? Publishing renames its table aside (no data is deleted). The roles\' permissions on it go with it; flows and reports naming it must be changed too.',
      key: 'Key',
      label: 'Label',
      type: 'Type',
      flags: 'Flags',
      actions: 'Actions',
      edit: 'Edit',
      moveUp: 'Move up',
      moveDown: 'Move down',
      dragHint: 'Drag to reorder',
      remove: 'Remove',
      archive: 'Archive',
      addField: '+ Add field',
      noFields: 'No fields yet.',
      archivedFieldsSession: 'Archived fields (take effect when published)',
      archivedFieldsPast: 'Fields archived earlier',
      archivedFieldsPastHint: 'Add a field with the same key and type to restore its column and data.',
      restoreAsNew: 'Add with this key',
      archiveHint: 'Archive: publishing renames the column aside, no data is deleted; it can be restored.',
      flagRequired: 'required',
      flagUnique: 'unique',
      flagIndexed: 'indexed',
      flagSearchable: 'searchable',
      flagReadOnly: 'read-only',
      flagFormula: 'formula',
      fieldEditor: 'Field: {name}',
      fieldDone: 'Done',
      help: 'Help text',
      renamedFrom: 'Renamed from',
      renamedFromHint: 'Filled in when you change the key of a published field: the column is renamed, its data kept.',
      required: 'Required',
      unique: 'Unique',
      indexed: 'Indexed',
      searchable: 'Searchable (full-text search)',
      readOnly: 'Read-only (set by its default or by flows)',
      options: 'Options',
      optionValue: 'Value (code)',
      optionLabel: 'Label',
      optionColor: 'Colour',
      addOption: '+ Add option',
      noOptions: 'A select field needs at least one option.',
      target: 'Target entity',
      scale: 'Scale (digits after the point)',
      scaleHint: '0–6, default 2; it can only grow once published.',
      min: 'Minimum',
      max: 'Maximum',
      maxLength: 'Maximum length',
      pattern: 'Pattern (regular expression)',
      patternHint: 'A search: anchor it with ^…$.',
      format: 'Number format',
      formatHint: 'e.g. KH{YYYY}{MM}-{0000}; {0000} is the sequence.',
      defaultValue: 'Default',
      formula: 'Formula (computed field)',
      formulaHint: 'e.g. add_months(delivered_on, warranty_months)',
      visibleIf: 'Visible if',
      requiredIf: 'Required if',
      exprHint: 'An expression, e.g. stage == \'lost\'',
      sectionBasics: 'Basics',
      sectionFlags: 'Flags',
      sectionType: 'Type settings',
      sectionRules: 'Default and rules',
      defText: 'An expression; quote text: \'unclassified\'',
      defInteger: 'A whole number, or an expression',
      defDecimal: 'A number such as 12.50, or an expression',
      defBoolean: 'true or false, or an expression',
      defDate: 'YYYY-MM-DD, or an expression such as add_days(today(), 30)',
      defDatetime: 'RFC 3339 with an offset, or now()',
      defSelect: 'An option value, or an expression',
      defMultiSelect: 'A JSON list of option values, e.g. ["a","b"]',
      defId: 'An id, or an expression such as owner',
      noDefault: 'This type takes no default.',
      stages: 'Stages',
      noPipeline: 'This entity has no pipeline. Add a stage to create one.',
      addStage: '+ Add stage',
      probability: 'Probability %',
      requiredFields: 'Required to enter',
      won: 'Won',
      lost: 'Lost',
      none: 'none',
      transitions: 'Transitions',
      transForward: 'Forward only (default)',
      transAny: 'Between any stages',
      transList: 'Listed moves',
      from: 'From',
      to: 'To',
      roles: 'Roles',
      addTransition: '+ Add transition',
      removePipeline: 'Remove pipeline',
      removePipelineConfirm: 'Remove the pipeline? Publishing archives the stage column.',
      removeStageConfirm: 'Remove the stage "{name}"?',
      layout: 'Layout',
      noLayout: 'No layout: the form lists every field in field order.',
      addLayout: 'Create a layout',
      removeLayout: 'Remove layout',
      removeLayoutConfirm: 'Remove the layout? The form will list every field in field order.',
      sectionLabel: 'Section label',
      columns: 'Columns',
      addSection: '+ Add section',
      unplaced: 'Fields not on the form',
      unplacedEmpty: 'Every field is on the form.',
      dropHere: 'Drop fields here',
      removeFromSection: 'Take off the form',
      settings: 'Settings',
      titleField: 'Title field',
      followup: 'Follow-up cycle',
      followupEnable: 'Follow-up cycle',
      followupField: 'Select field deciding the cycle',
      followupDays: 'Follow up every N days',
      activity: 'Activity entity (what counts as a contact)',
      activityField: 'Its reference field to this entity',
      pool: 'Public pool',
      poolEnable: 'Public pool',
      reclaimAfter: 'Back to the pool after N days without contact',
      claimLimit: 'Claims per user per day',
      holdLimit: 'Records a user may hold (no claims beyond)',
      duplicateCheck: 'Duplicate check',
      duplicateEnable: 'Check duplicates on create',
      duplicateBlock: 'Refuse certain duplicates',
      forceRoles: 'Roles that may force a duplicate',
      addRole: '+ New role',
      noRoles: 'No roles yet.',
      roleKey: 'Role key',
      roleLabel: 'Role label',
      roleAdmin: 'Administrator (may use the designer)',
      deleteRole: 'Delete role',
      deleteRoleConfirm: 'Delete the role "{name}"?',
      permissions: 'Permissions',
      entity: 'Entity',
      field: 'Field',
      scope: 'Scope',
      denyRead: 'Hidden fields',
      denyWrite: 'Read-only fields',
      all: 'all',
      clear: 'clear',
      act_create: 'create', act_read: 'read', act_update: 'update', act_delete: 'delete',
      act_export: 'export', act_import: 'import', act_assign: 'assign',
      scope_own: 'own', scope_department: 'department', scope_subordinates: 'subordinates', scope_all: 'all',
      roleReports: 'Reports and dashboards this role may run',
      roleReportsHint: 'A report without roles may be run by everyone who may read its entity.',
      dashboards: 'Dashboards',
      addFlow: '+ New flow',
      noFlows: 'No approval flows yet.',
      flowKey: 'Flow key',
      flowLabel: 'Flow label',
      deleteFlow: 'Delete flow',
      deleteFlowConfirm: 'Delete the flow "{name}"?',
      trigger: 'Trigger',
      triggerOn: 'Starts on',
      noTrigger: 'nothing (manual)',
      on_submit: 'submit', on_create: 'create', on_update: 'update', on_stage_enter: 'entering a stage',
      stage: 'Stage',
      when: 'When',
      steps: 'Steps',
      stepKey: 'Step key',
      approvers: 'Approvers',
      appr_role: 'role', appr_user: 'user', appr_manager_of: 'manager of', appr_field: 'user in field',
      submitter: 'the submitter',
      mode: 'Mode',
      mode_any: 'any approver', mode_all: 'all approvers',
      addStep: '+ Add step',
      onApprove: 'On approve',
      onReject: 'On reject',
      setStage: 'Move to stage',
      setFields: 'Set fields',
      addSet: '+ Set a field',
      value: 'Value',
      notifyCc: 'Copy (cc) roles',
      reports: 'Reports',
      addReport: '+ New report',
      addDashboard: '+ New dashboard',
      noReports: 'No reports yet.',
      noDashboards: 'No dashboards yet.',
      reportKey: 'Report key',
      reportLabel: 'Report label',
      deleteReport: 'Delete report',
      deleteReportConfirm: 'Delete the report "{name}"?',
      kind: 'Kind',
      kind_table: 'table', kind_funnel: 'funnel', kind_forecast: 'forecast', kind_pivot: 'pivot', kind_comparison: 'comparison',
      chart: 'Chart',
      chart_table: 'table', chart_bar: 'bar', chart_line: 'line', chart_pie: 'pie', chart_funnel: 'funnel',
      compare: 'Compare with',
      period_month: 'month', period_quarter: 'quarter', period_year: 'year',
      limit: 'Row limit',
      groupBy: 'Group by',
      bucket: 'Bucket',
      bucket_day: 'day', bucket_week: 'week', bucket_month: 'month', bucket_quarter: 'quarter', bucket_year: 'year',
      addGroup: '+ Add grouping',
      measures: 'Measures',
      fn: 'Function',
      fn_count: 'count', fn_count_distinct: 'count distinct', fn_sum: 'sum', fn_avg: 'average', fn_min: 'min', fn_max: 'max',
      addMeasure: '+ Add measure',
      sort: 'Sort',
      desc: 'descending',
      addSort: '+ Add sort key',
      filter: 'Filter (JSON)',
      filterHint: 'e.g. {"field": "stage", "op": "eq", "value": "signed"}',
      filterInvalid: 'Not valid JSON: {message}',
      reportRoles: 'Roles that may run it',
      dashboardKey: 'Dashboard key',
      dashboardLabel: 'Dashboard label',
      dashboardReports: 'Reports on the dashboard',
      addToDashboard: 'Add a report…',
      deleteDashboard: 'Delete dashboard',
      deleteDashboardConfirm: 'Delete the dashboard "{name}"?',
      defaultChoice: '(default)',
      choose: '(choose)',
      errorsTitle: 'Publishing was refused: {count} problem(s)',
      errorTitle: 'Something went wrong',
      packageRoot: '(the package)',
      planTitle: 'Publishing plan',
      planVersion: 'Current version {version}; publishing makes a new version.',
      planNoChange: 'Same as the published metadata: nothing to publish.',
      planNoSql: 'Metadata only: no database changes.',
      planSteps: '{count} database step(s):',
      apply: 'Apply',
      applying: 'Publishing…',
      cancel: 'Cancel',
      published: 'Published: version ',
      publishedNoChange: 'Nothing changed; still version ',
      sql: 'SQL',
      op_create_table: 'create table', op_rename_table: 'rename table', op_archive_table: 'archive table', op_restore_table: 'restore table',
      op_add_column: 'add column', op_rename_column: 'rename column', op_archive_column: 'archive column', op_restore_column: 'restore column',
      op_convert_column: 'convert column', op_add_index: 'add index', op_drop_index: 'drop index', op_rename_index: 'rename index',
      op_rename_sequence: 'rename sequence',
      staleHint: 'Changed since; publish again to see the plan.',
      type_text: 'text', type_long_text: 'long text', type_integer: 'integer', type_decimal: 'decimal',
      type_boolean: 'yes/no', type_date: 'date', type_datetime: 'date and time', type_select: 'select',
      type_multi_select: 'multi-select', type_reference: 'reference', type_user: 'user', type_email: 'email',
      type_phone: 'phone', type_url: 'URL', type_attachment: 'attachment', type_auto_number: 'auto number',
    },
  };

  function t(key, vars) {
    let s = I18N[LANG][key];
    if (s === undefined) s = I18N.en[key];
    if (s === undefined) s = key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  // ---------------------------------------------------------------- model constants

  const TYPES = ['text', 'long_text', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'select',
    'multi_select', 'reference', 'user', 'email', 'phone', 'url', 'attachment', 'auto_number'];
  const TEXTLIKE = ['text', 'long_text', 'email', 'phone', 'url'];
  const ACTIONS = ['create', 'read', 'update', 'delete', 'export', 'import', 'assign'];
  const SCOPES = ['own', 'department', 'subordinates', 'all'];
  const TRIGGERS = ['submit', 'create', 'update', 'stage_enter'];
  const APPROVER_KINDS = ['role', 'user', 'manager_of', 'field'];
  const REPORT_KINDS = ['table', 'funnel', 'forecast', 'pivot', 'comparison'];
  const CHARTS = ['table', 'bar', 'line', 'pie', 'funnel'];
  const PERIODS = ['month', 'quarter', 'year'];
  const BUCKETS = ['day', 'week', 'month', 'quarter', 'year'];
  const MEASURE_FNS = ['count', 'count_distinct', 'sum', 'avg', 'min', 'max'];
  const PLAN_OPS = ['create_table', 'rename_table', 'archive_table', 'restore_table', 'add_column',
    'rename_column', 'archive_column', 'restore_column', 'convert_column', 'add_index', 'drop_index',
    'rename_index', 'rename_sequence'];

  /** Which field options apply to which type (docs/metadata.md, "Fields"). */
  function allows(type, opt) {
    switch (opt) {
      case 'unique': return !['long_text', 'multi_select', 'attachment', 'boolean'].includes(type);
      case 'default': return !['auto_number', 'attachment'].includes(type);
      case 'min': case 'max': return type === 'integer' || type === 'decimal';
      case 'max_length': case 'pattern': return TEXTLIKE.includes(type);
      case 'options': return type === 'select' || type === 'multi_select';
      case 'target': return type === 'reference';
      case 'scale': return type === 'decimal';
      case 'formula': return !['auto_number', 'attachment', 'multi_select'].includes(type);
      case 'format': return type === 'auto_number';
      default: return true;
    }
  }
  const TYPE_OPTIONS = ['unique', 'default', 'min', 'max', 'max_length', 'pattern', 'options', 'target', 'scale', 'formula', 'format'];

  // ---------------------------------------------------------------- state

  const S = {
    pkg: null,            // the package being edited (the object GET /api/meta returned)
    published: '',        // JSON of the package as loaded
    version: null,        // current published version, when known
    view: 'entity',       // 'entity' | 'roles' | 'flows' | 'reports'
    tab: 'fields',        // entity tab: fields | stages | layout | settings
    entity: null,         // selected entity object
    field: null,          // field open in the editor
    role: null, flow: null, report: null, dashboard: null,
    errors: [],           // [{path, message, obj, rest}] from the last refused publish
    general: [],          // messages without a path
    archivedFields: new Map(),   // entity object -> [{field, section}] archived in this session
    archivedEntities: [],        // entity objects archived in this session
    pastFields: {},              // entity key -> [field keys] archived by earlier versions
    pastTables: [],              // entity keys archived by earlier versions
    planBody: null,              // JSON text of the package the shown plan was computed for
    busy: false,
  };
  let publishedKey = new WeakMap(); // entity/field object -> its key in the published package
  let refKey = new WeakMap();       // keyed object -> the key other parts of the package use for it
  const typeStash = new WeakMap();  // field -> options removed by a type change (restored on the way back)
  const archivedPerms = new WeakMap(); // archived entity -> [{role, perm}] taken out with it
  let uid = 0;
  let sortedAt = 0;

  const api = (method, path, body) => window.metacrm.api(method, path, body);

  // ---------------------------------------------------------------- DOM helpers

  const LATE_PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'open']);

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    const late = [];
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (LATE_PROPS.has(k)) late.push([k, v]);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    for (const [k, v] of late) el[k] = v;
    return el;
  }

  function btn(text, onclick, o = {}) {
    return h('button', {
      type: 'button', id: o.id, class: 'dz-btn' + (o.cls ? ' ' + o.cls : ''), title: o.title,
      'aria-label': o.aria || o.title, disabled: o.disabled, 'data-fk': o.fk, onclick,
    }, text);
  }

  function iconBtn(symbol, title, onclick, cls) {
    return btn(symbol, onclick, { title, cls: 'dz-icon' + (cls ? ' ' + cls : '') });
  }

  function fieldRow(labelText, control, hint, cls) {
    return h('div', { class: 'dz-field' + (cls ? ' ' + cls : '') },
      h('label', {}, h('span', { class: 'dz-label' }, labelText), control),
      hint ? h('small', { class: 'dz-hint' }, hint) : null);
  }

  function checkRow(labelText, control, hint) {
    return h('div', { class: 'dz-field dz-field-check' },
      h('label', { class: 'dz-check' }, control, h('span', {}, labelText)),
      hint ? h('small', { class: 'dz-hint' }, hint) : null);
  }

  function handle() {
    return h('span', { class: 'dz-handle handle', title: t('dragHint'), 'aria-hidden': 'true' }, '⋮⋮');
  }

  function pj(base, ...segs) {
    let p = base;
    for (const s of segs) p = typeof s === 'number' ? `${p}[${s}]` : (p ? `${p}.${s}` : s);
    return p;
  }

  function move(arr, from, to) {
    if (from === to || from < 0 || to < 0 || from >= arr.length || to >= arr.length) return false;
    const [x] = arr.splice(from, 1);
    arr.splice(to, 0, x);
    return true;
  }

  /** Sets an optional list: an empty list removes the key (as GET /api/meta writes it). */
  function setList(obj, key, list) {
    if (list && list.length) obj[key] = list; else delete obj[key];
  }

  function uniqueKey(base, taken) {
    const set = new Set(taken);
    if (!set.has(base)) return base;
    for (let i = 2; ; i++) if (!set.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  function sortable(el, opts) {
    if (!window.Sortable || !el) return null;
    return window.Sortable.create(el, Object.assign({
      animation: 150,
      // Native HTML5 drag and drop (works with mouse, touch-capable browsers and
      // automation that drags elements).
      ghostClass: 'dz-ghost',
      chosenClass: 'dz-chosen',
      filter: 'input, select, textarea, button, .dz-nodrag',
      preventOnFilter: false,
    }, opts, {
      onEnd(evt) {
        sortedAt = Date.now();
        if (opts.onEnd) opts.onEnd(evt);
      },
    }));
  }

  /** Runs a re-render and puts the focus back on the same control. */
  function preserveFocus(fn) {
    const a = document.activeElement;
    let mark = null;
    if (a && a !== document.body && root.contains(a)) {
      mark = {
        id: a.id, fk: a.getAttribute('data-fk'), path: a.getAttribute('data-path'),
        name: a.getAttribute('name'),
        sel: typeof a.selectionStart === 'number' ? a.selectionStart : null,
      };
    }
    fn();
    if (!mark) return;
    let target = null;
    if (mark.id) target = document.getElementById(mark.id);
    if (!target && mark.fk) target = [...root.querySelectorAll('[data-fk]')].find((el) => el.getAttribute('data-fk') === mark.fk);
    if (!target && mark.path) {
      target = [...root.querySelectorAll('[data-path]')].find((el) => el.getAttribute('data-path') === mark.path
        && el.getAttribute('name') === mark.name && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName));
    }
    if (target) {
      target.focus({ preventScroll: true });
      if (mark.sel !== null && typeof target.setSelectionRange === 'function') {
        try { target.setSelectionRange(mark.sel, mark.sel); } catch (_) { /* not a text input */ }
      }
    }
  }

  // ---------------------------------------------------------------- bound controls

  function inputText(obj, key, o = {}) {
    const cur = obj[key];
    const el = h(o.multiline ? 'textarea' : 'input', {
      type: o.multiline ? null : 'text', name: o.name, 'data-path': o.path, 'data-fk': o.fk,
      placeholder: o.placeholder, list: o.list, rows: o.multiline ? (o.rows || 2) : null,
      class: 'dz-input' + (o.code ? ' dz-code' : '') + (o.cls ? ' ' + o.cls : ''),
      autocomplete: 'off', spellcheck: o.code ? 'false' : null,
      value: cur === undefined || cur === null ? '' : String(cur),
    });
    el.addEventListener('input', () => {
      const v = el.value;
      if (v === '' && !o.keepEmpty) delete obj[key]; else obj[key] = v;
      if (o.onInput) o.onInput(v);
      changed(o.path);
    });
    return el;
  }

  function inputNumber(obj, key, o = {}) {
    const cur = obj[key];
    const el = h('input', {
      type: 'number', name: o.name, 'data-path': o.path, 'data-fk': o.fk, min: o.min, max: o.max,
      step: o.integer ? 1 : 'any', placeholder: o.placeholder, class: 'dz-input dz-num',
      value: cur === undefined || cur === null ? '' : String(cur),
    });
    el.addEventListener('input', () => {
      if (el.validity && el.validity.badInput) return;
      const raw = el.value.trim();
      if (raw === '') {
        delete obj[key];
      } else {
        const n = Number(raw);
        if (!Number.isFinite(n)) return;
        obj[key] = n;
      }
      if (o.onInput) o.onInput();
      changed(o.path);
    });
    return el;
  }

  function inputCheck(obj, key, o = {}) {
    const el = h('input', {
      type: 'checkbox', name: o.name, 'data-path': o.path, 'data-fk': o.fk, checked: !!obj[key],
    });
    el.addEventListener('change', () => {
      if (el.checked) obj[key] = true;
      else if (o.keepFalse) obj[key] = false;
      else delete obj[key];
      if (o.onChange) o.onChange(el.checked);
      changed(o.path);
    });
    return el;
  }

  /** choices: [[value, label]]. With o.empty, the empty choice removes the key. */
  function inputSelect(obj, key, choices, o = {}) {
    const cur = obj[key] === undefined || obj[key] === null ? '' : String(obj[key]);
    const opts = [];
    let found = false;
    if (o.empty !== undefined) {
      opts.push(h('option', { value: '' }, o.empty));
      if (cur === '') found = true;
    }
    for (const [v, l] of choices) {
      opts.push(h('option', { value: v }, l));
      if (String(v) === cur) found = true;
    }
    if (!found) opts.push(h('option', { value: cur }, cur === '' ? t('choose') : `${cur} ?`));
    const el = h('select', {
      name: o.name, 'data-path': o.path, 'data-fk': o.fk, class: 'dz-input', disabled: o.disabled, value: cur,
    }, opts);
    el.addEventListener('change', () => {
      const v = el.value;
      if (v === '' && o.empty !== undefined) delete obj[key];
      else obj[key] = o.number ? Number(v) : v;
      if (o.onChange) o.onChange(v);
      changed(o.path);
    });
    return el;
  }

  /** A multi-choice picker for an optional list of keys. choices: [[value, label]]. */
  function keysPicker(obj, key, choices, o = {}) {
    const known = new Set(choices.map((c) => c[0]));
    const all = choices.concat((obj[key] || []).filter((v) => !known.has(v)).map((v) => [v, `${v} ?`]));
    const labelOf = new Map(all);
    const summaryText = () => {
      const cur = obj[key] || [];
      return cur.length ? cur.map((v) => labelOf.get(v) || v).join('、') : (o.emptyText || t('none'));
    };
    const summary = h('summary', { title: o.title }, summaryText());
    const list = h('div', { class: 'dz-picker-list' });
    for (const [v, l] of all) {
      const cb = h('input', { type: 'checkbox', name: o.name, value: v, checked: (obj[key] || []).includes(v) });
      cb.addEventListener('change', () => {
        const set = new Set(obj[key] || []);
        if (cb.checked) set.add(v); else set.delete(v);
        setList(obj, key, all.map((c) => c[0]).filter((x) => set.has(x)));
        summary.textContent = summaryText();
        if (o.onChange) o.onChange();
        changed(o.path);
      });
      list.append(h('label', { class: 'dz-check' }, cb, h('span', {}, l)));
    }
    if (!all.length) list.append(h('span', { class: 'dz-muted' }, t('none')));
    return h('details', { class: 'dz-picker', 'data-path': o.path, 'data-fk': o.fk }, summary, list);
  }

  // ---------------------------------------------------------------- package accessors

  const ents = () => (S.pkg.entities || (S.pkg.entities = []));
  const list = (obj, key) => obj[key] || [];
  const entLabel = (e) => (e.label ? e.label : e.key) || '—';
  const fieldLabel = (f) => (f.label ? f.label : f.key) || '—';
  const entByKey = (k) => ents().find((e) => e.key === k) || null;
  const entChoices = () => ents().map((e) => [e.key, `${entLabel(e)} (${e.key})`]);
  const fieldChoices = (e, pred) => list(e || {}, 'fields').filter((f) => !pred || pred(f)).map((f) => [f.key, `${fieldLabel(f)} (${f.key})`]);
  const roleChoices = () => list(S.pkg, 'roles').map((r) => [r.key, `${r.label || r.key} (${r.key})`]);
  const stageChoices = (e) => list((e && e.pipeline) || {}, 'stages').map((s) => [s.key, `${s.label || s.key} (${s.key})`]);
  const choicesOf = (values, prefix) => values.map((v) => [v, t(prefix + v)]);

  function entIndex(e) { return ents().indexOf(e); }

  // ---------------------------------------------------------------- key renames
  //
  // Keys are referenced across the package (layout fields, required_fields, deny lists,
  // flows, reports). When a key changes, the references follow. A key that is
  // momentarily equal to a sibling's key is not propagated (that would merge them).

  function renameIn(arr, old, nu) {
    if (!Array.isArray(arr)) return arr;
    return arr.map((x) => (x === old ? nu : x));
  }

  function renameMapKey(obj, old, nu) {
    if (!obj || !(old in obj) || nu in obj) return;
    const entries = Object.entries(obj);
    for (const k of Object.keys(obj)) delete obj[k];
    for (const [k, v] of entries) obj[k === old ? nu : k] = v;
  }

  function renameColumn(c, old, nu) {
    if (typeof c !== 'string') return c;
    if (c === old) return nu;
    if (c.startsWith(old + '.')) return nu + c.slice(old.length);
    const i = c.indexOf(':');
    if (i > 0 && c.slice(i + 1) === old) return c.slice(0, i + 1) + nu;
    return c;
  }

  const RENAME = {
    entity(old, nu) {
      for (const e of ents()) {
        for (const f of list(e, 'fields')) if (f.type === 'reference' && f.target === old) f.target = nu;
        const act = e.followup && e.followup.activity;
        if (act && act.entity === old) act.entity = nu;
      }
      for (const r of list(S.pkg, 'roles')) for (const p of list(r, 'permissions')) if (p.entity === old) p.entity = nu;
      for (const f of list(S.pkg, 'flows')) if (f.entity === old) f.entity = nu;
      for (const r of list(S.pkg, 'reports')) if (r.entity === old) r.entity = nu;
    },
    field(old, nu, ent) {
      const ek = ent.key;
      if (ent.title_field === old) ent.title_field = nu;
      if (ent.layout) for (const s of list(ent.layout, 'sections')) s.fields = renameIn(s.fields, old, nu);
      if (ent.pipeline) {
        for (const st of list(ent.pipeline, 'stages')) {
          if (st.required_fields) st.required_fields = renameIn(st.required_fields, old, nu);
        }
      }
      if (ent.followup && ent.followup.field === old) ent.followup.field = nu;
      for (const e of ents()) {
        const a = e.followup && e.followup.activity;
        if (a && a.entity === ek && a.field === old) a.field = nu;
      }
      for (const r of list(S.pkg, 'roles')) {
        for (const p of list(r, 'permissions')) {
          if (p.entity !== ek) continue;
          if (p.deny_read) p.deny_read = renameIn(p.deny_read, old, nu);
          if (p.deny_write) p.deny_write = renameIn(p.deny_write, old, nu);
        }
      }
      for (const fl of list(S.pkg, 'flows')) {
        if (fl.entity !== ek) continue;
        for (const st of list(fl, 'steps')) if (st.approvers && st.approvers.field === old) st.approvers.field = nu;
        for (const which of ['on_approve', 'on_reject']) if (fl[which] && fl[which].set) renameMapKey(fl[which].set, old, nu);
      }
      for (const r of list(S.pkg, 'reports')) {
        let col = null;
        if (r.entity === ek) {
          col = (c) => renameColumn(c, old, nu);
        } else {
          // One hop through a reference to this entity: `customer.region`.
          const re = entByKey(r.entity);
          const refs = new Set(list(re || {}, 'fields').filter((f) => f.type === 'reference' && f.target === ek).map((f) => f.key));
          if (!refs.size) continue;
          col = (c) => {
            if (typeof c !== 'string') return c;
            const m = /^((?:[a-z_]+:)?)([^.]+)\.(.+)$/.exec(c);
            return m && refs.has(m[2]) && m[3] === old ? `${m[1]}${m[2]}.${nu}` : c;
          };
        }
        for (const g of list(r, 'group_by')) g.field = col(g.field);
        for (const m of list(r, 'measures')) if (m.field) m.field = col(m.field);
        for (const s of list(r, 'sort')) s.field = col(s.field);
      }
    },
    stage(old, nu, ent) {
      const pl = ent.pipeline;
      if (pl && Array.isArray(pl.transitions)) {
        for (const tr of pl.transitions) {
          if (tr.from === old) tr.from = nu;
          if (tr.to === old) tr.to = nu;
        }
      }
      for (const fl of list(S.pkg, 'flows')) {
        if (fl.entity !== ent.key) continue;
        if (fl.trigger && fl.trigger.stage === old) fl.trigger.stage = nu;
        for (const which of ['on_approve', 'on_reject']) if (fl[which] && fl[which].stage === old) fl[which].stage = nu;
      }
    },
    role(old, nu) {
      for (const e of ents()) {
        if (e.pipeline && Array.isArray(e.pipeline.transitions)) {
          for (const tr of e.pipeline.transitions) if (tr.roles) tr.roles = renameIn(tr.roles, old, nu);
        }
        if (e.duplicate_check && e.duplicate_check.force_roles) {
          e.duplicate_check.force_roles = renameIn(e.duplicate_check.force_roles, old, nu);
        }
      }
      for (const fl of list(S.pkg, 'flows')) {
        for (const st of list(fl, 'steps')) if (st.approvers && st.approvers.role === old) st.approvers.role = nu;
        if (fl.notify && fl.notify.cc) fl.notify.cc = renameIn(fl.notify.cc, old, nu);
      }
      for (const r of list(S.pkg, 'reports')) if (r.roles) r.roles = renameIn(r.roles, old, nu);
      for (const d of list(S.pkg, 'dashboards')) if (d.roles) d.roles = renameIn(d.roles, old, nu);
    },
    report(old, nu) {
      for (const d of list(S.pkg, 'dashboards')) if (d.reports) d.reports = renameIn(d.reports, old, nu);
    },
    option(old, nu, ctx) {
      const { ent, field } = ctx;
      if (ent.followup && ent.followup.field === field.key) renameMapKey(ent.followup.days, old, nu);
      if (field.default === old) field.default = nu;
      else if (Array.isArray(field.default)) field.default = renameIn(field.default, old, nu);
    },
    none() {},
  };

  /** Changes obj[prop] and carries references (and an automatic renamed_from) along. */
  function setKey(obj, siblings, kind, ctx, value, prop = 'key') {
    const old = refKey.has(obj) ? refKey.get(obj) : obj[prop];
    obj[prop] = value;
    const pk = publishedKey.get(obj);
    if (pk !== undefined) {
      if (value !== pk) obj.renamed_from = pk;
      else if (obj.renamed_from === pk) delete obj.renamed_from;
    }
    if (old === value || !old || !value) return;
    const clash = (k) => siblings.some((s) => s !== obj && s[prop] === k);
    if (clash(old) || clash(value)) return;
    RENAME[kind](old, value, ctx);
    refKey.set(obj, value);
  }

  function keyInput(obj, siblings, kind, ctx, o) {
    const prop = o.prop || 'key';
    if (!refKey.has(obj)) refKey.set(obj, obj[prop]);
    const path = pj(o.path, prop);
    const el = h('input', {
      type: 'text', name: o.name, 'data-path': path, 'data-fk': o.fk, class: 'dz-input dz-code',
      autocomplete: 'off', spellcheck: 'false', placeholder: o.placeholder, pattern: o.free ? null : '[a-z][a-z0-9_]*',
      value: obj[prop] === undefined || obj[prop] === null ? '' : String(obj[prop]),
    });
    el.addEventListener('input', () => {
      setKey(obj, siblings(), kind, ctx, el.value, prop);
      if (o.onInput) o.onInput(el.value);
      changed(path);
    });
    return el;
  }

  // ---------------------------------------------------------------- errors

  function parsePath(path) {
    const segs = [];
    const re = /\[(\d+)\]|\.?([^.[\]]+)/g;
    let m;
    while ((m = re.exec(path)) !== null) segs.push(m[1] !== undefined ? Number(m[1]) : m[2]);
    return segs;
  }

  function segsToPath(segs) {
    let p = '';
    for (const s of segs) p = pj(p, s);
    return p;
  }

  /** The deepest object of the package the path reaches, and what is left of the path. */
  function resolvePath(path) {
    const segs = parsePath(path || '');
    let cur = S.pkg;
    let i = 0;
    for (; i < segs.length; i++) {
      const next = cur[segs[i]];
      if (next && typeof next === 'object') cur = next; else break;
    }
    return { obj: cur, rest: segs.slice(i) };
  }

  let pathIndex = null;
  function indexPaths() {
    if (pathIndex) return pathIndex;
    const idx = new WeakMap();
    const walk = (v, segs) => {
      if (!v || typeof v !== 'object' || idx.has(v)) return;
      idx.set(v, segs);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, segs.concat(i)));
      else for (const k of Object.keys(v)) walk(v[k], segs.concat(k));
    };
    walk(S.pkg, []);
    pathIndex = idx;
    return idx;
  }

  /** Where an error's object sits now (after reorders), or null when it is gone. */
  function currentPath(err) {
    const base = indexPaths().get(err.obj);
    if (base === undefined) return null;
    return segsToPath(base.concat(err.rest));
  }

  function setErrors(problems) {
    S.errors = problems.map((p) => Object.assign({ path: p.path, message: p.message }, resolvePath(p.path)));
    S.general = [];
    renderErrors();
  }

  function setGeneral(message) {
    S.errors = [];
    S.general = [message];
    renderErrors();
  }

  function clearErrors() {
    S.errors = [];
    S.general = [];
    renderErrors();
  }

  function showError(err) {
    const details = err && err.details;
    if (Array.isArray(details) && details.length && details.every((d) => d && typeof d.path === 'string')) {
      setErrors(details);
      const first = currentPath(S.errors[0]);
      const el = document.getElementById('errors');
      if (el) el.scrollIntoView({ block: 'nearest' });
      return first;
    }
    const msg = (err && (err.message || err.code)) || String(err);
    setGeneral(msg);
    return null;
  }

  /** The view an error path belongs to, for navigation and badges. */
  function viewOf(path) {
    const segs = parsePath(path || '');
    const [a, i, b, j] = segs;
    if (a === 'entities' && typeof i === 'number') {
      let tab = 'fields';
      if (b === 'pipeline') tab = 'stages';
      else if (b === 'layout') tab = 'layout';
      else if (['title_field', 'renamed_from', 'followup', 'pool', 'duplicate_check'].includes(b)) tab = 'settings';
      return { view: 'entity', entity: i, tab, field: b === 'fields' && typeof j === 'number' ? j : null };
    }
    if (a === 'roles' && typeof i === 'number') return { view: 'roles', index: i };
    if (a === 'flows' && typeof i === 'number') return { view: 'flows', index: i };
    if (a === 'reports' && typeof i === 'number') return { view: 'reports', index: i };
    if (a === 'dashboards' && typeof i === 'number') return { view: 'reports', dashboard: i };
    return null;
  }

  function navigate(path) {
    const v = viewOf(path);
    if (!v) return;
    if (v.view === 'entity') {
      const e = ents()[v.entity];
      if (!e) return;
      S.view = 'entity'; S.entity = e; S.tab = v.tab;
      S.field = v.field !== null ? (list(e, 'fields')[v.field] || null) : S.field && e.fields.includes(S.field) ? S.field : null;
    } else if (v.view === 'roles') {
      S.view = 'roles'; S.role = list(S.pkg, 'roles')[v.index] || S.role;
    } else if (v.view === 'flows') {
      S.view = 'flows'; S.flow = list(S.pkg, 'flows')[v.index] || S.flow;
    } else if (v.view === 'reports') {
      S.view = 'reports';
      if (v.dashboard !== undefined) { S.dashboard = list(S.pkg, 'dashboards')[v.dashboard] || null; S.report = null; } else { S.report = list(S.pkg, 'reports')[v.index] || null; S.dashboard = null; }
    }
    renderAll();
    const target = findTarget(path);
    if (target) {
      target.el.scrollIntoView({ block: 'center', behavior: 'smooth' });
      if (/^(INPUT|SELECT|TEXTAREA)$/.test(target.el.tagName)) target.el.focus({ preventScroll: true });
      else if (target.el.tagName === 'DETAILS') target.el.open = true;
    }
  }

  const visible = (el) => el.getClientRects().length > 0;

  /** The element editing `path` (or the nearest enclosing thing shown), last visible wins. */
  function findTarget(path, byPath) {
    if (!byPath) {
      byPath = new Map();
      for (const el of body.querySelectorAll('[data-path]')) {
        if (el.classList.contains('error')) continue;
        const p = el.getAttribute('data-path');
        if (!byPath.has(p)) byPath.set(p, []);
        byPath.get(p).push(el);
      }
    }
    let segs = parsePath(path);
    for (;;) {
      const p = segsToPath(segs);
      const els = (byPath.get(p) || []).filter(visible);
      if (els.length) return { el: els[els.length - 1], exact: segs.length === parsePath(path).length, at: p };
      if (!segs.length) return null;
      segs = segs.slice(0, -1);
    }
  }

  function renderErrors() {
    pathIndex = null;
    for (const el of body.querySelectorAll('.dz-inline-error, .dz-error-row')) el.remove();
    for (const el of root.querySelectorAll('.dz-has-error')) el.classList.remove('dz-has-error');

    const current = [];
    for (const e of S.errors) {
      const p = currentPath(e);
      if (p !== null) current.push({ path: p, message: e.message });
    }

    // Summary at the top.
    errorsBox.replaceChildren();
    if (!current.length && !S.general.length) {
      errorsBox.hidden = true;
    } else {
      errorsBox.hidden = false;
      const ul = h('ul', {});
      for (const m of S.general) ul.append(h('li', { class: 'error' }, m));
      for (const e of current) {
        const link = h('a', { href: '#', class: 'dz-error-link' }, h('code', {}, e.path || t('packageRoot')), ' ', e.message);
        link.addEventListener('click', (ev) => { ev.preventDefault(); navigate(e.path); });
        ul.append(h('li', { class: 'error', 'data-path': e.path }, link));
      }
      errorsBox.append(
        h('h2', {}, current.length ? t('errorsTitle', { count: current.length }) : t('errorTitle')),
        ul);
    }

    // Inline, next to the element editing the thing.
    const byPath = new Map();
    for (const el of body.querySelectorAll('[data-path]')) {
      const p = el.getAttribute('data-path');
      if (!byPath.has(p)) byPath.set(p, []);
      byPath.get(p).push(el);
    }
    for (const e of current) {
      const target = findTarget(e.path, byPath);
      if (target && target.at !== '') placeInline(target, e);
      markBadges(e.path);
    }
  }

  function placeInline(target, e) {
    const { el } = target;
    const rest = target.exact ? '' : e.path.slice(target.at.length).replace(/^\./, '');
    const msg = h('div', { class: 'error dz-inline-error', 'data-path': e.path, role: 'alert' },
      rest ? h('code', {}, rest) : null, rest ? ' ' : null, e.message);
    el.classList.add('dz-has-error');
    const tag = el.tagName;
    const grid = el.closest('.dz-option-grid');
    if (grid && grid !== el) {
      const rowEl = el.closest('[data-row]');
      const row = rowEl ? rowEl.getAttribute('data-row') : null;
      let anchor = [...grid.querySelectorAll('.dz-option-end')].find((x) => x.getAttribute('data-row') === row);
      if (anchor) {
        while (anchor.nextElementSibling && anchor.nextElementSibling.classList.contains('dz-inline-error')) anchor = anchor.nextElementSibling;
        msg.classList.add('dz-grid-error');
        anchor.after(msg);
        return;
      }
    }
    if (tag === 'TR') {
      const cols = el.children.length || 1;
      el.after(h('tr', { class: 'dz-error-row' }, h('td', { colspan: cols }, msg)));
    } else if (/^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(tag)) {
      const wrap = el.closest('.dz-field') || el.closest('td') || el.parentElement;
      wrap.append(msg);
    } else if (/^(TD|LI|LABEL|SPAN|A|DETAILS|CODE)$/.test(tag)) {
      el.append(msg);
    } else if (/^(TABLE|TBODY|UL|OL)$/.test(tag)) {
      const anchor = tag === 'TBODY' ? el.closest('table') : el;
      anchor.before(msg);
    } else {
      const head = el.querySelector(':scope > h2, :scope > h3, :scope > h4, :scope > legend, :scope > .dz-section-head');
      if (head) head.after(msg); else el.prepend(msg);
    }
  }

  function markBadges(path) {
    const v = viewOf(path);
    if (!v) return;
    if (v.view === 'entity') {
      const e = ents()[v.entity];
      if (!e) return;
      for (const a of side.querySelectorAll('a[data-entity]')) if (a.getAttribute('data-entity') === e.key) a.classList.add('dz-has-error');
      if (e === S.entity) {
        const tab = tabs.querySelector(`a[data-tab="${v.tab}"]`);
        if (tab) tab.classList.add('dz-has-error');
      }
    } else {
      const tab = tabs.querySelector(`a[data-tab="${v.view}"]`);
      if (tab) tab.classList.add('dz-has-error');
    }
  }

  // ---------------------------------------------------------------- change tracking

  let dirtyQueued = false;
  function changed(path) {
    pathIndex = null;
    if (S.planBody !== null) hidePlan(true);
    if (path !== undefined && path !== null && S.errors.length) {
      const before = S.errors.length;
      S.errors = S.errors.filter((e) => currentPath(e) !== path);
      if (S.errors.length !== before) renderErrors();
    }
    if (!dirtyQueued) {
      dirtyQueued = true;
      requestAnimationFrame(() => { dirtyQueued = false; renderStatus(); });
    }
  }

  function structural() {
    changed();
  }

  const isDirty = () => S.pkg && JSON.stringify(S.pkg) !== S.published;

  // ---------------------------------------------------------------- skeleton

  const statusEl = h('span', { class: 'dz-status', 'aria-live': 'polite' });
  const versionEl = h('span', { class: 'dz-version-label' });
  const discardBtn = btn(t('discard'), onDiscard, { id: 'discard', cls: 'dz-secondary' });
  const publishBtn = btn(t('publish'), onPublish, { id: 'publish', cls: 'dz-primary' });
  const publishedEl = h('div', { id: 'published', class: 'dz-published', role: 'status', hidden: true });
  const errorsBox = h('div', { id: 'errors', class: 'dz-errors', role: 'alert', hidden: true });
  const planBox = h('div', { id: 'plan', class: 'dz-plan', hidden: true });
  const side = h('nav', { class: 'dz-side', 'aria-label': t('entities') });
  const tabs = h('div', { class: 'dz-tabs', role: 'tablist' });
  const pane = h('div', { class: 'dz-pane' });
  const main = h('div', { class: 'dz-main' }, tabs, pane);
  const body = h('div', { class: 'dz-body' }, side, main);

  function mountSkeleton() {
    root.replaceChildren(
      h('div', { class: 'dz-bar' },
        h('h1', { class: 'dz-title' }, t('title')), versionEl, statusEl,
        h('span', { class: 'dz-spacer' }), discardBtn, publishBtn),
      publishedEl, errorsBox, planBox, body);
  }

  function renderStatus() {
    versionEl.textContent = S.version !== null ? t('version', { version: S.version }) : '';
    const dirty = isDirty();
    statusEl.textContent = dirty ? t('unsaved') : t('saved');
    statusEl.classList.toggle('dz-dirty', !!dirty);
    discardBtn.disabled = !dirty || S.busy;
    publishBtn.disabled = S.busy;
  }

  function renderAll() {
    preserveFocus(() => {
      renderSide();
      renderTabs();
      renderPane();
    });
    renderErrors();
    renderStatus();
  }

  // ---------------------------------------------------------------- side: entity list

  function renderSide() {
    const ul = h('ul', { class: 'dz-entity-list' });
    for (const e of ents()) {
      const a = h('a', {
        href: '/designer/' + encodeURIComponent(e.key || ''), 'data-entity': e.key || '',
        class: e === S.entity && S.view === 'entity' ? 'active' : null,
        'aria-current': e === S.entity && S.view === 'entity' ? 'page' : null,
      }, h('span', { class: 'dz-ent-label' }, entLabel(e)), h('small', { class: 'dz-ent-key' }, e.key || ''));
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        selectEntity(e);
      });
      ul.append(h('li', {}, a));
    }
    const parts = [h('h2', {}, t('entities')), ents().length ? ul : h('p', { class: 'dz-muted' }, t('noEntities')),
      btn(t('addEntity'), addEntity, { id: 'add-entity', cls: 'dz-add' })];

    if (S.archivedEntities.length) {
      const al = h('ul', { class: 'dz-archived' });
      for (const e of S.archivedEntities) {
        al.append(h('li', {}, h('span', {}, `${entLabel(e)} (${e.key})`), ' ',
          btn(t('restore'), () => restoreEntity(e), { cls: 'dz-small' })));
      }
      parts.push(h('h3', {}, t('archivedSession')), al);
    }
    const past = S.pastTables.filter((k) => !entByKey(k) && !S.archivedEntities.some((e) => e.key === k));
    if (past.length) {
      parts.push(h('h3', {}, t('archivedPast')),
        h('ul', { class: 'dz-archived' }, past.map((k) => h('li', {}, h('code', {}, k)))),
        h('p', { class: 'dz-hint' }, t('archivedPastHint')));
    }
    side.replaceChildren(...parts);
  }

  function selectEntity(e) {
    S.view = 'entity';
    if (S.entity !== e) S.field = null;
    S.entity = e;
    if (!['fields', 'stages', 'layout', 'settings'].includes(S.tab)) S.tab = 'fields';
    if (location.pathname.startsWith('/designer') && e.key) {
      history.replaceState(null, '', '/designer/' + encodeURIComponent(e.key));
    }
    renderAll();
  }

  function addEntity() {
    const key = uniqueKey('new_entity', ents().map((e) => e.key).concat(S.pastTables));
    const e = { key, fields: [] };
    ents().push(e);
    structural();
    S.view = 'entity'; S.entity = e; S.tab = 'fields'; S.field = null;
    renderAll();
    const input = pane.querySelector('input[name="entity-key"]');
    if (input) { input.focus(); input.select(); }
  }

  function archiveEntity(e) {
    if (!confirm(t('archiveEntityConfirm', { name: entLabel(e) }))) return;
    const i = ents().indexOf(e);
    if (i < 0) return;
    ents().splice(i, 1);
    // Its permissions go with it (they would name an unknown entity) and come back on restore.
    const perms = [];
    for (const r of list(S.pkg, 'roles')) {
      const kept = list(r, 'permissions').filter((p) => p.entity !== e.key);
      for (const p of list(r, 'permissions')) if (p.entity === e.key) perms.push({ role: r, perm: p });
      if (r.permissions) setList(r, 'permissions', kept);
    }
    archivedPerms.set(e, perms);
    if (publishedKey.has(e)) S.archivedEntities.push(e);
    structural();
    S.entity = ents()[Math.min(i, ents().length - 1)] || null;
    S.field = null;
    renderAll();
  }

  function restoreEntity(e) {
    S.archivedEntities = S.archivedEntities.filter((x) => x !== e);
    ents().push(e);
    for (const { role, perm } of archivedPerms.get(e) || []) {
      if (!list(S.pkg, 'roles').includes(role)) continue;
      if (!role.permissions) role.permissions = [];
      if (!role.permissions.some((p) => p.entity === perm.entity)) role.permissions.push(perm);
    }
    archivedPerms.delete(e);
    structural();
    selectEntity(e);
  }

  // ---------------------------------------------------------------- tabs

  const ENTITY_TABS = [['fields', 'tabFields'], ['stages', 'tabStages'], ['layout', 'tabLayout'], ['settings', 'tabSettings']];
  const GLOBAL_TABS = [['roles', 'tabRoles'], ['flows', 'tabFlows'], ['reports', 'tabReports']];

  function renderTabs() {
    const mk = ([key, label], active) => {
      const a = h('a', {
        href: '#' + key, 'data-tab': key, role: 'tab', class: active ? 'active' : null,
        'aria-selected': active ? 'true' : 'false',
      }, t(label));
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        if (ENTITY_TABS.some((x) => x[0] === key)) {
          S.view = 'entity'; S.tab = key;
          if (!S.entity && ents().length) S.entity = ents()[0];
        } else {
          S.view = key;
        }
        renderAll();
      });
      return a;
    };
    tabs.replaceChildren(
      h('span', { class: 'dz-tab-group' },
        S.entity ? h('span', { class: 'dz-tab-entity' }, entLabel(S.entity)) : null,
        ENTITY_TABS.map((x) => mk(x, S.view === 'entity' && S.tab === x[0]))),
      h('span', { class: 'dz-tab-group dz-tab-global' }, GLOBAL_TABS.map((x) => mk(x, S.view === x[0]))));
  }

  function renderPane() {
    let content;
    if (S.view === 'roles') content = renderRoles();
    else if (S.view === 'flows') content = renderFlows();
    else if (S.view === 'reports') content = renderReports();
    else if (!S.entity || !ents().includes(S.entity)) {
      S.entity = null;
      content = h('p', { class: 'dz-muted dz-empty' }, t('pickEntity'));
    } else {
      content = renderEntity(S.entity);
    }
    pane.replaceChildren(content);
  }

  /** Re-renders the pane (keeping focus) and the errors. */
  function rerender() {
    preserveFocus(() => { renderTabs(); renderPane(); });
    renderErrors();
    renderStatus();
  }

  // ---------------------------------------------------------------- entity view

  function renderEntity(ent) {
    const ei = entIndex(ent);
    const epath = `entities[${ei}]`;
    const heading = h('h2', { class: 'dz-entity-title' }, entLabel(ent));
    const head = h('div', { class: 'dz-entity-head', 'data-path': epath },
      heading,
      h('div', { class: 'dz-inline-fields' },
        fieldRow(t('entityKey'), keyInput(ent, ents, 'entity', null, {
          name: 'entity-key', path: epath,
          onInput: () => { heading.textContent = entLabel(ent); renderSide(); renderTabs(); renderErrors(); },
        })),
        fieldRow(t('entityLabel'), inputText(ent, 'label', {
          name: 'entity-label', path: pj(epath, 'label'),
          onInput: () => { heading.textContent = entLabel(ent); renderSide(); renderTabs(); renderErrors(); },
        })),
        h('div', { class: 'dz-field dz-field-actions' },
          btn(t('archiveEntity'), () => archiveEntity(ent), { id: 'archive-entity', cls: 'dz-danger dz-small' }))));
    let tab;
    if (S.tab === 'stages') tab = renderStages(ent, epath);
    else if (S.tab === 'layout') tab = renderLayout(ent, epath);
    else if (S.tab === 'settings') tab = renderSettings(ent, epath);
    else tab = renderFields(ent, epath);
    return h('div', { class: 'dz-entity' }, head, tab);
  }

  // ---------------------------------------------------------------- fields tab

  function fieldFlags(f) {
    const flags = [];
    if (f.required) flags.push(t('flagRequired'));
    if (f.unique) flags.push(t('flagUnique'));
    if (f.indexed) flags.push(t('flagIndexed'));
    if (f.searchable) flags.push(t('flagSearchable'));
    if (f.read_only) flags.push(t('flagReadOnly'));
    if (f.formula) flags.push(t('flagFormula'));
    return flags.map((x) => h('span', { class: 'dz-badge' }, x));
  }

  function typeName(type) {
    return TYPES.includes(type) ? t('type_' + type) : String(type);
  }

  function renderFields(ent, epath) {
    const fields = ent.fields || (ent.fields = []);
    const rows = new Map();
    const editing = S.field && fields.includes(S.field) ? S.field : null;
    if (!editing) S.field = null;
    const tbody = h('tbody', {});
    fields.forEach((f, j) => {
      const fpath = pj(epath, 'fields', j);
      const tr = h('tr', {
        class: 'dz-row' + (f === S.field ? ' active' : ''), 'data-path': fpath, 'data-key': f.key,
      },
      h('td', { class: 'dz-col-handle' }, handle()),
      h('td', { 'data-path': pj(fpath, 'key') }, h('code', { class: 'dz-cell-key' }, f.key || '—')),
      h('td', { class: 'dz-cell-label', 'data-path': pj(fpath, 'label') }, fieldLabel(f)),
      h('td', { class: 'dz-cell-type', 'data-path': pj(fpath, 'type') }, typeName(f.type),
        f.type === 'reference' && f.target ? h('small', { class: 'dz-muted' }, ' → ' + f.target) : null),
      h('td', { class: 'dz-cell-flags' }, fieldFlags(f)),
      h('td', { class: 'dz-cell-actions dz-nodrag' },
        iconBtn('✎', t('edit'), () => openField(f)),
        iconBtn('↑', t('moveUp'), () => { if (move(fields, j, j - 1)) { structural(); rerender(); } }),
        iconBtn('↓', t('moveDown'), () => { if (move(fields, j, j + 1)) { structural(); rerender(); } }),
        btn('⊘', () => archiveField(ent, f), { title: t('archiveHint'), aria: t('archive'), cls: 'dz-icon dz-danger dz-archive-field' })));
      tr.addEventListener('click', (ev) => {
        if (Date.now() - sortedAt < 300) return;
        if (ev.target.closest('button, a, input, select, textarea')) return;
        openField(f);
      });
      rows.set(f, tr);
      tbody.append(tr);
      // The editor opens in a row right below the field it edits.
      if (f === editing) {
        tbody.append(h('tr', { class: 'dz-editor-row' },
          h('td', { colspan: 6 }, renderFieldEditor(ent, epath, f, j, rows))));
      }
    });
    sortable(tbody, {
      draggable: 'tr.dz-row',
      onEnd(evt) {
        if (move(fields, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });

    const table = h('table', { class: 'dz-table dz-fields', 'data-path': pj(epath, 'fields') },
      h('thead', {}, h('tr', {},
        h('th', { class: 'dz-col-handle' }), h('th', {}, t('key')), h('th', {}, t('label')),
        h('th', {}, t('type')), h('th', {}, t('flags')), h('th', { class: 'dz-col-actions' }, t('actions')))),
      tbody);

    const listBox = h('div', { class: 'dz-fields-list' },
      fields.length ? table : h('p', { class: 'dz-muted' }, t('noFields')),
      h('div', { class: 'dz-row-buttons' }, btn(t('addField'), () => addField(ent), { id: 'add-field', cls: 'dz-add' })),
      renderArchivedFields(ent));

    return h('div', { class: 'dz-fields-tab' + (editing ? ' dz-with-editor' : '') }, listBox);
  }

  function renderArchivedFields(ent) {
    const parts = [];
    const session = S.archivedFields.get(ent) || [];
    if (session.length) {
      parts.push(h('h3', {}, t('archivedFieldsSession')),
        h('ul', { class: 'dz-archived' }, session.map((a) => h('li', {},
          h('code', {}, a.field.key), ' ', fieldLabel(a.field), ' · ', typeName(a.field.type), ' ',
          btn(t('restore'), () => restoreField(ent, a), { cls: 'dz-small' })))));
    }
    const present = new Set(list(ent, 'fields').map((f) => f.key).concat(session.map((a) => a.field.key)));
    const past = (S.pastFields[ent.key] || []).filter((k) => !present.has(k));
    if (past.length) {
      parts.push(h('h3', {}, t('archivedFieldsPast')),
        h('ul', { class: 'dz-archived' }, past.map((k) => h('li', {}, h('code', {}, k), ' ',
          btn(t('restoreAsNew'), () => addField(ent, k), { cls: 'dz-small' })))),
        h('p', { class: 'dz-hint' }, t('archivedFieldsPastHint')));
    }
    return parts.length ? h('div', { class: 'dz-archived-box' }, parts) : null;
  }

  function openField(f) {
    S.field = f;
    rerender();
    const input = pane.querySelector('.dz-editor input[name="key"]');
    if (input) input.focus({ preventScroll: true });
    const ed = pane.querySelector('.dz-editor');
    if (ed) ed.scrollIntoView({ block: 'nearest' });
  }

  function addField(ent, key) {
    const fields = ent.fields || (ent.fields = []);
    const taken = fields.map((f) => f.key).concat((S.archivedFields.get(ent) || []).map((a) => a.field.key));
    const f = { key: key || uniqueKey('new_field', taken.concat(S.pastFields[ent.key] || [])), type: 'text' };
    fields.push(f);
    refKey.set(f, f.key);
    // A field not in the layout would not appear on forms.
    const sections = ent.layout && ent.layout.sections;
    if (sections && sections.length) sections[sections.length - 1].fields.push(f.key);
    structural();
    S.field = f;
    rerender();
    const input = pane.querySelector('.dz-editor input[name="key"]');
    if (input) { input.focus(); input.select(); }
  }

  function removeFieldRefs(ent, key) {
    let section = null;
    if (ent.layout) {
      list(ent.layout, 'sections').forEach((s, i) => {
        if (s.fields.includes(key)) { section = i; s.fields = s.fields.filter((k) => k !== key); }
      });
    }
    if (ent.pipeline) {
      for (const st of list(ent.pipeline, 'stages')) {
        if (st.required_fields) setList(st, 'required_fields', st.required_fields.filter((k) => k !== key));
      }
    }
    for (const r of list(S.pkg, 'roles')) {
      for (const p of list(r, 'permissions')) {
        if (p.entity !== ent.key) continue;
        if (p.deny_read) setList(p, 'deny_read', p.deny_read.filter((k) => k !== key));
        if (p.deny_write) setList(p, 'deny_write', p.deny_write.filter((k) => k !== key));
      }
    }
    return section;
  }

  /** Archiving leaves the field out of the package; publishing renames its column aside. */
  function archiveField(ent, f) {
    // No confirmation: the field is listed under "archived" with a Restore button, and
    // nothing happens to the column until the package is published.
    const fields = ent.fields;
    const i = fields.indexOf(f);
    if (i < 0) return;
    fields.splice(i, 1);
    const section = removeFieldRefs(ent, f.key);
    if (publishedKey.has(f)) {
      if (!S.archivedFields.has(ent)) S.archivedFields.set(ent, []);
      S.archivedFields.get(ent).push({ field: f, section });
    }
    if (S.field === f) S.field = null;
    structural();
    rerender();
  }

  function restoreField(ent, a) {
    const arr = S.archivedFields.get(ent) || [];
    S.archivedFields.set(ent, arr.filter((x) => x !== a));
    const fields = ent.fields || (ent.fields = []);
    fields.push(a.field);
    const sections = ent.layout && ent.layout.sections;
    if (sections && sections.length && !sections.some((s) => s.fields.includes(a.field.key))) {
      const s = a.section !== null && sections[a.section] ? sections[a.section] : sections[sections.length - 1];
      s.fields.push(a.field.key);
    }
    structural();
    S.field = a.field;
    rerender();
  }

  function defaultHint(type) {
    if (TEXTLIKE.includes(type)) return t('defText');
    switch (type) {
      case 'integer': return t('defInteger');
      case 'decimal': return t('defDecimal');
      case 'boolean': return t('defBoolean');
      case 'date': return t('defDate');
      case 'datetime': return t('defDatetime');
      case 'select': return t('defSelect');
      case 'multi_select': return t('defMultiSelect');
      case 'reference': case 'user': return t('defId');
      default: return '';
    }
  }

  function parseDefault(type, raw) {
    const s = raw.trim();
    if (type === 'boolean' && (s === 'true' || s === 'false')) return s === 'true';
    if (['integer', 'reference', 'user'].includes(type) && /^-?\d+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s);
    if (type === 'multi_select' && s.startsWith('[')) {
      try {
        const v = JSON.parse(s);
        if (Array.isArray(v)) return v;
      } catch (_) { /* an expression */ }
    }
    return raw;
  }

  const showValue = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

  function changeType(ent, f, type) {
    const stash = typeStash.get(f) || {};
    for (const opt of TYPE_OPTIONS) {
      if (!allows(type, opt) && opt in f) { stash[opt] = f[opt]; delete f[opt]; }
    }
    f.type = type;
    for (const opt of TYPE_OPTIONS) {
      if (allows(type, opt) && !(opt in f) && opt in stash) { f[opt] = stash[opt]; delete stash[opt]; }
    }
    typeStash.set(f, stash);
    if (type === 'reference' && !f.target && ents().length === 1) f.target = ents()[0].key;
  }

  function renderFieldEditor(ent, epath, f, j, rows) {
    const fpath = pj(epath, 'fields', j);
    const type = f.type;
    const row = rows.get(f);
    const title = h('h3', {}, t('fieldEditor', { name: fieldLabel(f) }));
    const updateRow = () => {
      title.textContent = t('fieldEditor', { name: fieldLabel(f) });
      if (!row) return;
      row.setAttribute('data-key', f.key);
      row.querySelector('.dz-cell-key').textContent = f.key || '—';
      row.querySelector('.dz-cell-label').textContent = fieldLabel(f);
    };
    const renamedInput = inputText(f, 'renamed_from', { name: 'renamed_from', path: pj(fpath, 'renamed_from'), code: true });

    const basics = h('fieldset', { class: 'dz-group' }, h('legend', {}, t('sectionBasics')),
      fieldRow(t('key'), keyInput(f, () => ent.fields, 'field', ent, {
        name: 'key', path: fpath,
        onInput: () => { renamedInput.value = f.renamed_from || ''; updateRow(); },
      })),
      fieldRow(t('label'), inputText(f, 'label', { name: 'label', path: pj(fpath, 'label'), onInput: updateRow })),
      fieldRow(t('type'), inputSelect(f, 'type', TYPES.map((x) => [x, `${t('type_' + x)} · ${x}`]), {
        name: 'type', path: pj(fpath, 'type'),
        onChange: (v) => { changeType(ent, f, v); structural(); rerender(); },
      })),
      fieldRow(t('help'), inputText(f, 'help', { name: 'help', path: pj(fpath, 'help'), multiline: true })),
      fieldRow(t('renamedFrom'), renamedInput, t('renamedFromHint')));

    const flags = h('fieldset', { class: 'dz-group' }, h('legend', {}, t('sectionFlags')),
      checkRow(t('required'), inputCheck(f, 'required', { name: 'required', path: pj(fpath, 'required'), onChange: () => refreshFlags() })),
      allows(type, 'unique') || f.unique ? checkRow(t('unique'), inputCheck(f, 'unique', { name: 'unique', path: pj(fpath, 'unique'), onChange: () => refreshFlags() })) : null,
      checkRow(t('indexed'), inputCheck(f, 'indexed', { name: 'indexed', path: pj(fpath, 'indexed'), onChange: () => refreshFlags() })),
      checkRow(t('searchable'), inputCheck(f, 'searchable', { name: 'searchable', path: pj(fpath, 'searchable'), onChange: () => refreshFlags() })),
      checkRow(t('readOnly'), inputCheck(f, 'read_only', { name: 'read_only', path: pj(fpath, 'read_only'), onChange: () => refreshFlags() })));
    function refreshFlags() {
      if (row) row.querySelector('.dz-cell-flags').replaceChildren(...fieldFlags(f));
    }

    const typeBox = h('fieldset', { class: 'dz-group' }, h('legend', {}, t('sectionType')));
    let typeSpecific = 0;
    if (allows(type, 'options') || (f.options && f.options.length)) {
      typeBox.append(renderOptionsEditor(ent, f, fpath));
      typeSpecific++;
    }
    if (allows(type, 'target') || f.target !== undefined) {
      typeBox.append(fieldRow(t('target'), inputSelect(f, 'target', entChoices(), {
        name: 'target', path: pj(fpath, 'target'), empty: t('choose'),
        onChange: () => { if (row) row.querySelector('.dz-cell-type').replaceChildren(typeName(f.type), f.target ? h('small', { class: 'dz-muted' }, ' → ' + f.target) : ''); },
      })));
      typeSpecific++;
    }
    if (allows(type, 'scale') || f.scale !== undefined) {
      typeBox.append(fieldRow(t('scale'), inputNumber(f, 'scale', { name: 'scale', path: pj(fpath, 'scale'), integer: true, min: 0, max: 6, placeholder: '2' }), t('scaleHint')));
      typeSpecific++;
    }
    if (allows(type, 'min') || f.min !== undefined || f.max !== undefined) {
      const integer = type === 'integer';
      typeBox.append(h('div', { class: 'dz-inline-fields' },
        fieldRow(t('min'), inputNumber(f, 'min', { name: 'min', path: pj(fpath, 'min'), integer })),
        fieldRow(t('max'), inputNumber(f, 'max', { name: 'max', path: pj(fpath, 'max'), integer }))));
      typeSpecific++;
    }
    if (allows(type, 'max_length') || f.max_length !== undefined || f.pattern !== undefined) {
      typeBox.append(
        fieldRow(t('maxLength'), inputNumber(f, 'max_length', { name: 'max_length', path: pj(fpath, 'max_length'), integer: true, min: 1 })),
        fieldRow(t('pattern'), inputText(f, 'pattern', { name: 'pattern', path: pj(fpath, 'pattern'), code: true, placeholder: '^…$' }), t('patternHint')));
      typeSpecific++;
    }
    if (allows(type, 'format') || f.format !== undefined) {
      typeBox.append(fieldRow(t('format'), inputText(f, 'format', { name: 'format', path: pj(fpath, 'format'), code: true, placeholder: '{0000}' }), t('formatHint')));
      typeSpecific++;
    }

    const rules = h('fieldset', { class: 'dz-group' }, h('legend', {}, t('sectionRules')));
    if (allows(type, 'default') || f.default !== undefined) {
      const listId = `dz-def-${++uid}`;
      const suggestions = type === 'boolean' ? ['true', 'false']
        : (type === 'select' || type === 'multi_select') ? list(f, 'options').map((o) => (type === 'select' ? o.value : JSON.stringify([o.value])))
          : type === 'date' ? ['today()', 'add_days(today(), 30)'] : type === 'datetime' ? ['now()'] : (type === 'user' ? ['owner'] : []);
      const el = h('input', {
        type: 'text', name: 'default', 'data-path': pj(fpath, 'default'), class: 'dz-input dz-code',
        autocomplete: 'off', spellcheck: 'false', list: suggestions.length ? listId : null, value: showValue(f.default),
      });
      el.addEventListener('input', () => {
        if (el.value.trim() === '') delete f.default; else f.default = parseDefault(f.type, el.value);
        changed(pj(fpath, 'default'));
      });
      rules.append(fieldRow(t('defaultValue'), el, defaultHint(type)),
        suggestions.length ? h('datalist', { id: listId }, suggestions.map((s) => h('option', { value: s }))) : null);
    } else {
      rules.append(h('p', { class: 'dz-hint' }, t('noDefault')));
    }
    if (allows(type, 'formula') || f.formula !== undefined) {
      rules.append(fieldRow(t('formula'), inputText(f, 'formula', {
        name: 'formula', path: pj(fpath, 'formula'), code: true, placeholder: t('formulaHint'), onInput: () => refreshFlags(),
      })));
    }
    rules.append(
      fieldRow(t('visibleIf'), inputText(f, 'visible_if', { name: 'visible_if', path: pj(fpath, 'visible_if'), code: true, placeholder: t('exprHint') })),
      fieldRow(t('requiredIf'), inputText(f, 'required_if', { name: 'required_if', path: pj(fpath, 'required_if'), code: true, placeholder: t('exprHint') })));

    const done = btn(t('fieldDone'), () => { S.field = null; rerender(); focusRow(ent, f); }, { id: 'field-done', cls: 'dz-primary' });
    const archiveB = btn(t('archive'), () => archiveField(ent, f), { cls: 'dz-danger', title: t('archiveHint') });
    const aside = h('aside', { class: 'dz-editor', 'data-path': fpath, 'aria-label': t('fieldEditor', { name: f.key }) },
      h('div', { class: 'dz-editor-head' }, title, h('span', { class: 'dz-spacer' }), archiveB, done),
      h('div', { class: 'dz-editor-grid' }, basics, flags, typeSpecific ? typeBox : null, rules));
    aside.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !ev.target.closest('details[open]') && ev.target.tagName !== 'SELECT') {
        ev.preventDefault();
        done.click();
      }
    });
    return aside;
  }

  function focusRow(ent, f) {
    const row = [...pane.querySelectorAll('tr.dz-row')].find((r) => r.getAttribute('data-key') === f.key);
    if (row) {
      const b = row.querySelector('button');
      if (b) b.focus({ preventScroll: true });
      row.scrollIntoView({ block: 'nearest' });
    }
  }

  /** Options as a grid: the value inputs are siblings (one per row, in order), so the
   *  newest row's value input is also `input[name="option-key"]:last-of-type`. */
  function renderOptionsEditor(ent, f, fpath) {
    const opath = pj(fpath, 'options');
    const options = f.options || [];
    const grid = h('div', { class: 'dz-option-grid', 'data-path': opath });
    if (options.length) {
      grid.append(
        h('span', { class: 'dz-option-head' }, t('optionValue')),
        h('span', { class: 'dz-option-head' }, t('optionLabel')),
        h('span', { class: 'dz-option-head' }, t('optionColor')),
        h('span', { class: 'dz-option-head' }));
    }
    const moveOption = (k, to) => { if (move(f.options, k, to)) { structural(); rerender(); } };
    options.forEach((o, k) => {
      const p = pj(opath, k);
      const row = String(k);
      const key = keyInput(o, () => f.options || [], 'option', { ent, field: f }, {
        prop: 'value', name: 'option-key', path: p, free: true, placeholder: t('optionValue'), fk: `option:${k}:value`,
      });
      key.setAttribute('data-row', row);
      key.setAttribute('aria-label', `${t('optionValue')} ${k + 1}`);
      const label = inputText(o, 'label', { name: 'option-label', path: pj(p, 'label'), placeholder: t('optionLabel'), fk: `option:${k}:label` });
      label.setAttribute('aria-label', `${t('optionLabel')} ${k + 1}`);
      const swatch = h('span', { class: 'dz-swatch', 'aria-hidden': 'true' });
      const paint = () => { swatch.style.background = o.color || 'transparent'; };
      paint();
      const color = inputText(o, 'color', {
        name: 'option-color', path: pj(p, 'color'), code: true, placeholder: '#f59e0b', cls: 'dz-color', onInput: paint,
      });
      color.setAttribute('aria-label', `${t('optionColor')} ${k + 1}`);
      grid.append(
        key,
        h('span', { class: 'dz-option-cell', 'data-row': row }, label),
        h('span', { class: 'dz-option-cell dz-col-color', 'data-row': row }, swatch, color),
        h('span', { class: 'dz-option-cell dz-cell-actions dz-option-end', 'data-row': row, 'data-path': p },
          iconBtn('↑', t('moveUp'), () => moveOption(k, k - 1)),
          iconBtn('↓', t('moveDown'), () => moveOption(k, k + 1)),
          iconBtn('✕', t('remove'), () => {
            f.options.splice(k, 1);
            setList(f, 'options', f.options);
            structural();
            rerender();
          }, 'dz-danger')));
    });
    const addB = btn(t('addOption'), () => {
      if (!f.options) f.options = [];
      f.options.push({ value: '' });
      structural();
      rerender();
      const inputs = pane.querySelectorAll('input[name="option-key"]');
      if (inputs.length) inputs[inputs.length - 1].focus();
    }, { id: 'add-option', cls: 'dz-add' });
    return h('div', { class: 'dz-options' },
      h('h4', {}, t('options')),
      options.length ? grid : h('p', { class: 'dz-hint', 'data-path': opath }, t('noOptions')),
      addB);
  }

  // ---------------------------------------------------------------- stages tab

  function addStage() {
    const ent = S.entity;
    if (!ent) return;
    if (!ent.pipeline) ent.pipeline = { stages: [], transitions: 'forward' };
    const stages = ent.pipeline.stages || (ent.pipeline.stages = []);
    const st = { key: uniqueKey('new_stage', stages.map((s) => s.key)) };
    stages.push(st);
    refKey.set(st, st.key);
    structural();
    rerender();
    const inputs = pane.querySelectorAll('input[name="stage-key"]');
    if (inputs.length) { inputs[inputs.length - 1].focus(); inputs[inputs.length - 1].select(); }
  }

  function renderStages(ent, epath) {
    const pl = ent.pipeline;
    const addB = btn(t('addStage'), addStage, { id: 'add-stage', cls: 'dz-add' });
    if (!pl) {
      return h('div', { class: 'dz-stages-tab' }, h('p', { class: 'dz-muted' }, t('noPipeline')), addB);
    }
    const ppath = pj(epath, 'pipeline');
    const stages = pl.stages || (pl.stages = []);
    const tbody = h('tbody', {});
    const fchoices = fieldChoices(ent);
    stages.forEach((st, j) => {
      const sp = pj(ppath, 'stages', j);
      const won = inputCheck(st, 'won', { name: 'stage-won', path: pj(sp, 'won'), onChange: (on) => { if (on && st.lost) { delete st.lost; lost.checked = false; } } });
      const lost = inputCheck(st, 'lost', { name: 'stage-lost', path: pj(sp, 'lost'), onChange: (on) => { if (on && st.won) { delete st.won; won.checked = false; } } });
      tbody.append(h('tr', { class: 'dz-row', 'data-path': sp },
        h('td', { class: 'dz-col-handle' }, handle()),
        h('td', {}, keyInput(st, () => stages, 'stage', ent, { name: 'stage-key', path: sp })),
        h('td', {}, inputText(st, 'label', { name: 'stage-label', path: pj(sp, 'label') })),
        h('td', {}, inputNumber(st, 'probability', { name: 'stage-probability', path: pj(sp, 'probability'), integer: true, min: 0, max: 100 })),
        h('td', {}, keysPicker(st, 'required_fields', fchoices, { name: 'stage-required', path: pj(sp, 'required_fields') })),
        h('td', { class: 'dz-center' }, h('label', { class: 'dz-check', title: t('won') }, won)),
        h('td', { class: 'dz-center' }, h('label', { class: 'dz-check', title: t('lost') }, lost)),
        h('td', { class: 'dz-cell-actions' },
          iconBtn('↑', t('moveUp'), () => { if (move(stages, j, j - 1)) { structural(); rerender(); } }),
          iconBtn('↓', t('moveDown'), () => { if (move(stages, j, j + 1)) { structural(); rerender(); } }),
          iconBtn('✕', t('remove'), () => {
            if (!confirm(t('removeStageConfirm', { name: st.label || st.key }))) return;
            stages.splice(j, 1);
            structural();
            rerender();
          }, 'dz-danger'))));
    });
    sortable(tbody, {
      handle: '.dz-handle', draggable: 'tr.dz-row',
      onEnd(evt) {
        if (move(stages, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });
    const table = h('table', { class: 'dz-table dz-stages', 'data-path': pj(ppath, 'stages') },
      h('thead', {}, h('tr', {}, h('th', { class: 'dz-col-handle' }), h('th', {}, t('key')), h('th', {}, t('label')),
        h('th', {}, t('probability')), h('th', {}, t('requiredFields')), h('th', {}, t('won')), h('th', {}, t('lost')), h('th', {}))),
      tbody);
    return h('div', { class: 'dz-stages-tab', 'data-path': ppath },
      h('h3', {}, t('stages')), table, h('div', { class: 'dz-row-buttons' }, addB),
      renderTransitions(ent, pl, ppath),
      h('div', { class: 'dz-row-buttons dz-end' }, btn(t('removePipeline'), () => {
        if (!confirm(t('removePipelineConfirm'))) return;
        delete ent.pipeline;
        structural();
        rerender();
      }, { cls: 'dz-danger dz-small' })));
  }

  function renderTransitions(ent, pl, ppath) {
    const tpath = pj(ppath, 'transitions');
    const mode = Array.isArray(pl.transitions) ? 'list' : (pl.transitions || 'forward');
    const sel = h('select', { name: 'transitions', class: 'dz-input', 'data-path': tpath, value: mode },
      h('option', { value: 'forward' }, t('transForward')),
      h('option', { value: 'any' }, t('transAny')),
      h('option', { value: 'list' }, t('transList')));
    sel.addEventListener('change', () => {
      if (sel.value === 'list') {
        const st = list(pl, 'stages');
        pl.transitions = st.slice(1).map((s, i) => ({ from: st[i].key, to: s.key }));
      } else {
        pl.transitions = sel.value;
      }
      structural();
      rerender();
    });
    const box = h('div', { class: 'dz-transitions' }, h('h3', {}, t('transitions')), fieldRow(t('transitions'), sel));
    if (mode === 'list') {
      const tbody = h('tbody', {});
      const schoices = stageChoices(ent);
      pl.transitions.forEach((tr, k) => {
        const p = pj(tpath, k);
        tbody.append(h('tr', { class: 'dz-row', 'data-path': p },
          h('td', {}, inputSelect(tr, 'from', schoices, { name: 'transition-from', path: pj(p, 'from') })),
          h('td', {}, inputSelect(tr, 'to', schoices, { name: 'transition-to', path: pj(p, 'to') })),
          h('td', {}, keysPicker(tr, 'roles', roleChoices(), { name: 'transition-roles', path: pj(p, 'roles'), emptyText: t('all') })),
          h('td', { class: 'dz-cell-actions' }, iconBtn('✕', t('remove'), () => {
            pl.transitions.splice(k, 1);
            structural();
            rerender();
          }, 'dz-danger'))));
      });
      box.append(h('table', { class: 'dz-table dz-compact' },
        h('thead', {}, h('tr', {}, h('th', {}, t('from')), h('th', {}, t('to')), h('th', {}, t('roles')), h('th', {}))),
        tbody),
      h('div', { class: 'dz-row-buttons' }, btn(t('addTransition'), () => {
        const st = list(pl, 'stages');
        pl.transitions.push({ from: st[0] ? st[0].key : '', to: st[1] ? st[1].key : (st[0] ? st[0].key : '') });
        structural();
        rerender();
      }, { id: 'add-transition', cls: 'dz-add' })));
    }
    return box;
  }

  // ---------------------------------------------------------------- layout tab

  function renderLayout(ent, epath) {
    const lpath = pj(epath, 'layout');
    if (!ent.layout) {
      return h('div', { class: 'dz-layout-tab' }, h('p', { class: 'dz-muted' }, t('noLayout')),
        btn(t('addLayout'), () => {
          ent.layout = { sections: [{ columns: 2, fields: list(ent, 'fields').map((f) => f.key) }] };
          structural();
          rerender();
        }, { id: 'add-layout', cls: 'dz-add' }));
    }
    const layout = ent.layout;
    const sections = layout.sections || (layout.sections = []);
    const placed = new Set(sections.flatMap((s) => s.fields || []));
    const byKey = new Map(list(ent, 'fields').map((f) => [f.key, f]));
    const group = `dz-layout-${++uid}`;

    const chip = (key, path) => {
      const f = byKey.get(key);
      const li = h('li', { class: 'dz-chip' + (f ? '' : ' dz-unknown'), 'data-key': key, 'data-path': path },
        h('span', { class: 'dz-chip-label' }, f ? fieldLabel(f) : key), h('code', {}, key));
      if (path) {
        li.append(iconBtn('✕', t('removeFromSection'), () => {
          for (const s of sections) s.fields = s.fields.filter((k) => k !== key);
          structural();
          rerender();
        }, 'dz-chip-x'));
      }
      return li;
    };

    const lists = [];
    const sync = () => {
      for (const ul of lists) {
        const s = sections[Number(ul.getAttribute('data-section'))];
        if (s) s.fields = [...ul.querySelectorAll(':scope > li.dz-chip')].map((li) => li.getAttribute('data-key'));
      }
      structural();
      rerender();
    };

    const unplaced = list(ent, 'fields').filter((f) => !placed.has(f.key));
    const palette = h('ul', { class: 'dz-chips dz-palette', 'data-section': '-1' }, unplaced.map((f) => chip(f.key, null)));
    sortable(palette, { group: { name: group, pull: true, put: true }, sort: false, draggable: 'li.dz-chip', onEnd: sync });

    const secBox = h('div', { class: 'dz-sections', 'data-path': pj(lpath, 'sections') });
    sections.forEach((s, i) => {
      const sp = pj(lpath, 'sections', i);
      const ul = h('ul', { class: 'dz-chips dz-grid', 'data-section': String(i), 'data-path': pj(sp, 'fields'), 'data-empty': t('dropHere') },
        (s.fields || []).map((k, n) => chip(k, pj(sp, 'fields', n))));
      ul.style.setProperty('--dz-cols', String(s.columns || 1));
      lists.push(ul);
      sortable(ul, { group: { name: group, pull: true, put: true }, draggable: 'li.dz-chip', onEnd: sync });
      const cols = inputSelect(s, 'columns', [1, 2, 3, 4].map((n) => [String(n), String(n)]), {
        name: 'section-columns', path: pj(sp, 'columns'), number: true,
        onChange: () => ul.style.setProperty('--dz-cols', String(s.columns || 1)),
      });
      secBox.append(h('section', { class: 'dz-section', 'data-path': sp },
        h('div', { class: 'dz-section-head' }, handle(),
          fieldRow(t('sectionLabel'), inputText(s, 'label', { name: 'section-label', path: pj(sp, 'label') })),
          fieldRow(t('columns'), cols),
          iconBtn('↑', t('moveUp'), () => { if (move(sections, i, i - 1)) { structural(); rerender(); } }),
          iconBtn('↓', t('moveDown'), () => { if (move(sections, i, i + 1)) { structural(); rerender(); } }),
          iconBtn('✕', t('remove'), () => { sections.splice(i, 1); structural(); rerender(); }, 'dz-danger')),
        ul));
    });
    sortable(secBox, {
      handle: '.dz-section-head > .dz-handle', draggable: 'section.dz-section',
      onEnd(evt) {
        if (move(sections, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });

    return h('div', { class: 'dz-layout-tab', 'data-path': lpath },
      h('div', { class: 'dz-layout-grid' },
        h('div', { class: 'dz-layout-sections' }, h('h3', {}, t('layout')), secBox,
          h('div', { class: 'dz-row-buttons' },
            btn(t('addSection'), () => { sections.push({ columns: 1, fields: [] }); structural(); rerender(); }, { id: 'add-section', cls: 'dz-add' }))),
        h('div', { class: 'dz-layout-palette' }, h('h3', {}, t('unplaced')),
          unplaced.length ? null : h('p', { class: 'dz-hint' }, t('unplacedEmpty')), palette)),
      h('div', { class: 'dz-row-buttons dz-end' }, btn(t('removeLayout'), () => {
        if (!confirm(t('removeLayoutConfirm'))) return;
        delete ent.layout;
        structural();
        rerender();
      }, { cls: 'dz-danger dz-small' })));
  }

  // ---------------------------------------------------------------- settings tab

  function renderSettings(ent, epath) {
    const titleChoices = fieldChoices(ent, (f) => !['long_text', 'multi_select', 'attachment'].includes(f.type));
    const general = h('fieldset', { class: 'dz-group' }, h('legend', {}, t('settings')),
      fieldRow(t('titleField'), inputSelect(ent, 'title_field', titleChoices, { name: 'title_field', path: pj(epath, 'title_field'), empty: t('none') })),
      fieldRow(t('renamedFrom'), inputText(ent, 'renamed_from', { name: 'entity-renamed_from', path: pj(epath, 'renamed_from'), code: true })));

    // Follow-up cycle.
    const fpath = pj(epath, 'followup');
    const fu = h('fieldset', { class: 'dz-group', 'data-path': fpath }, h('legend', {}, t('followup')));
    const fuToggle = h('input', { type: 'checkbox', name: 'followup-enabled', checked: !!ent.followup });
    fuToggle.addEventListener('change', () => {
      if (fuToggle.checked) {
        const first = list(ent, 'fields').find((f) => f.type === 'select');
        ent.followup = { field: first ? first.key : '', days: {} };
      } else {
        delete ent.followup;
      }
      structural();
      rerender();
    });
    fu.append(checkRow(t('followupEnable'), fuToggle));
    if (ent.followup) {
      const f = ent.followup;
      if (!f.days) f.days = {};
      fu.append(fieldRow(t('followupField'), inputSelect(f, 'field', fieldChoices(ent, (x) => x.type === 'select'), {
        name: 'followup-field', path: pj(fpath, 'field'), onChange: () => rerender(),
      })));
      const sf = list(ent, 'fields').find((x) => x.key === f.field);
      const optionValues = sf ? list(sf, 'options').map((o) => [o.value, o.label || o.value]) : [];
      for (const k of Object.keys(f.days)) if (!optionValues.some((o) => o[0] === k)) optionValues.push([k, `${k} ?`]);
      const days = h('div', { class: 'dz-inline-fields', 'data-path': pj(fpath, 'days') });
      for (const [v, l] of optionValues) {
        days.append(fieldRow(l, inputNumber(f.days, v, { name: 'followup-days', path: pj(fpath, 'days', v), integer: true, min: 1 })));
      }
      fu.append(h('h4', {}, t('followupDays')), days);
      // Activity link: an entity with a reference field pointing here.
      const act = f.activity || {};
      const actEnts = ents().filter((e) => list(e, 'fields').some((x) => x.type === 'reference' && x.target === ent.key));
      const actSel = inputSelect(act, 'entity', actEnts.map((e) => [e.key, `${entLabel(e)} (${e.key})`]), {
        name: 'followup-activity', path: pj(fpath, 'activity', 'entity'), empty: t('none'),
        onChange: (v) => {
          if (!v) { delete f.activity; } else {
            const target = entByKey(v);
            const ref = target && list(target, 'fields').find((x) => x.type === 'reference' && x.target === ent.key);
            f.activity = { entity: v, field: ref ? ref.key : '' };
          }
          structural();
          rerender();
        },
      });
      fu.append(fieldRow(t('activity'), actSel));
      if (f.activity) {
        const ae = entByKey(f.activity.entity);
        fu.append(fieldRow(t('activityField'), inputSelect(f.activity, 'field',
          fieldChoices(ae, (x) => x.type === 'reference' && x.target === ent.key), { name: 'followup-activity-field', path: pj(fpath, 'activity', 'field') })));
      }
    }

    // Public pool.
    const ppath = pj(epath, 'pool');
    const pool = h('fieldset', { class: 'dz-group', 'data-path': ppath }, h('legend', {}, t('pool')));
    const poolToggle = h('input', { type: 'checkbox', name: 'pool-enabled', checked: !!ent.pool });
    poolToggle.addEventListener('change', () => {
      if (poolToggle.checked) ent.pool = { reclaim_after_days: 30 }; else delete ent.pool;
      structural();
      rerender();
    });
    pool.append(checkRow(t('poolEnable'), poolToggle));
    if (ent.pool) {
      pool.append(h('div', { class: 'dz-inline-fields' },
        fieldRow(t('reclaimAfter'), inputNumber(ent.pool, 'reclaim_after_days', { name: 'pool-reclaim', path: pj(ppath, 'reclaim_after_days'), integer: true, min: 1 })),
        fieldRow(t('claimLimit'), inputNumber(ent.pool, 'claim_limit', { name: 'pool-claim-limit', path: pj(ppath, 'claim_limit'), integer: true, min: 0 })),
        fieldRow(t('holdLimit'), inputNumber(ent.pool, 'hold_limit', { name: 'pool-hold-limit', path: pj(ppath, 'hold_limit'), integer: true, min: 1 }))));
    }

    // Duplicate check.
    const dpath = pj(epath, 'duplicate_check');
    const dup = h('fieldset', { class: 'dz-group', 'data-path': dpath }, h('legend', {}, t('duplicateCheck')));
    const dupToggle = h('input', { type: 'checkbox', name: 'duplicate-enabled', checked: !!ent.duplicate_check });
    dupToggle.addEventListener('change', () => {
      if (dupToggle.checked) ent.duplicate_check = { block: true }; else delete ent.duplicate_check;
      structural();
      rerender();
    });
    dup.append(checkRow(t('duplicateEnable'), dupToggle));
    if (ent.duplicate_check) {
      dup.append(
        checkRow(t('duplicateBlock'), inputCheck(ent.duplicate_check, 'block', { name: 'duplicate-block', path: pj(dpath, 'block'), keepFalse: true })),
        fieldRow(t('forceRoles'), keysPicker(ent.duplicate_check, 'force_roles', roleChoices(), { name: 'duplicate-force-roles', path: pj(dpath, 'force_roles') })));
    }
    return h('div', { class: 'dz-settings-tab' }, general, fu, pool, dup);
  }

  // ---------------------------------------------------------------- roles tab

  function sublist(items, selected, labelOf, onPick, attr) {
    const ul = h('ul', { class: 'dz-sublist' });
    items.forEach((x) => {
      const a = h('a', { href: '#', class: x === selected ? 'active' : null, [attr]: x.key || '' },
        h('span', {}, labelOf(x)), h('small', { class: 'dz-ent-key' }, x.key || ''));
      a.addEventListener('click', (ev) => { ev.preventDefault(); onPick(x); });
      ul.append(h('li', {}, a));
    });
    return ul;
  }

  function renderRoles() {
    const roles = list(S.pkg, 'roles');
    if (!roles.includes(S.role)) S.role = roles[0] || null;
    const side2 = h('div', { class: 'dz-subside' }, h('h3', {}, t('roles')),
      roles.length ? sublist(roles, S.role, (r) => r.label || r.key, (r) => { S.role = r; rerender(); }, 'data-role') : h('p', { class: 'dz-muted' }, t('noRoles')),
      btn(t('addRole'), () => {
        if (!S.pkg.roles) S.pkg.roles = [];
        const r = { key: uniqueKey('new_role', S.pkg.roles.map((x) => x.key)), permissions: [] };
        S.pkg.roles.push(r);
        refKey.set(r, r.key);
        S.role = r;
        structural();
        rerender();
        const input = pane.querySelector('input[name="role-key"]');
        if (input) { input.focus(); input.select(); }
      }, { id: 'add-role', cls: 'dz-add' }));
    const detail = S.role ? renderRole(S.role, roles.indexOf(S.role)) : null;
    return h('div', { class: 'dz-split' }, side2, h('div', { class: 'dz-detail' }, detail));
  }

  function renderRole(role, r) {
    const rpath = pj('roles', r);
    const roles = S.pkg.roles;
    const perms = role.permissions || [];
    const head = h('div', { class: 'dz-inline-fields', 'data-path': rpath },
      fieldRow(t('roleKey'), keyInput(role, () => roles, 'role', null, { name: 'role-key', path: rpath, onInput: () => refreshSub() })),
      fieldRow(t('roleLabel'), inputText(role, 'label', { name: 'role-label', path: pj(rpath, 'label'), onInput: () => refreshSub() })),
      checkRow(t('roleAdmin'), inputCheck(role, 'admin', { name: 'role-admin', path: pj(rpath, 'admin') })),
      h('div', { class: 'dz-field dz-field-actions' }, btn(t('deleteRole'), () => {
        if (!confirm(t('deleteRoleConfirm', { name: role.label || role.key }))) return;
        roles.splice(roles.indexOf(role), 1);
        setList(S.pkg, 'roles', roles);
        dropRoleRefs(role.key);
        S.role = null;
        structural();
        rerender();
      }, { cls: 'dz-danger dz-small' })));
    function refreshSub() {
      const a = pane.querySelector('.dz-sublist a.active');
      if (a) {
        a.setAttribute('data-role', role.key || '');
        a.replaceChildren(h('span', {}, role.label || role.key), h('small', { class: 'dz-ent-key' }, role.key || ''));
      }
    }

    // The matrix: one row per entity (and per permission naming an unknown entity).
    const ppath = pj(rpath, 'permissions');
    const rowsFor = ents().map((e) => ({ key: e.key, ent: e }));
    for (const p of perms) if (!rowsFor.some((x) => x.key === p.entity)) rowsFor.push({ key: p.entity, ent: null });
    const tbody = h('tbody', {});
    for (const { key, ent } of rowsFor) {
      const p = perms.find((x) => x.entity === key) || null;
      const pi = p ? perms.indexOf(p) : -1;
      const pp = p ? pj(ppath, pi) : null;
      const tr = h('tr', { class: 'dz-row' + (p ? '' : ' dz-off'), 'data-path': pp, 'data-perm-entity': key },
        h('th', { scope: 'row' }, ent ? entLabel(ent) : key, h('small', { class: 'dz-ent-key' }, key)));
      for (const a of ACTIONS) {
        const cb = h('input', {
          type: 'checkbox', name: 'perm-action', 'data-action': a, 'data-fk': `perm:${key}:${a}`,
          'aria-label': `${ent ? entLabel(ent) : key} ${t('act_' + a)}`, checked: !!(p && p.actions && p.actions.includes(a)),
        });
        cb.addEventListener('change', () => togglePermission(role, key, a, cb.checked));
        tr.append(h('td', { class: 'dz-center' }, cb));
      }
      tr.append(
        h('td', {}, p ? inputSelect(p, 'scope', choicesOf(SCOPES, 'scope_'), { name: 'perm-scope', path: pj(pp, 'scope') }) : h('span', { class: 'dz-muted' }, '—')),
        h('td', {}, p ? keysPicker(p, 'deny_read', fieldChoices(ent), { name: 'perm-deny-read', path: pj(pp, 'deny_read') }) : null),
        h('td', {}, p ? keysPicker(p, 'deny_write', fieldChoices(ent), { name: 'perm-deny-write', path: pj(pp, 'deny_write') }) : null),
        h('td', { class: 'dz-cell-actions' },
          iconBtn('✓', t('all'), () => setAllActions(role, key, true)),
          iconBtn('✕', t('clear'), () => setAllActions(role, key, false), 'dz-danger')));
      tbody.append(tr);
    }
    const matrix = h('table', { class: 'dz-table dz-matrix', 'data-path': ppath },
      h('thead', {}, h('tr', {}, h('th', {}, t('entity')), ACTIONS.map((a) => h('th', { class: 'dz-center' }, t('act_' + a))),
        h('th', {}, t('scope')), h('th', {}, t('denyRead')), h('th', {}, t('denyWrite')), h('th', {}))),
      tbody);

    // Reports and dashboards this role may run (their `roles` lists).
    const rep = h('div', { class: 'dz-role-reports' }, h('h3', {}, t('roleReports')), h('p', { class: 'dz-hint' }, t('roleReportsHint')));
    const grantList = (items, base) => {
      const ul = h('ul', { class: 'dz-checklist' });
      items.forEach((x, k) => {
        const cb = h('input', { type: 'checkbox', name: 'role-report', checked: list(x, 'roles').includes(role.key), 'data-path': pj(base, k, 'roles') });
        cb.addEventListener('change', () => {
          const cur = list(x, 'roles').filter((k2) => k2 !== role.key);
          if (cb.checked) cur.push(role.key);
          setList(x, 'roles', cur);
          changed(pj(base, k, 'roles'));
        });
        ul.append(h('li', {}, h('label', { class: 'dz-check' }, cb, h('span', {}, `${x.label || x.key} (${x.key})`))));
      });
      return ul;
    };
    if (list(S.pkg, 'reports').length) rep.append(h('h4', {}, t('reports')), grantList(S.pkg.reports, 'reports'));
    if (list(S.pkg, 'dashboards').length) rep.append(h('h4', {}, t('dashboards')), grantList(S.pkg.dashboards, 'dashboards'));

    return h('div', { class: 'dz-role' }, head, h('h3', {}, t('permissions')), h('div', { class: 'dz-scroll' }, matrix), rep);
  }

  /** Removes a deleted role from every list of role keys (approver roles stay: they need a choice). */
  function dropRoleRefs(key) {
    const drop = (obj, k) => { if (obj && Array.isArray(obj[k])) setList(obj, k, obj[k].filter((x) => x !== key)); };
    for (const e of ents()) {
      if (e.pipeline && Array.isArray(e.pipeline.transitions)) for (const tr of e.pipeline.transitions) drop(tr, 'roles');
      drop(e.duplicate_check, 'force_roles');
    }
    for (const fl of list(S.pkg, 'flows')) {
      if (fl.notify) { drop(fl.notify, 'cc'); if (!Object.keys(fl.notify).length) delete fl.notify; }
    }
    for (const r of list(S.pkg, 'reports')) drop(r, 'roles');
    for (const d of list(S.pkg, 'dashboards')) drop(d, 'roles');
  }

  function togglePermission(role, entityKey, action, on) {
    if (!role.permissions) role.permissions = [];
    let p = role.permissions.find((x) => x.entity === entityKey);
    if (!p) {
      if (!on) return;
      p = { entity: entityKey, actions: [], scope: 'own' };
      role.permissions.push(p);
    }
    const set = new Set(p.actions || []);
    if (on) set.add(action); else set.delete(action);
    p.actions = ACTIONS.filter((a) => set.has(a)).concat((p.actions || []).filter((a) => !ACTIONS.includes(a)));
    if (!p.actions.length) role.permissions.splice(role.permissions.indexOf(p), 1);
    structural();
    rerender();
  }

  function setAllActions(role, entityKey, on) {
    if (!role.permissions) role.permissions = [];
    let p = role.permissions.find((x) => x.entity === entityKey);
    if (on) {
      if (!p) { p = { entity: entityKey, actions: [], scope: 'own' }; role.permissions.push(p); }
      p.actions = ACTIONS.slice();
    } else if (p) {
      role.permissions.splice(role.permissions.indexOf(p), 1);
    }
    structural();
    rerender();
  }

  // ---------------------------------------------------------------- flows tab

  function renderFlows() {
    const flows = list(S.pkg, 'flows');
    if (!flows.includes(S.flow)) S.flow = flows[0] || null;
    const side2 = h('div', { class: 'dz-subside' }, h('h3', {}, t('tabFlows')),
      flows.length ? sublist(flows, S.flow, (f) => f.label || f.key, (f) => { S.flow = f; rerender(); }, 'data-flow') : h('p', { class: 'dz-muted' }, t('noFlows')),
      btn(t('addFlow'), () => {
        if (!S.pkg.flows) S.pkg.flows = [];
        const ent = S.entity || ents()[0];
        const f = {
          key: uniqueKey('new_flow', S.pkg.flows.map((x) => x.key)), entity: ent ? ent.key : '',
          steps: [{ key: 'step_1', approvers: { manager_of: 'submitter' }, mode: 'any' }],
        };
        S.pkg.flows.push(f);
        refKey.set(f, f.key);
        S.flow = f;
        structural();
        rerender();
        const input = pane.querySelector('input[name="flow-key"]');
        if (input) { input.focus(); input.select(); }
      }, { id: 'add-flow', cls: 'dz-add' }));
    return h('div', { class: 'dz-split' }, side2, h('div', { class: 'dz-detail' }, S.flow ? renderFlow(S.flow, flows.indexOf(S.flow)) : null));
  }

  function renderFlow(flow, fi) {
    const fpath = pj('flows', fi);
    const flows = S.pkg.flows;
    const ent = entByKey(flow.entity);
    const head = h('div', { class: 'dz-inline-fields', 'data-path': fpath },
      fieldRow(t('flowKey'), keyInput(flow, () => flows, 'none', null, { name: 'flow-key', path: fpath })),
      fieldRow(t('flowLabel'), inputText(flow, 'label', { name: 'flow-label', path: pj(fpath, 'label') })),
      fieldRow(t('entity'), inputSelect(flow, 'entity', entChoices(), { name: 'flow-entity', path: pj(fpath, 'entity'), onChange: () => rerender() })),
      h('div', { class: 'dz-field dz-field-actions' }, btn(t('deleteFlow'), () => {
        if (!confirm(t('deleteFlowConfirm', { name: flow.label || flow.key }))) return;
        flows.splice(flows.indexOf(flow), 1);
        setList(S.pkg, 'flows', flows);
        S.flow = null;
        structural();
        rerender();
      }, { cls: 'dz-danger dz-small' })));

    // Trigger.
    const tpath = pj(fpath, 'trigger');
    const trig = h('fieldset', { class: 'dz-group', 'data-path': tpath }, h('legend', {}, t('trigger')));
    const holder = { on: flow.trigger ? flow.trigger.on : undefined };
    trig.append(fieldRow(t('triggerOn'), inputSelect(holder, 'on', choicesOf(TRIGGERS, 'on_'), {
      name: 'trigger-on', path: pj(tpath, 'on'), empty: t('noTrigger'),
      onChange: (v) => {
        if (!v) delete flow.trigger;
        else {
          if (!flow.trigger) flow.trigger = { on: v };
          flow.trigger.on = v;
          if (v !== 'stage_enter') delete flow.trigger.stage;
          else if (!flow.trigger.stage) {
            const st = stageChoices(ent);
            if (st.length) flow.trigger.stage = st[0][0];
          }
        }
        structural();
        rerender();
      },
    })));
    if (flow.trigger) {
      if (flow.trigger.on === 'stage_enter' || flow.trigger.stage !== undefined) {
        trig.append(fieldRow(t('stage'), inputSelect(flow.trigger, 'stage', stageChoices(ent), { name: 'trigger-stage', path: pj(tpath, 'stage'), empty: t('choose') })));
      }
      trig.append(fieldRow(t('when'), inputText(flow.trigger, 'when', { name: 'trigger-when', path: pj(tpath, 'when'), code: true, placeholder: t('exprHint') })));
    }

    // Steps.
    const spath = pj(fpath, 'steps');
    const steps = flow.steps || (flow.steps = []);
    const tbody = h('tbody', {});
    steps.forEach((st, k) => {
      const p = pj(spath, k);
      tbody.append(h('tr', { class: 'dz-row', 'data-path': p },
        h('td', { class: 'dz-col-handle' }, handle()),
        h('td', {}, keyInput(st, () => steps, 'none', null, { name: 'step-key', path: p })),
        h('td', {}, inputText(st, 'label', { name: 'step-label', path: pj(p, 'label') })),
        h('td', {}, renderApprovers(st, ent, pj(p, 'approvers'))),
        h('td', {}, inputSelect(st, 'mode', choicesOf(['any', 'all'], 'mode_'), { name: 'step-mode', path: pj(p, 'mode') })),
        h('td', {}, inputText(st, 'when', { name: 'step-when', path: pj(p, 'when'), code: true, placeholder: t('exprHint') })),
        h('td', { class: 'dz-cell-actions' },
          iconBtn('↑', t('moveUp'), () => { if (move(steps, k, k - 1)) { structural(); rerender(); } }),
          iconBtn('↓', t('moveDown'), () => { if (move(steps, k, k + 1)) { structural(); rerender(); } }),
          iconBtn('✕', t('remove'), () => { steps.splice(k, 1); structural(); rerender(); }, 'dz-danger'))));
    });
    sortable(tbody, {
      handle: '.dz-handle', draggable: 'tr.dz-row',
      onEnd(evt) {
        if (move(steps, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });
    const stepsBox = h('div', { class: 'dz-steps-box', 'data-path': spath }, h('h3', {}, t('steps')),
      h('table', { class: 'dz-table' },
        h('thead', {}, h('tr', {}, h('th', { class: 'dz-col-handle' }), h('th', {}, t('stepKey')), h('th', {}, t('label')),
          h('th', {}, t('approvers')), h('th', {}, t('mode')), h('th', {}, t('when')), h('th', {}))),
        tbody),
      h('div', { class: 'dz-row-buttons' }, btn(t('addStep'), () => {
        steps.push({ key: uniqueKey('step_' + (steps.length + 1), steps.map((s) => s.key)), approvers: { manager_of: 'submitter' }, mode: 'any' });
        structural();
        rerender();
      }, { id: 'add-step', cls: 'dz-add' })));

    const cc = h('fieldset', { class: 'dz-group', 'data-path': pj(fpath, 'notify') }, h('legend', {}, t('notifyCc')));
    const notify = flow.notify || {};
    cc.append(keysPicker(notify, 'cc', roleChoices(), {
      name: 'notify-cc', path: pj(fpath, 'notify', 'cc'),
      onChange: () => { if (notify.cc && notify.cc.length) flow.notify = notify; else delete flow.notify; },
    }));

    return h('div', { class: 'dz-flow' }, head, trig, stepsBox,
      h('div', { class: 'dz-two' }, renderEffect(flow, 'on_approve', ent, fpath), renderEffect(flow, 'on_reject', ent, fpath)), cc);
  }

  function renderApprovers(st, ent, apath) {
    if (!st.approvers || typeof st.approvers !== 'object') st.approvers = { manager_of: 'submitter' };
    const ap = st.approvers;
    const kind = APPROVER_KINDS.find((k) => k in ap) || 'manager_of';
    const holder = { kind };
    const kindSel = inputSelect(holder, 'kind', choicesOf(APPROVER_KINDS, 'appr_'), {
      name: 'approver-kind', path: null,
      onChange: (v) => {
        const defaults = {
          role: (roleChoices()[0] || [''])[0], user: '', manager_of: 'submitter',
          field: (fieldChoices(ent, (f) => f.type === 'user')[0] || [''])[0],
        };
        st.approvers = { [v]: defaults[v] };
        structural();
        rerender();
      },
    });
    let value;
    if (kind === 'role') value = inputSelect(ap, 'role', roleChoices(), { name: 'approver-role', path: pj(apath, 'role') });
    else if (kind === 'user') value = inputText(ap, 'user', { name: 'approver-user', path: pj(apath, 'user'), keepEmpty: true });
    else if (kind === 'field') value = inputSelect(ap, 'field', fieldChoices(ent, (f) => f.type === 'user'), { name: 'approver-field', path: pj(apath, 'field') });
    else value = inputSelect(ap, 'manager_of', [['submitter', t('submitter')]], { name: 'approver-manager-of', path: pj(apath, 'manager_of') });
    return h('div', { class: 'dz-approvers', 'data-path': apath }, kindSel, value);
  }

  function parseSetValue(f, raw) {
    const s = raw.trim();
    if (s === '') return null;
    const type = f ? f.type : 'text';
    if (type === 'boolean' && (s === 'true' || s === 'false')) return s === 'true';
    if (['integer', 'reference', 'user'].includes(type) && /^-?\d+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s);
    if (type === 'decimal' && /^-?\d+(\.\d+)?$/.test(s)) return String(Number(s)) === s ? Number(s) : s;
    if (type === 'multi_select') {
      if (s.startsWith('[')) {
        try { const v = JSON.parse(s); if (Array.isArray(v)) return v; } catch (_) { /* a list of words */ }
      }
      return s.split(/[,，、]/).map((x) => x.trim()).filter(Boolean);
    }
    return raw;
  }

  function renderEffect(flow, which, ent, fpath) {
    const epath = pj(fpath, which);
    const eff = flow[which] || {};
    const commit = () => {
      const empty = (!eff.set || !Object.keys(eff.set).length) && eff.stage === undefined;
      if (eff.set && !Object.keys(eff.set).length) delete eff.set;
      if (empty) delete flow[which]; else flow[which] = eff;
    };
    const box = h('fieldset', { class: 'dz-group', 'data-path': epath }, h('legend', {}, t(which === 'on_approve' ? 'onApprove' : 'onReject')));
    if ((ent && ent.pipeline) || eff.stage !== undefined) {
      box.append(fieldRow(t('setStage'), inputSelect(eff, 'stage', stageChoices(ent), {
        name: 'effect-stage', path: pj(epath, 'stage'), empty: t('none'), onChange: commit,
      })));
    }
    const settable = ent ? list(ent, 'fields').filter((f) => !f.formula && f.type !== 'auto_number' && f.type !== 'attachment') : [];
    const set = eff.set || {};
    const tbody = h('tbody', {});
    for (const key of Object.keys(set)) {
      const f = ent ? list(ent, 'fields').find((x) => x.key === key) : null;
      const choices = settable.filter((x) => x.key === key || !(x.key in set)).map((x) => [x.key, `${fieldLabel(x)} (${x.key})`]);
      const holder = { field: key };
      const fieldSel = inputSelect(holder, 'field', choices, {
        name: 'set-field', path: null,
        onChange: (v) => { renameMapKey(set, key, v); structural(); rerender(); },
      });
      const valueIn = h('input', {
        type: 'text', name: 'set-value', class: 'dz-input', 'data-path': pj(epath, 'set', key),
        value: f && f.type === 'multi_select' && Array.isArray(set[key]) ? set[key].join(', ') : showValue(set[key]),
        placeholder: f && f.type === 'boolean' ? 'true / false' : '',
      });
      valueIn.addEventListener('input', () => { set[key] = parseSetValue(f, valueIn.value); changed(pj(epath, 'set', key)); });
      tbody.append(h('tr', { class: 'dz-row', 'data-path': pj(epath, 'set', key) },
        h('td', {}, fieldSel), h('td', {}, valueIn),
        h('td', { class: 'dz-cell-actions' }, iconBtn('✕', t('remove'), () => {
          delete set[key];
          commit();
          structural();
          rerender();
        }, 'dz-danger'))));
    }
    if (Object.keys(set).length) {
      box.append(h('h4', {}, t('setFields')), h('table', { class: 'dz-table dz-compact', 'data-path': pj(epath, 'set') },
        h('thead', {}, h('tr', {}, h('th', {}, t('field')), h('th', {}, t('value')), h('th', {}))), tbody));
    }
    const free = settable.filter((x) => !(x.key in set));
    box.append(h('div', { class: 'dz-row-buttons' }, btn(t('addSet'), () => {
      if (!free.length) return;
      eff.set = Object.assign(eff.set || {}, { [free[0].key]: null });
      commit();
      structural();
      rerender();
    }, { cls: 'dz-add dz-small', disabled: !free.length })));
    return box;
  }

  // ---------------------------------------------------------------- reports tab

  function reportColumns(ent) {
    if (!ent) return [];
    const cols = [];
    const push = (e, prefix) => {
      for (const f of list(e, 'fields')) {
        if (f.type === 'multi_select' || f.type === 'attachment') continue;
        cols.push([prefix + f.key, `${prefix ? entLabel(e) + ' · ' : ''}${fieldLabel(f)}`]);
      }
      for (const c of ['created_at', 'updated_at', 'owner']) cols.push([prefix + c, prefix + c]);
      if (e.pipeline) cols.push([prefix + 'stage', prefix + 'stage']);
    };
    push(ent, '');
    for (const f of list(ent, 'fields')) {
      if (f.type !== 'reference') continue;
      const target = entByKey(f.target);
      if (target) push(target, f.key + '.');
    }
    return cols;
  }

  function datalist(values) {
    const id = `dz-list-${++uid}`;
    return { id, el: h('datalist', { id }, values.map(([v, l]) => h('option', { value: v }, l))) };
  }

  function renderReports() {
    const reports = list(S.pkg, 'reports');
    const dashboards = list(S.pkg, 'dashboards');
    if (S.report && !reports.includes(S.report)) S.report = null;
    if (S.dashboard && !dashboards.includes(S.dashboard)) S.dashboard = null;
    if (!S.report && !S.dashboard) S.report = reports[0] || null;
    if (!S.report && !S.dashboard) S.dashboard = dashboards[0] || null;
    const side2 = h('div', { class: 'dz-subside' },
      h('h3', {}, t('reports')),
      reports.length ? sublist(reports, S.report, (r) => r.label || r.key, (r) => { S.report = r; S.dashboard = null; rerender(); }, 'data-report') : h('p', { class: 'dz-muted' }, t('noReports')),
      btn(t('addReport'), () => {
        if (!S.pkg.reports) S.pkg.reports = [];
        const ent = S.entity || ents()[0];
        const r = { key: uniqueKey('new_report', S.pkg.reports.map((x) => x.key)), entity: ent ? ent.key : '', measures: [{ fn: 'count' }] };
        S.pkg.reports.push(r);
        refKey.set(r, r.key);
        S.report = r; S.dashboard = null;
        structural();
        rerender();
        const input = pane.querySelector('input[name="report-key"]');
        if (input) { input.focus(); input.select(); }
      }, { id: 'add-report', cls: 'dz-add' }),
      h('h3', {}, t('dashboards')),
      dashboards.length ? sublist(dashboards, S.dashboard, (d) => d.label || d.key, (d) => { S.dashboard = d; S.report = null; rerender(); }, 'data-dashboard') : h('p', { class: 'dz-muted' }, t('noDashboards')),
      btn(t('addDashboard'), () => {
        if (!S.pkg.dashboards) S.pkg.dashboards = [];
        const d = { key: uniqueKey('new_dashboard', S.pkg.dashboards.map((x) => x.key)), reports: [] };
        S.pkg.dashboards.push(d);
        S.dashboard = d; S.report = null;
        structural();
        rerender();
        const input = pane.querySelector('input[name="dashboard-key"]');
        if (input) { input.focus(); input.select(); }
      }, { id: 'add-dashboard', cls: 'dz-add' }));
    let detail = null;
    if (S.report) detail = renderReport(S.report, reports.indexOf(S.report));
    else if (S.dashboard) detail = renderDashboard(S.dashboard, dashboards.indexOf(S.dashboard));
    return h('div', { class: 'dz-split' }, side2, h('div', { class: 'dz-detail' }, detail));
  }

  function rowList(arr, render, o) {
    const tbody = h('tbody', {});
    arr.forEach((item, k) => tbody.append(render(item, k)));
    sortable(tbody, {
      handle: '.dz-handle', draggable: 'tr.dz-row',
      onEnd(evt) {
        if (move(arr, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });
    return h('table', { class: 'dz-table dz-compact', 'data-path': o.path },
      h('thead', {}, h('tr', {}, h('th', { class: 'dz-col-handle' }), o.heads.map((x) => h('th', {}, x)), h('th', {}))), tbody);
  }

  function renderReport(rep, ri) {
    const rpath = pj('reports', ri);
    const reports = S.pkg.reports;
    const ent = entByKey(rep.entity);
    const cols = reportColumns(ent);
    const colList = datalist(cols);
    const removeRow = (key, k) => iconBtn('✕', t('remove'), () => {
      rep[key].splice(k, 1);
      setList(rep, key, rep[key]);
      structural();
      rerender();
    }, 'dz-danger');

    const head = h('div', { class: 'dz-inline-fields', 'data-path': rpath },
      fieldRow(t('reportKey'), keyInput(rep, () => reports, 'report', null, { name: 'report-key', path: rpath })),
      fieldRow(t('reportLabel'), inputText(rep, 'label', { name: 'report-label', path: pj(rpath, 'label') })),
      fieldRow(t('entity'), inputSelect(rep, 'entity', entChoices(), { name: 'report-entity', path: pj(rpath, 'entity'), onChange: () => rerender() })),
      h('div', { class: 'dz-field dz-field-actions' }, btn(t('deleteReport'), () => {
        if (!confirm(t('deleteReportConfirm', { name: rep.label || rep.key }))) return;
        reports.splice(reports.indexOf(rep), 1);
        setList(S.pkg, 'reports', reports);
        for (const d of list(S.pkg, 'dashboards')) if (Array.isArray(d.reports)) d.reports = d.reports.filter((k) => k !== rep.key);
        S.report = null;
        structural();
        rerender();
      }, { cls: 'dz-danger dz-small' })));

    const shape = h('div', { class: 'dz-inline-fields' },
      fieldRow(t('kind'), inputSelect(rep, 'kind', choicesOf(REPORT_KINDS, 'kind_'), { name: 'report-kind', path: pj(rpath, 'kind'), empty: t('defaultChoice'), onChange: () => rerender() })),
      fieldRow(t('chart'), inputSelect(rep, 'chart', choicesOf(CHARTS, 'chart_'), { name: 'report-chart', path: pj(rpath, 'chart'), empty: t('none') })),
      rep.kind === 'comparison' || rep.compare !== undefined
        ? fieldRow(t('compare'), inputSelect(rep, 'compare', choicesOf(PERIODS, 'period_'), { name: 'report-compare', path: pj(rpath, 'compare'), empty: t('defaultChoice') }))
        : null,
      fieldRow(t('limit'), inputNumber(rep, 'limit', { name: 'report-limit', path: pj(rpath, 'limit'), integer: true, min: 1 })));

    // Group by.
    const gpath = pj(rpath, 'group_by');
    const groups = rep.group_by || [];
    const groupBox = h('div', { class: 'dz-subsection', 'data-path': gpath }, h('h3', {}, t('groupBy')),
      groups.length ? rowList(groups, (g, k) => {
        const p = pj(gpath, k);
        return h('tr', { class: 'dz-row', 'data-path': p },
          h('td', { class: 'dz-col-handle' }, handle()),
          h('td', {}, inputText(g, 'field', { name: 'group-field', path: pj(p, 'field'), list: colList.id, keepEmpty: true, code: true })),
          h('td', {}, inputSelect(g, 'bucket', choicesOf(BUCKETS, 'bucket_'), { name: 'group-bucket', path: pj(p, 'bucket'), empty: t('none') })),
          h('td', { class: 'dz-cell-actions' }, removeRow('group_by', k)));
      }, { path: null, heads: [t('groupBy'), t('bucket')] }) : null,
      h('div', { class: 'dz-row-buttons' }, btn(t('addGroup'), () => {
        rep.group_by = groups.concat([{ field: cols.length ? cols[0][0] : '' }]);
        structural();
        rerender();
      }, { id: 'add-group', cls: 'dz-add dz-small' })));

    // Measures.
    const mpath = pj(rpath, 'measures');
    const measures = rep.measures || [];
    const measureBox = h('div', { class: 'dz-subsection', 'data-path': mpath }, h('h3', {}, t('measures')),
      measures.length ? rowList(measures, (m, k) => {
        const p = pj(mpath, k);
        return h('tr', { class: 'dz-row', 'data-path': p },
          h('td', { class: 'dz-col-handle' }, handle()),
          h('td', {}, inputSelect(m, 'fn', choicesOf(MEASURE_FNS, 'fn_'), { name: 'measure-fn', path: pj(p, 'fn') })),
          h('td', {}, inputText(m, 'field', { name: 'measure-field', path: pj(p, 'field'), list: colList.id, code: true })),
          h('td', {}, inputText(m, 'label', { name: 'measure-label', path: pj(p, 'label') })),
          h('td', { class: 'dz-cell-actions' }, removeRow('measures', k)));
      }, { path: null, heads: [t('fn'), t('field'), t('label')] }) : null,
      h('div', { class: 'dz-row-buttons' }, btn(t('addMeasure'), () => {
        rep.measures = measures.concat([{ fn: 'count' }]);
        structural();
        rerender();
      }, { id: 'add-measure', cls: 'dz-add dz-small' })));

    // Sort.
    const sortPath = pj(rpath, 'sort');
    const sorts = rep.sort || [];
    const sortKeys = datalist(groups.map((g) => [g.field, g.field]).concat(measures.map((m) => {
      const key = m.field ? `${m.fn}:${m.field}` : m.fn;
      return [key, m.label || key];
    })));
    const sortBox = h('div', { class: 'dz-subsection', 'data-path': sortPath }, h('h3', {}, t('sort')), sortKeys.el,
      sorts.length ? rowList(sorts, (s, k) => {
        const p = pj(sortPath, k);
        return h('tr', { class: 'dz-row', 'data-path': p },
          h('td', { class: 'dz-col-handle' }, handle()),
          h('td', {}, inputText(s, 'field', { name: 'sort-field', path: pj(p, 'field'), list: sortKeys.id, keepEmpty: true, code: true })),
          h('td', {}, h('label', { class: 'dz-check' }, inputCheck(s, 'desc', { name: 'sort-desc', path: pj(p, 'desc'), keepFalse: true }), h('span', {}, t('desc')))),
          h('td', { class: 'dz-cell-actions' }, removeRow('sort', k)));
      }, { path: null, heads: [t('sort'), t('desc')] }) : null,
      h('div', { class: 'dz-row-buttons' }, btn(t('addSort'), () => {
        const first = groups[0] ? groups[0].field : (measures[0] ? (measures[0].field ? `${measures[0].fn}:${measures[0].field}` : measures[0].fn) : '');
        rep.sort = sorts.concat([{ field: first, desc: false }]);
        structural();
        rerender();
      }, { id: 'add-sort', cls: 'dz-add dz-small' })));

    // Filter tree as JSON.
    const fpathF = pj(rpath, 'filter');
    const filterMsg = h('small', { class: 'dz-hint' }, t('filterHint'));
    const filterIn = h('textarea', {
      name: 'report-filter', class: 'dz-input dz-code', rows: 4, spellcheck: 'false', 'data-path': fpathF,
      value: rep.filter === undefined ? '' : JSON.stringify(rep.filter, null, 2),
    });
    filterIn.addEventListener('input', () => {
      const raw = filterIn.value.trim();
      if (raw === '') {
        delete rep.filter;
        filterIn.classList.remove('dz-invalid');
        filterMsg.textContent = t('filterHint');
        changed(fpathF);
        return;
      }
      try {
        rep.filter = JSON.parse(raw);
        filterIn.classList.remove('dz-invalid');
        filterMsg.textContent = t('filterHint');
        changed(fpathF);
      } catch (e) {
        filterIn.classList.add('dz-invalid');
        filterMsg.textContent = t('filterInvalid', { message: e.message });
      }
    });

    return h('div', { class: 'dz-report' }, head, shape, colList.el,
      groupBox, measureBox, sortBox,
      h('div', { class: 'dz-field dz-wide' }, h('label', {}, h('span', { class: 'dz-label' }, t('filter')), filterIn), filterMsg),
      fieldRow(t('reportRoles'), keysPicker(rep, 'roles', roleChoices(), { name: 'report-roles', path: pj(rpath, 'roles'), emptyText: t('roleReportsHint') })));
  }

  function renderDashboard(d, di) {
    const dpath = pj('dashboards', di);
    const dashboards = S.pkg.dashboards;
    const reports = list(S.pkg, 'reports');
    const repLabel = (k) => { const r = reports.find((x) => x.key === k); return r ? `${r.label || r.key}` : `${k} ?`; };
    const rpath = pj(dpath, 'reports');
    const items = d.reports || (d.reports = []);
    const ul = h('ul', { class: 'dz-chips dz-dash-reports', 'data-path': rpath });
    items.forEach((k, n) => {
      ul.append(h('li', { class: 'dz-chip', 'data-key': k, 'data-path': pj(rpath, n) }, handle(),
        h('span', { class: 'dz-chip-label' }, repLabel(k)), h('code', {}, k),
        iconBtn('✕', t('remove'), () => { items.splice(n, 1); structural(); rerender(); }, 'dz-chip-x')));
    });
    sortable(ul, {
      handle: '.dz-handle', draggable: 'li.dz-chip',
      onEnd(evt) {
        if (move(items, evt.oldDraggableIndex, evt.newDraggableIndex)) structural();
        rerender();
      },
    });
    const addSel = h('select', { class: 'dz-input', name: 'dashboard-add-report' },
      h('option', { value: '' }, t('addToDashboard')),
      reports.filter((r) => !items.includes(r.key)).map((r) => h('option', { value: r.key }, `${r.label || r.key} (${r.key})`)));
    addSel.addEventListener('change', () => {
      if (!addSel.value) return;
      items.push(addSel.value);
      structural();
      rerender();
    });
    return h('div', { class: 'dz-dashboard' },
      h('div', { class: 'dz-inline-fields', 'data-path': dpath },
        fieldRow(t('dashboardKey'), keyInput(d, () => dashboards, 'none', null, { name: 'dashboard-key', path: dpath })),
        fieldRow(t('dashboardLabel'), inputText(d, 'label', { name: 'dashboard-label', path: pj(dpath, 'label') })),
        h('div', { class: 'dz-field dz-field-actions' }, btn(t('deleteDashboard'), () => {
          if (!confirm(t('deleteDashboardConfirm', { name: d.label || d.key }))) return;
          dashboards.splice(dashboards.indexOf(d), 1);
          setList(S.pkg, 'dashboards', dashboards);
          S.dashboard = null;
          structural();
          rerender();
        }, { cls: 'dz-danger dz-small' }))),
      h('h3', {}, t('dashboardReports')), ul, fieldRow('', addSel),
      fieldRow(t('reportRoles'), keysPicker(d, 'roles', roleChoices(), { name: 'dashboard-roles', path: pj(dpath, 'roles'), emptyText: t('roleReportsHint') })));
  }

  // ---------------------------------------------------------------- publish

  function stepTarget(s) {
    return s.field ? `${s.entity}.${s.field}` : s.entity;
  }

  function hidePlan(stale) {
    S.planBody = null;
    if (stale && !planBox.hidden) {
      planBox.replaceChildren(h('p', { class: 'dz-muted' }, t('staleHint')));
      setTimeout(() => { if (S.planBody === null) { planBox.hidden = true; planBox.replaceChildren(); } }, 2500);
    } else {
      planBox.hidden = true;
      planBox.replaceChildren();
    }
  }

  async function onPublish() {
    if (S.busy || !S.pkg) return;
    publishedEl.hidden = true;
    hidePlan(false);
    const bodyText = JSON.stringify(S.pkg);
    S.busy = true;
    publishBtn.textContent = t('checking');
    renderStatus();
    try {
      const res = await api('PUT', '/meta?dry_run=true', JSON.parse(bodyText));
      clearErrors();
      if (res && typeof res.version === 'number') S.version = res.version;
      showPlan(res || {}, bodyText);
    } catch (err) {
      showError(err);
    } finally {
      S.busy = false;
      publishBtn.textContent = t('publish');
      renderStatus();
    }
  }

  function showPlan(res, bodyText) {
    const steps = Array.isArray(res.steps) ? res.steps : [];
    const ul = h('ul', { class: 'dz-steps' });
    for (const s of steps) {
      const op = String(s.op || '');
      ul.append(h('li', { 'data-op': op, class: 'dz-step dz-op-' + op.split('_')[0] },
        h('span', { class: 'dz-op' }, PLAN_OPS.includes(op) ? t('op_' + op) : op), ' ',
        h('code', { class: 'dz-step-target' }, stepTarget(s)),
        s.sql ? h('details', { class: 'dz-sql' }, h('summary', {}, t('sql')), h('pre', {}, s.sql)) : null));
    }
    const counts = {};
    for (const s of steps) counts[s.op] = (counts[s.op] || 0) + 1;
    const summary = Object.entries(counts).map(([op, n]) => `${PLAN_OPS.includes(op) ? t('op_' + op) : op} × ${n}`).join(' · ');
    const parts = [h('h2', {}, t('planTitle'))];
    if (res.changed === false) {
      parts.push(h('p', {}, t('planNoChange')));
    } else {
      if (typeof res.version === 'number') parts.push(h('p', { class: 'dz-muted' }, t('planVersion', { version: res.version })));
      parts.push(steps.length ? h('p', {}, t('planSteps', { count: steps.length }), ' ', h('span', { class: 'dz-muted' }, summary)) : h('p', {}, t('planNoSql')));
      parts.push(ul);
    }
    const applyB = btn(t('apply'), () => onApply(bodyText, applyB), { id: 'apply', cls: 'dz-primary', disabled: res.changed === false });
    parts.push(h('div', { class: 'dz-row-buttons' }, applyB, btn(t('cancel'), () => hidePlan(false), { id: 'plan-cancel', cls: 'dz-secondary' })));
    planBox.replaceChildren(...parts);
    planBox.hidden = false;
    S.planBody = bodyText;
    planBox.scrollIntoView({ block: 'nearest' });
    if (res.changed !== false) applyB.focus({ preventScroll: true });
  }

  async function onApply(bodyText, applyB) {
    if (S.busy || S.planBody !== bodyText) return;
    S.busy = true;
    applyB.disabled = true;
    applyB.textContent = t('applying');
    renderStatus();
    try {
      const res = await api('PUT', '/meta', JSON.parse(bodyText));
      const fresh = await api('GET', '/meta');
      hidePlan(false);
      clearErrors();
      if (res && typeof res.version === 'number') S.version = res.version;
      setPackage(fresh, true);
      publishedEl.replaceChildren(res && res.changed === false ? t('publishedNoChange') : t('published'),
        h('strong', { class: 'dz-version' }, String(S.version === null ? '' : S.version)));
      publishedEl.hidden = false;
      loadVersions();
    } catch (err) {
      hidePlan(false);
      showError(err);
    } finally {
      S.busy = false;
      renderStatus();
    }
  }

  async function onDiscard() {
    if (!isDirty() || !confirm(t('discardConfirm'))) return;
    try {
      const fresh = await api('GET', '/meta');
      hidePlan(false);
      clearErrors();
      setPackage(fresh, true);
    } catch (err) {
      showError(err);
    }
  }

  // ---------------------------------------------------------------- loading

  /** Takes a freshly loaded package; keeps the view on the same keys when asked. */
  function setPackage(pkg, keepView) {
    const keep = keepView ? {
      entity: S.entity && S.entity.key, field: S.field && S.field.key, role: S.role && S.role.key,
      flow: S.flow && S.flow.key, report: S.report && S.report.key, dashboard: S.dashboard && S.dashboard.key,
    } : null;
    S.pkg = pkg && typeof pkg === 'object' ? pkg : { format: 1, entities: [] };
    if (!Array.isArray(S.pkg.entities)) S.pkg.entities = [];
    S.published = JSON.stringify(S.pkg);
    publishedKey = new WeakMap();
    refKey = new WeakMap();
    for (const e of ents()) {
      publishedKey.set(e, e.key);
      for (const f of list(e, 'fields')) publishedKey.set(f, f.key);
    }
    S.archivedFields = new Map();
    S.archivedEntities = [];
    S.errors = [];
    S.general = [];
    pathIndex = null;
    const byKey = (arr, k) => (k === undefined || k === null ? null : list(S.pkg, arr).find((x) => x.key === k) || null);
    if (keep) {
      S.entity = keep.entity !== null ? entByKey(keep.entity) : null;
      S.field = S.entity && keep.field !== null ? list(S.entity, 'fields').find((f) => f.key === keep.field) || null : null;
      S.role = byKey('roles', keep.role);
      S.flow = byKey('flows', keep.flow);
      S.report = byKey('reports', keep.report);
      S.dashboard = byKey('dashboards', keep.dashboard);
    } else {
      const wanted = root.getAttribute('data-initial-entity');
      S.entity = (wanted && entByKey(wanted)) || ents()[0] || null;
      S.field = null;
      S.role = S.flow = S.report = S.dashboard = null;
    }
    if (S.view === 'entity' && !S.entity) S.entity = ents()[0] || null;
    renderAll();
  }

  /** Versions (admins): the current number and what earlier versions archived. */
  async function loadVersions() {
    try {
      const res = await api('GET', '/meta/versions');
      const items = (res && Array.isArray(res.items)) ? res.items.slice() : [];
      if (items.length && typeof items[0].version === 'number' && S.version === null) S.version = items[0].version;
      if (items.length && typeof items[0].version === 'number') S.version = Math.max(S.version || 0, items[0].version);
      items.sort((a, b) => a.version - b.version);
      const fields = {};
      const tables = new Set();
      for (const v of items) {
        for (const s of ((v.plan && v.plan.steps) || [])) {
          if (s.op === 'archive_column' && s.field && s.field !== 'stage') (fields[s.entity] || (fields[s.entity] = new Set())).add(s.field);
          if ((s.op === 'restore_column' || s.op === 'add_column') && s.field && fields[s.entity]) fields[s.entity].delete(s.field);
          if (s.op === 'archive_table') tables.add(s.entity);
          if (s.op === 'restore_table' || s.op === 'create_table') tables.delete(s.entity);
        }
      }
      S.pastFields = {};
      for (const [k, set] of Object.entries(fields)) S.pastFields[k] = [...set].sort();
      S.pastTables = [...tables].sort();
      preserveFocus(() => { renderSide(); if (S.view === 'entity' && S.tab === 'fields') renderPane(); });
      renderErrors();
      renderStatus();
    } catch (_) {
      // Not an administrator, or no versions endpoint: the designer works without it.
    }
  }

  async function start() {
    root.classList.add('dz');
    root.replaceChildren(h('p', { class: 'dz-loading' }, t('loading')));
    if (!window.metacrm || typeof window.metacrm.api !== 'function') {
      if (document.readyState !== 'complete') {
        window.addEventListener('load', start, { once: true });
        return;
      }
      root.replaceChildren(h('p', { class: 'error' }, t('loadFailed', { message: 'window.metacrm.api is missing' })));
      return;
    }
    let pkg;
    try {
      pkg = await api('GET', '/meta');
    } catch (err) {
      root.replaceChildren(h('p', { class: 'error' }, t('loadFailed', { message: (err && err.message) || String(err) })));
      return;
    }
    mountSkeleton();
    setPackage(pkg, false);
    loadVersions();
  }

  window.addEventListener('beforeunload', (ev) => {
    if (isDirty()) {
      ev.preventDefault();
      ev.returnValue = t('leaveConfirm');
    }
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
