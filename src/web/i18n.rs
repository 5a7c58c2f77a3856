//! UI text in Simplified Chinese and English. The language is the user's choice (a
//! cookie set from the language switch), else the browser's first preference.

use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};

/// The cookie that remembers the user's language.
pub const LANG_COOKIE: &str = "metacrm_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The cookie's language, else the first language of `Accept-Language` we speak,
    /// else Chinese (our users are Chinese companies).
    pub fn of(req: &Request) -> Lang {
        Lang::asked(req).unwrap_or(Lang::Zh)
    }

    /// The language the request asks for, if any: the UI's cookie, else the first
    /// language of `Accept-Language` we speak.
    fn asked(req: &Request) -> Option<Lang> {
        if let Some(lang) = req
            .cookie()
            .get(LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value_str()))
        {
            return Some(lang);
        }
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        accept.split(',').find_map(|part| {
            let tag = part.split(';').next()?.trim().to_ascii_lowercase();
            match tag.split('-').next()? {
                "zh" => Some(Lang::Zh),
                "en" => Some(Lang::En),
                _ => None,
            }
        })
    }
}

/// The field messages of validation errors (`details[].message` of a 422 or 403), in
/// Chinese: `(pattern, 中文)` where `$1`, `$2` are the pattern's groups. A message
/// without a pattern stays as the server wrote it.
const FIELD_MESSAGES: &[(&str, &str)] = &[
    (r"^is required$", "必填"),
    (r"^is required in stage (.+)$", "进入阶段「$1」前必填"),
    (r"^is read-only$", "只读，不能修改"),
    (
        r"^is computed and cannot be written$",
        "由公式计算，不能填写",
    ),
    (r"^you may not change this field$", "您无权修改此字段"),
    (
        r"^this value is already used by another record$",
        "该值已被其他记录使用",
    ),
    (r"^expected a whole number(?:, got .+)?$", "请填写整数"),
    (r"^expected a number(?:, got .+)?$", "请填写数字"),
    (r"^expected true or false$", "请选择是或否"),
    (r"^expected a string$", "请填写文字"),
    (
        r"^expected an RFC 3339 date-time, got (.+)$",
        "日期时间格式不正确（填写的是 $1）",
    ),
    (
        r"^expected a date as YYYY-MM-DD, got (.+)$",
        "日期应为 年-月-日 格式（填写的是 $1）",
    ),
    (r"^expected an array$", "格式有误"),
    (r"^unknown field$", "没有这个字段"),
    (
        r"^(\S+) record (\d+) does not exist$",
        "关联的记录不存在（#$2）",
    ),
    (r"^user (\d+) does not exist$", "用户不存在（#$1）"),
    (r#"^file ".+" was not uploaded.*$"#, "附件尚未上传"),
    (r"^the file is empty$", "文件是空的"),
    (r"^give the file's name$", "请提供文件名"),
    (r"^.+ is longer than (\d+) characters?$", "最多 $1 个字"),
    (r"^.+ is shorter than (\d+) characters?$", "至少 $1 个字"),
    (r"^.+ is less than the minimum of (.+)$", "不能小于 $1"),
    (r"^.+ is greater than the maximum of (.+)$", "不能大于 $1"),
    (r#"^.+ does not match ".+"$"#, "格式不符合要求"),
    (r#"^.+ is not a "(.+)"$"#, "格式不正确（应为 $1）"),
    (r"^.+ is not one of .+$", "不是可选的值"),
    (r"^.+ is not of type .+$", "类型不正确"),
    (
        r"^.+ has more than (\d+) digits after the decimal point$",
        "最多 $1 位小数",
    ),
    (r"^.+ is too large$", "数值过大"),
];

/// A field message in `lang`.
pub fn field_message(lang: Lang, message: &str) -> String {
    static COMPILED: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> =
        std::sync::OnceLock::new();
    if lang == Lang::En {
        return message.to_string();
    }
    let compiled = COMPILED.get_or_init(|| {
        FIELD_MESSAGES
            .iter()
            .map(|(pattern, zh)| (regex::Regex::new(pattern).expect("valid pattern"), *zh))
            .collect()
    });
    compiled
        .iter()
        .find(|(pattern, _)| pattern.is_match(message))
        .map(|(pattern, zh)| pattern.replace(message, *zh).into_owned())
        .unwrap_or_else(|| message.to_string())
}

/// Puts the field messages of an API error in the caller's language (see
/// [`FIELD_MESSAGES`]), so a form shows its errors in the language of the page.
/// Callers that ask for no language get the API's English unchanged.
pub async fn localize_api_errors<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    // Callers asking for no language we speak get the API's own English.
    let lang = Lang::asked(&req);
    let response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => crate::api::error::to_contract(error).await,
    };
    let Some(lang @ Lang::Zh) = lang else {
        return Ok(response);
    };
    if !matches!(response.status().as_u16(), 403 | 422) {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body.into_vec().await.unwrap_or_default();
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(Response::from_parts(parts, bytes.into()));
    };
    if json["error"]["code"] == "validation_failed" {
        json["error"]["message"] = "填写有误，请修改标出的字段".into();
    }
    for detail in json["error"]["details"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(message) = detail["message"].as_str() {
            detail["message"] = field_message(lang, message).into();
        }
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(
        parts,
        serde_json::to_vec(&json).unwrap_or(bytes).into(),
    ))
}

/// `(key, English, 中文)`.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app", "metacrm", "metacrm"),
    ("login", "Log in", "登录"),
    ("logout", "Log out", "退出"),
    ("tenant", "Company", "公司"),
    ("username", "Username", "用户名"),
    ("password", "Password", "密码"),
    (
        "login_failed",
        "Wrong company, username or password.",
        "公司、用户名或密码错误。",
    ),
    ("home", "Home", "首页"),
    ("records", "Records", "数据"),
    ("designer", "Designer", "设计器"),
    ("automation", "Automation", "自动化"),
    ("plugins", "Plugins", "插件"),
    ("enabled", "Enabled", "已启用"),
    ("disabled", "Not enabled", "未启用"),
    ("preview_changes", "Preview changes", "预览变更"),
    ("enable_plugin", "Enable / save settings", "启用 / 保存设置"),
    ("disable_plugin", "Disable", "停用"),
    (
        "webhook_deliveries",
        "Webhook deliveries",
        "Webhook 投递记录",
    ),
    ("redeliver", "Send again", "重新发送"),
    ("scheduled_rules", "Scheduled rules", "定时规则"),
    ("next_run", "Next run", "下次运行"),
    ("run_now", "Run now", "立即运行"),
    ("reports", "Reports", "报表"),
    ("dashboards", "Dashboards", "仪表盘"),
    ("approvals", "Approvals", "审批"),
    ("followups", "Follow-ups", "跟进"),
    ("notifications", "Notifications", "通知"),
    ("search", "Search", "搜索"),
    (
        "search_placeholder",
        "Search customers, names, pinyin…",
        "搜索客户、名称、拼音…",
    ),
    ("no_results", "Nothing found.", "没有找到结果。"),
    ("new", "New", "新建"),
    ("edit", "Edit", "编辑"),
    ("save", "Save", "保存"),
    ("cancel", "Cancel", "取消"),
    ("delete", "Delete", "删除"),
    ("reload", "Reload", "重新加载"),
    ("filter", "Filter", "筛选"),
    ("apply", "Apply", "应用"),
    ("clear", "Clear", "清除"),
    ("columns", "Columns", "显示列"),
    ("sort", "Sort", "排序"),
    ("next_page", "Next page", "下一页"),
    ("first_page", "First page", "第一页"),
    ("saved_views", "Saved views", "已保存视图"),
    ("save_view", "Save view", "保存视图"),
    ("view_name", "View name", "视图名称"),
    ("assign_to", "Assign to", "转移给"),
    ("assign", "Reassign", "转移"),
    ("selected", "selected", "已选"),
    ("pool", "Public pool", "公海"),
    ("claim", "Claim", "领取"),
    ("owner", "Owner", "负责人"),
    ("created_at", "Created", "创建时间"),
    ("updated_at", "Updated", "更新时间"),
    ("created_by", "Created by", "创建人"),
    ("stage", "Stage", "阶段"),
    ("move_to", "Move to", "推进到"),
    ("timeline", "Timeline", "时间线"),
    ("history", "Changes", "变更记录"),
    ("submit_for_approval", "Submit for approval", "提交审批"),
    ("convert_failed", "The conversion failed", "转化失败"),
    ("print", "Print", "打印"),
    ("print_default", "Print sheet", "打印单据"),
    ("export_xlsx", "Export Excel", "导出 Excel"),
    ("export_csv", "Export CSV", "导出 CSV"),
    ("import", "Import", "导入"),
    (
        "import_file",
        "Spreadsheet (CSV, XLSX, XLS)",
        "表格文件（CSV、XLSX、XLS）",
    ),
    ("import_check", "Check", "检查"),
    ("import_run", "Import", "开始导入"),
    (
        "import_columns",
        "Columns are matched to these fields by label or key; a * after a header is fine.",
        "按表头匹配以下字段（标签或字段名，表头后的 * 可保留）：",
    ),
    (
        "upsert_on",
        "Update records matching",
        "按此字段更新已有记录",
    ),
    ("upsert_none", "(only create)", "（只新增）"),
    ("duplicates_policy", "Likely duplicates", "疑似重复"),
    ("duplicates_report", "import and list them", "导入并列出"),
    ("duplicates_skip", "refuse certain ones", "跳过确定重复的行"),
    ("duplicates_off", "do not check", "不查重"),
    ("import_errors", "Rows refused", "未导入的行"),
    (
        "import_counts",
        "{rows} rows: {created} created, {updated} updated, {unchanged} unchanged, {skipped} refused",
        "共 {rows} 行：新增 {created}，更新 {updated}，无变化 {unchanged}，未导入 {skipped}",
    ),
    ("import_mapped", "Columns:", "列对应："),
    ("import_ignored", "Ignored columns:", "忽略的列："),
    (
        "import_duplicates",
        "{count} rows look like existing records",
        "{count} 行疑似重复",
    ),
    ("row", "Row", "行"),
    ("column", "Column", "列"),
    ("message", "Problem", "问题"),
    ("approve", "Approve", "同意"),
    ("reject", "Reject", "驳回"),
    ("delegate", "Delegate", "转审"),
    ("comment", "Comment", "意见"),
    ("pending", "Pending", "审批中"),
    (
        "nothing_pending",
        "Nothing waiting for you.",
        "没有待办事项。",
    ),
    ("due_today", "Due today", "今日到期"),
    ("overdue", "Overdue", "已逾期"),
    ("mark_all_read", "Mark all as read", "全部标为已读"),
    ("yes", "Yes", "是"),
    ("no", "No", "否"),
    ("required", "required", "必填"),
    (
        "fix_errors",
        "Please correct the fields marked below.",
        "请修改下面标出的字段。",
    ),
    (
        "conflict",
        "Someone else changed this record while you were editing it. Reload to see their version; your changes are kept in the form until you do.",
        "您编辑期间，其他人修改了这条记录。重新加载以查看最新版本；在此之前您的修改保留在表单中。",
    ),
    ("possible_duplicates", "Possible duplicates", "可能重复"),
    ("saved", "Saved.", "已保存。"),
    (
        "forbidden",
        "You do not have access to this page.",
        "您无权访问此页面。",
    ),
    ("not_found", "This page does not exist.", "页面不存在。"),
    ("error", "Something went wrong.", "出错了。"),
    ("welcome", "Welcome", "欢迎"),
    ("language", "Language", "语言"),
    ("new_report", "New report", "新建报表"),
    ("shares", "Shared with", "共享/抄送"),
    ("approval_steps", "Approval", "审批流程"),
    ("stage_history", "Stage history", "阶段历史"),
    ("entered", "entered", "进入"),
    ("by", "by", "操作人"),
    ("back", "Back", "返回"),
    ("all", "All", "全部"),
    ("mine", "Mine", "我的"),
    ("none", "—", "—"),
    ("last_contact", "Last contact", "最近跟进"),
    ("log_followup", "Log a follow-up", "写跟进"),
];

/// The text of `key` in `lang`; the key itself when there is none, so a missing
/// translation shows up instead of an empty label.
pub fn text(lang: Lang, key: &str) -> String {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, en, zh)| match lang {
            Lang::En => *en,
            Lang::Zh => *zh,
        })
        .unwrap_or(key)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len(), "a UI text key appears twice");
    }

    #[test]
    fn field_messages_read_in_chinese() {
        assert_eq!(field_message(Lang::Zh, "is required"), "必填");
        assert_eq!(
            field_message(Lang::Zh, "is required in stage 报价"),
            "进入阶段「报价」前必填"
        );
        assert_eq!(
            field_message(Lang::Zh, "\"深圳市……\" is longer than 20 characters"),
            "最多 20 个字"
        );
        assert_eq!(field_message(Lang::Zh, "something new"), "something new");
        assert_eq!(field_message(Lang::En, "is required"), "is required");
    }

    #[test]
    fn missing_key_shows_itself() {
        assert_eq!(text(Lang::Zh, "save"), "保存");
        assert_eq!(text(Lang::En, "no_such_key"), "no_such_key");
    }
}
