//! The duplicate check (查重): which existing records look like the values about to be
//! created, why, and how sure that is.
//!
//! Candidates come from the search index (any owner: the point is to find the
//! colleague who already has the customer); each is then compared field by field:
//! phones by their digits (country prefix and separators ignored, a number without
//! its area code still matching), emails case-insensitively, and the title by its
//! core name — region prefixes such as 深圳市 or 广东省深圳市南山区, bracketed
//! regions such as （深圳）, and company-form suffixes such as 有限公司 / 股份有限公司 /
//! 集团 / Co., Ltd. stripped. Equal core names, phones or emails are a *certain*
//! duplicate; near-identical names a *likely* one; other search matches *possible*.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::catalog::EntityCatalog;
use crate::error::Result;
use crate::meta::FieldType;
use crate::search::indexer::Serving;
use crate::search::{Hit, SearchIndex, SearchQuery};

/// How sure a match is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Possible,
    Likely,
    Certain,
}

/// Why a record matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    SamePhone,
    SameEmail,
    SameName,
    SimilarName,
    MatchingText,
}

impl Reason {
    pub fn verdict(self) -> Verdict {
        match self {
            Reason::SamePhone | Reason::SameEmail | Reason::SameName => Verdict::Certain,
            Reason::SimilarName => Verdict::Likely,
            Reason::MatchingText => Verdict::Possible,
        }
    }
}

/// A phone number's digits without separators or a +86 / 0086 country prefix, when
/// it has enough digits to be a number (7 or more).
pub fn phone_digits(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits
        .strip_prefix("0086")
        .or_else(|| digits.strip_prefix("86"))
    {
        Some(national) if national.len() >= 10 => national.to_string(),
        _ => digits,
    };
    (digits.len() >= 7).then_some(digits)
}

/// Whether two texts are the same phone number: the same digits, or one ending with
/// the other's 8+ digits (a landline written without its area code).
pub fn same_phone(a: &str, b: &str) -> bool {
    match (phone_digits(a), phone_digits(b)) {
        (Some(a), Some(b)) => {
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            short == long || (short.len() >= 8 && long.ends_with(&short))
        }
        _ => false,
    }
}

/// Provinces, autonomous regions and the cities companies most often prefix their
/// names with, without their 省/市 suffix.
const REGIONS: &[&str] = &[
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
    "深圳",
    "广州",
    "杭州",
    "南京",
    "苏州",
    "无锡",
    "宁波",
    "厦门",
    "青岛",
    "大连",
    "武汉",
    "成都",
    "西安",
    "长沙",
    "郑州",
    "济南",
    "合肥",
    "福州",
    "东莞",
    "佛山",
    "珠海",
    "中山",
    "惠州",
    "温州",
    "常州",
    "南通",
    "徐州",
    "昆明",
    "南宁",
    "贵阳",
    "沈阳",
    "长春",
    "哈尔滨",
    "石家庄",
    "太原",
    "南昌",
    "兰州",
    "乌鲁木齐",
    "呼和浩特",
    "银川",
    "西宁",
    "拉萨",
    "海口",
    "三亚",
    "泉州",
    "烟台",
    "潍坊",
    "绍兴",
    "嘉兴",
    "金华",
    "台州",
    "义乌",
    "昆山",
    "江阴",
    "汕头",
    "江门",
    "湛江",
    "肇庆",
    "扬州",
    "镇江",
    "盐城",
    "泰州",
    "芜湖",
    "洛阳",
    "唐山",
    "保定",
    "廊坊",
    "威海",
    "淄博",
    "临沂",
    "济宁",
    "襄阳",
    "宜昌",
    "株洲",
    "湘潭",
    "桂林",
    "柳州",
    "绵阳",
    "遵义",
];

/// What follows a region's name in a company name (广东省, 深圳市, 广西壮族自治区…).
const REGION_SUFFIXES: &[&str] = &[
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "自治区",
    "特别行政区",
    "省",
    "市",
];

/// Company-form words at the end of a Chinese name, longest first.
const COMPANY_FORMS: &[&str] = &[
    "集团股份有限公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "股份公司",
    "集团公司",
    "分公司",
    "总公司",
    "集团",
    "公司",
];

/// Company-form words ending a latin name (as whole words: Costco keeps its co).
const LATIN_FORMS: &[&str] = &[
    "co",
    "ltd",
    "limited",
    "inc",
    "corp",
    "corporation",
    "company",
    "group",
    "llc",
    "gmbh",
];

/// A company name reduced to what identifies it: no region prefix, no bracketed
/// region, no company form, no spaces or punctuation, lowercase.
pub fn core_name(name: &str) -> String {
    // Bracketed parts go first (震华信息技术（深圳）有限公司, ACME (Shenzhen) Ltd.),
    // then the words, without latin company forms at their end.
    let mut unbracketed = String::new();
    let mut depth = 0;
    for c in name.chars() {
        match c {
            '(' | '（' | '[' | '【' => depth += 1,
            ')' | '）' | ']' | '】' => depth = (depth - 1).max(0),
            c if depth == 0 => unbracketed.extend(c.to_lowercase()),
            _ => {}
        }
    }
    let mut words: Vec<&str> = unbracketed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|w| LATIN_FORMS.contains(w)) {
        words.pop();
    }
    let text = words.concat();
    let mut core = text.as_str();
    core = core.strip_prefix("中国").unwrap_or(core);
    // Regions, possibly nested (广东省深圳市), then one district right after them
    // (深圳市南山区): only there, since 区/县 inside a name may be part of it.
    let mut stripped_region = false;
    while let Some(rest) = REGIONS.iter().find_map(|region| {
        let rest = core.strip_prefix(region)?;
        Some(
            REGION_SUFFIXES
                .iter()
                .find_map(|suffix| rest.strip_prefix(suffix))
                .unwrap_or(rest),
        )
    }) {
        core = rest;
        stripped_region = true;
    }
    if stripped_region {
        let district_end = core
            .char_indices()
            .take(4)
            .skip(1)
            .find(|(_, c)| matches!(c, '区' | '县'))
            .map(|(i, c)| i + c.len_utf8())
            .filter(|end| *end < core.len());
        if let Some(end) = district_end {
            core = &core[end..];
        }
    }
    let mut core = core.to_string();
    while let Some(form) = COMPANY_FORMS
        .iter()
        .find(|form| core.ends_with(*form) && core.len() > form.len())
    {
        core.truncate(core.len() - form.len());
    }
    // Never reduced to nothing: a name that is all region and form stays whole.
    if core.is_empty() { text } else { core }
}

/// Whether two names are near-identical once reduced to their core: one contains the
/// other (苏州金龙客车 and 金龙客车制造), or they differ by little (a typo).
pub fn similar_names(a: &str, b: &str) -> bool {
    let (a, b) = (core_name(a), core_name(b));
    let (short, long) = if a.chars().count() <= b.chars().count() {
        (a, b)
    } else {
        (b, a)
    };
    let short_len = short.chars().count();
    if short_len < 2 {
        return false;
    }
    let contained = long.contains(&short) && short_len * 2 >= long.chars().count();
    let distance = strsim::levenshtein(&short, &long);
    contained
        || strsim::normalized_levenshtein(&short, &long) >= 0.75
        || (distance == 1 && short_len >= 3)
}

/// How a typed value compares with a record's value of the same field.
pub fn compare(field_type: FieldType, is_title: bool, typed: &str, existing: &str) -> Reason {
    match field_type {
        FieldType::Phone if same_phone(typed, existing) => Reason::SamePhone,
        FieldType::Email if typed.trim().eq_ignore_ascii_case(existing.trim()) => Reason::SameEmail,
        _ if is_title
            && !core_name(typed).is_empty()
            && core_name(typed) == core_name(existing) =>
        {
            Reason::SameName
        }
        _ if is_title && similar_names(typed, existing) => Reason::SimilarName,
        _ => Reason::MatchingText,
    }
}

/// What to look for in the index for a typed value: the core of a name (so 深圳震华
/// finds 深圳市震华…), the last 8 digits of a phone (so a number typed without its
/// area code or with +86 finds it).
fn search_text(field_type: FieldType, is_title: bool, typed: &str) -> String {
    match field_type {
        FieldType::Phone => phone_digits(typed)
            .map(|d| d[d.len().saturating_sub(8)..].to_string())
            .unwrap_or_else(|| typed.to_string()),
        _ if is_title && !core_name(typed).is_empty() => core_name(typed),
        _ => typed.to_string(),
    }
}

/// One existing record that looks like the typed values.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub id: i64,
    pub title: String,
    pub owner: Option<i64>,
    pub verdict: Verdict,
    pub score: f32,
    /// Field by field, why it matched.
    pub reasons: BTreeMap<String, Reason>,
}

impl Match {
    /// The answer's shape: who has it and why, never the record's other values.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "title": self.title, "owner": self.owner,
               "verdict": self.verdict, "score": self.score,
               "reasons": self.reasons,
               "fields": self.reasons.keys().collect::<Vec<_>>()})
    }
}

/// Most matches one check answers.
const MAX_MATCHES: usize = 10;

/// The records of any owner that look like `values`, surest first.
pub async fn find(
    tenant: &str,
    serving: &Serving,
    entity: &EntityCatalog,
    index: &dyn SearchIndex,
    values: &Map<String, Value>,
) -> Result<Vec<Match>> {
    let title = entity.def.title_field.as_deref();
    let typed: Vec<(&crate::meta::Field, &str)> = entity
        .def
        .fields
        .iter()
        .filter(|f| f.searchable)
        .filter_map(|f| {
            let text = values.get(&f.key)?.as_str()?.trim();
            (!text.is_empty()).then_some((f, text))
        })
        .collect();
    let mut hits: BTreeMap<i64, Hit> = BTreeMap::new();
    let mut found_by: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (field, text) in &typed {
        let is_title = title == Some(field.key.as_str());
        // The record's other typed fields come back with the hit, for comparing.
        let query = SearchQuery {
            text: search_text(field.field_type, is_title, text),
            fields: vec![field.key.clone()],
            owners: None,
            limit: 20,
        };
        for hit in index
            .search(tenant, &serving.index(&entity.def.key), &query)
            .await?
        {
            found_by.entry(hit.id).or_default().push(field.key.clone());
            match hits.entry(hit.id) {
                std::collections::btree_map::Entry::Occupied(mut known) => {
                    known.get_mut().fields.extend(hit.fields)
                }
                std::collections::btree_map::Entry::Vacant(new) => {
                    new.insert(hit);
                }
            }
        }
    }
    let mut matches: Vec<Match> = Vec::new();
    for (id, hit) in hits {
        let mut reasons = BTreeMap::new();
        for (field, text) in &typed {
            let is_title = title == Some(field.key.as_str());
            let reason = match hit.fields.get(&field.key) {
                Some(existing) => compare(field.field_type, is_title, text, existing),
                None => continue,
            };
            // A field that neither compares equal nor found the record says nothing.
            if reason != Reason::MatchingText || found_by[&id].contains(&field.key) {
                reasons.insert(field.key.clone(), reason);
            }
        }
        let Some(verdict) = reasons.values().map(|r| r.verdict()).max() else {
            continue;
        };
        let score = reasons
            .values()
            .map(|r| match r.verdict() {
                Verdict::Certain => 1.0,
                Verdict::Likely => 0.6,
                Verdict::Possible => 0.2,
            })
            .sum::<f32>();
        matches.push(Match {
            id,
            title: hit.title,
            owner: hit.owner,
            verdict,
            score,
            reasons,
        });
    }
    matches.sort_by(|a, b| {
        (b.verdict, b.score)
            .partial_cmp(&(a.verdict, a.score))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.id.cmp(&b.id))
    });
    matches.truncate(MAX_MATCHES);
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real-looking pairs of company names and the verdict a person at the front desk
    /// would reach.
    const NAME_PAIRS: &[(&str, &str, Option<Verdict>)] = &[
        (
            "深圳市震华信息技术有限公司",
            "深圳震华信息技术有限公司",
            Some(Verdict::Certain),
        ),
        (
            "深圳市震华信息技术有限公司",
            "震华信息技术（深圳）有限公司",
            Some(Verdict::Certain),
        ),
        (
            "广州市天河区宏达贸易有限公司",
            "宏达贸易有限公司",
            Some(Verdict::Certain),
        ),
        (
            "北京益瑞盈商贸有限公司",
            "北京益瑞盈商贸股份有限公司",
            Some(Verdict::Certain),
        ),
        (
            "上海振华重工（集团）股份有限公司",
            "振华重工集团",
            Some(Verdict::Certain),
        ),
        (
            "广东省深圳市南山区华强电子有限公司",
            "华强电子有限公司",
            Some(Verdict::Certain),
        ),
        (
            "ACME Trading Co., Ltd.",
            "ACME TRADING LIMITED",
            Some(Verdict::Certain),
        ),
        (
            "苏州市金龙客车有限公司",
            "苏州金龙客车制造有限公司",
            Some(Verdict::Likely),
        ),
        (
            "杭州娃哈哈集团有限公司",
            "杭州哇哈哈集团有限公司",
            Some(Verdict::Likely),
        ),
        (
            "深圳市腾讯计算机系统有限公司",
            "深圳市腾云计算机系统有限公司",
            Some(Verdict::Likely),
        ),
        ("华为技术有限公司", "华为终端有限公司", None),
        ("宁波海天塑机集团有限公司", "海天味业有限公司", None),
        ("深圳市震华信息技术有限公司", "深圳市华强电子有限公司", None),
        ("东莞市长安镇鑫达五金厂", "东莞市鑫达塑胶制品有限公司", None),
        (
            "区块链科技有限公司",
            "深圳区块链科技有限公司",
            Some(Verdict::Certain),
        ),
    ];

    #[test]
    fn company_name_pairs_get_the_expected_verdicts() {
        for (a, b, expected) in NAME_PAIRS {
            let verdict = Some(compare(FieldType::Text, true, a, b).verdict())
                .filter(|v| *v != Verdict::Possible);
            assert_eq!(
                verdict,
                *expected,
                "{a} / {b}: cores {:?} / {:?}",
                core_name(a),
                core_name(b)
            );
            let reverse = Some(compare(FieldType::Text, true, b, a).verdict())
                .filter(|v| *v != Verdict::Possible);
            assert_eq!(reverse, verdict, "symmetric: {a} / {b}");
        }
    }

    #[test]
    fn phones_compare_by_digits() {
        assert!(same_phone("0755-8888 6666", "(0755) 88886666"));
        assert!(same_phone("+86 138 0013 8000", "13800138000"));
        assert!(same_phone("0086-13800138000", "138-0013-8000"));
        assert!(
            same_phone("8888 6666", "0755-8888 6666"),
            "without area code"
        );
        assert!(!same_phone("138 0013 8000", "138 0013 8001"));
        assert!(
            !same_phone("6666", "0755-8888 6666"),
            "too short to be sure"
        );
        assert_eq!(phone_digits("+86 138 0013 8000").unwrap(), "13800138000");
    }

    #[test]
    fn core_names_keep_what_identifies_the_company() {
        assert_eq!(core_name("深圳市震华信息技术有限公司"), "震华信息技术");
        assert_eq!(core_name("广东省深圳市南山区华强电子有限公司"), "华强电子");
        assert_eq!(core_name("新疆维吾尔自治区天山纺织集团"), "天山纺织");
        // A 区 inside the name, not after a region, stays.
        assert_eq!(core_name("震华区块链有限公司"), "震华区块链");
        // The name is never reduced to nothing.
        assert_eq!(core_name("公司"), "公司");
        assert_eq!(core_name("深圳市"), "深圳市");
        assert_eq!(core_name("Costco Wholesale Co."), "costcowholesale");
    }
}
