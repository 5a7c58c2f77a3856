//! Text analysis for customer search, shared by every backend: Chinese text becomes
//! single characters, character bigrams (so fragments across word boundaries match:
//! 华信 in 震华信息), pinyin syllables and adjacent syllable pairs (zhenhua), and pairs
//! of pinyin initials (`sz`, and across one character: `s_z` is indexed as `sz` too)
//! for abbreviation queries (szzh); latin text becomes lowercase words (matched with
//! typo tolerance); digit runs become 4-grams, so any 4+ digit run of a phone number
//! finds it.
//!
//! Every match a query plans is an exact term or a set of exact terms, except latin
//! typos: a backend with a fuzzy term query (tantivy) uses it, a backend that only
//! filters on exact terms (Meilisearch) indexes each word's [`typo_variants`] instead.
//!
//! Terms carry their field and kind (`name:c:震华`), so a search names exactly the
//! fields the user may read.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use pinyin::ToPinyin;

/// Changes whenever what [`terms`] produces changes, so indexes built by an older
/// analysis are rebuilt (it is part of each index's signature).
pub const VERSION: u32 = 2;

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

fn syllable(c: char) -> Option<&'static str> {
    c.to_pinyin().map(|p| p.plain())
}

/// Every pinyin syllable (without tone) of the common CJK block.
static SYLLABLES: LazyLock<BTreeSet<&'static str>> =
    LazyLock::new(|| ('\u{4e00}'..='\u{9fff}').filter_map(syllable).collect());

/// The longest syllable, bounding the segmentation search.
const MAX_SYLLABLE: usize = 6;

/// Splits a run of latin letters into pinyin syllables if it is one (`zhenhua` →
/// `zhen hua`), preferring fewer, longer syllables.
pub fn split_syllables(text: &str) -> Option<Vec<&str>> {
    let n = text.len();
    // best[i]: fewest syllables covering text[..i], and where the last one starts.
    let mut best: Vec<Option<(usize, usize)>> = vec![None; n + 1];
    best[0] = Some((0, 0));
    for end in 1..=n {
        for start in end.saturating_sub(MAX_SYLLABLE)..end {
            if let Some((count, _)) = best[start]
                && text.is_char_boundary(start)
                && SYLLABLES.contains(&text[start..end])
                && best[end].is_none_or(|(c, _)| count + 1 < c)
            {
                best[end] = Some((count + 1, start));
            }
        }
    }
    best[n]?;
    let mut parts = Vec::new();
    let mut end = n;
    while end > 0 {
        let (_, start) = best[end]?;
        parts.push(&text[start..end]);
        end = start;
    }
    parts.reverse();
    Some(parts)
}

/// What one field's text is indexed under (without the field prefix), sorted and
/// without repeats.
///
/// This runs for every document the indexer writes, so it looks each character's
/// pinyin up once and builds each term in one allocation.
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::with_capacity(text.len() * 4);
    // Phone numbers are written with separators in every style: their digits
    // together also make 4-grams, so any 4+ digit run typed finds them.
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    push_four_grams(&digits, &mut terms);
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut initials: Vec<&'static str> = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let run_end = chars[index..]
            .iter()
            .position(|x| kind(*x) != kind(c))
            .map_or(chars.len(), |p| index + p);
        let run = &chars[index..run_end];
        match kind(c) {
            Kind::Cjk => {
                let syllables: Vec<Option<&'static str>> =
                    run.iter().map(|ch| syllable(*ch)).collect();
                let (mut this, mut next) = ([0u8; 4], [0u8; 4]);
                for (i, ch) in run.iter().enumerate() {
                    let this = &*ch.encode_utf8(&mut this);
                    terms.push(term("c:", &[this]));
                    if let Some(following) = run.get(i + 1) {
                        terms.push(term("c:", &[this, following.encode_utf8(&mut next)]));
                    }
                    if let Some(s) = syllables[i] {
                        terms.push(term("p:", &[s]));
                        initials.push(&s[..1]);
                        if let Some(Some(following)) = syllables.get(i + 1) {
                            terms.push(term("pp:", &[s, following]));
                        }
                    }
                }
            }
            Kind::Digit => {
                let run: String = run.iter().collect();
                if run.len() >= 4 {
                    push_four_grams(&run, &mut terms);
                } else {
                    terms.push(term("w:", &[&run]));
                }
            }
            Kind::Letter => terms.push(term("w:", &[&run.iter().collect::<String>()])),
            Kind::Other => {}
        }
        index = run_end;
    }
    // Initials pairs, adjacent and across one character: users abbreviate 深圳市震华
    // as szzh, skipping the 市.
    for (i, first) in initials.iter().enumerate() {
        for second in initials.iter().skip(i + 1).take(2) {
            terms.push(term("i:", &[first, second]));
        }
    }
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// A term of this kind (`c:`, `p:`, …) made of these parts, in one allocation.
fn term(kind: &str, parts: &[&str]) -> String {
    let mut term = String::with_capacity(kind.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    term.push_str(kind);
    parts.iter().for_each(|p| term.push_str(p));
    term
}

fn push_four_grams(digits: &str, terms: &mut Vec<String>) {
    if digits.len() >= 4 {
        for start in 0..=digits.len() - 4 {
            terms.push(term("d:", &[&digits[start..start + 4]]));
        }
    }
}

/// How many typos a latin word of this length tolerates.
pub fn typos_allowed(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The word with up to `distance` characters deleted, itself included (`x:` terms):
/// two words within `distance` edits share a variant (the symmetric-delete method),
/// which lets a backend that only matches exact terms tolerate typos.
pub fn typo_variants(word: &str, distance: u8) -> BTreeSet<String> {
    let mut variants = BTreeSet::from([word.to_string()]);
    let mut frontier = variants.clone();
    for _ in 0..distance {
        let mut next = BTreeSet::new();
        for variant in &frontier {
            let chars: Vec<char> = variant.chars().collect();
            if chars.len() <= 1 {
                continue;
            }
            for skip in 0..chars.len() {
                let shorter: String = chars
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, c)| c)
                    .collect();
                next.insert(shorter);
            }
        }
        variants.extend(next.iter().cloned());
        frontier = next;
    }
    variants.into_iter().map(|v| format!("x:{v}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cjk,
    Digit,
    Letter,
    Other,
}

fn kind(c: char) -> Kind {
    if is_cjk(c) {
        Kind::Cjk
    } else if c.is_ascii_digit() {
        Kind::Digit
    } else if c.is_alphanumeric() {
        Kind::Letter
    } else {
        Kind::Other
    }
}

/// One way a query piece may match a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The term exactly (`c:震华`, `pp:zhenhua`, `d:8888`, `i:sz`).
    Term(String),
    /// Any one of these terms (`zh` → `p:zha`, `p:zhai`, … every syllable it starts).
    AnyOf(Vec<String>),
    /// A latin word (`w:acme`), allowing this many typos.
    Fuzzy(String, u8),
}

/// A query as pieces that must all match; each piece lists its alternatives, every
/// alternative a list of matches that must all hold.
pub type Plan = Vec<Vec<Vec<Match>>>;

/// Plans a query: whitespace separates pieces; within a piece, Chinese characters
/// match by bigrams (a single character by itself), digits by 4-grams, latin letters
/// as a word (typo-tolerant), as pinyin (syllables, a syllable prefix, or initials).
pub fn plan(query: &str) -> Plan {
    let mut pieces: Plan = Vec::new();
    for raw in query.split_whitespace() {
        let lower = raw.to_lowercase();
        let chars: Vec<char> = lower.chars().collect();
        let mut index = 0;
        while index < chars.len() {
            let c = chars[index];
            let run_end = chars[index..]
                .iter()
                .position(|x| kind(*x) != kind(c))
                .map_or(chars.len(), |p| index + p);
            let run: String = chars[index..run_end].iter().collect();
            match kind(c) {
                Kind::Cjk => {
                    let cs: Vec<char> = run.chars().collect();
                    let all: Vec<Match> = if cs.len() == 1 {
                        vec![Match::Term(format!("c:{}", cs[0]))]
                    } else {
                        cs.windows(2)
                            .map(|w| Match::Term(format!("c:{}{}", w[0], w[1])))
                            .collect()
                    };
                    pieces.push(vec![all]);
                }
                Kind::Digit if run.len() >= 4 => {
                    let grams = (0..=run.len() - 4)
                        .map(|s| Match::Term(format!("d:{}", &run[s..s + 4])))
                        .collect();
                    pieces.push(vec![grams]);
                }
                Kind::Digit => pieces.push(vec![vec![Match::Term(format!("w:{run}"))]]),
                Kind::Letter => pieces.push(latin(&run)),
                Kind::Other => {}
            }
            index = run_end;
        }
    }
    pieces
}

fn latin(word: &str) -> Vec<Vec<Match>> {
    let syllables = if word.is_ascii() {
        split_syllables(word)
    } else {
        None
    };
    // A word that spells pinyin is most likely pinyin: as a latin word it keeps one
    // typo, not two (two typos on a long word is also the costliest match there is).
    let typos = match syllables {
        Some(_) => typos_allowed(word).min(1),
        None => typos_allowed(word),
    };
    let mut alternatives = vec![vec![if typos == 0 {
        Match::Term(format!("w:{word}"))
    } else {
        Match::Fuzzy(word.to_string(), typos)
    }]];
    if !word.is_ascii() {
        return alternatives;
    }
    match syllables {
        Some(syllables) if syllables.len() == 1 => {
            alternatives.push(vec![Match::Term(format!("p:{}", syllables[0]))]);
        }
        Some(syllables) => alternatives.push(
            syllables
                .windows(2)
                .map(|w| Match::Term(format!("pp:{}{}", w[0], w[1])))
                .collect(),
        ),
        None => {}
    }
    let started: Vec<String> = SYLLABLES
        .iter()
        .filter(|s| s.starts_with(word) && **s != word)
        .map(|s| format!("p:{s}"))
        .collect();
    if !started.is_empty() {
        alternatives.push(vec![Match::AnyOf(started)]);
    }
    if (2..=8).contains(&word.len()) {
        let letters: Vec<char> = word.chars().collect();
        alternatives.push(
            letters
                .windows(2)
                .map(|w| Match::Term(format!("i:{}{}", w[0], w[1])))
                .collect(),
        );
    }
    alternatives
}

/// Text made safe to show inside HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text with every occurrence of the query's literal pieces and of the characters
/// whose pinyin it spells wrapped in `<em>`, HTML-escaped; `None` when nothing in the
/// text matches literally or by pinyin.
pub fn highlight(text: &str, query: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = text.to_lowercase().chars().collect();
    if lower.len() != chars.len() {
        return None;
    }
    let mut marked = vec![false; chars.len()];
    for piece in query.split_whitespace() {
        let needle: Vec<char> = piece.to_lowercase().chars().collect();
        if needle.is_empty() {
            continue;
        }
        let mut found = false;
        for start in 0..chars.len().saturating_sub(needle.len() - 1) {
            if lower[start..start + needle.len()] == needle[..] {
                marked[start..start + needle.len()].fill(true);
                found = true;
            }
        }
        if found || !piece.is_ascii() {
            continue;
        }
        // Pinyin: mark the characters whose syllables spell the piece.
        let piece = piece.to_lowercase();
        for start in 0..chars.len() {
            let mut spelled = String::new();
            for end in start..chars.len() {
                let Some(s) = syllable(chars[end]) else { break };
                spelled.push_str(s);
                if spelled == piece {
                    marked[start..=end].fill(true);
                    break;
                }
                if !piece.starts_with(&spelled) {
                    break;
                }
            }
        }
    }
    if !marked.contains(&true) {
        return None;
    }
    let mut out = String::new();
    let mut open = false;
    for (c, m) in chars.iter().zip(&marked) {
        if *m && !open {
            out.push_str("<em>");
            open = true;
        } else if !*m && open {
            out.push_str("</em>");
            open = false;
        }
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(*c),
        }
    }
    if open {
        out.push_str("</em>");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "深圳市震华信息技术有限公司";

    #[test]
    fn chinese_text_is_indexed_by_characters_bigrams_and_pinyin() {
        let terms = terms(NAME);
        for expected in [
            "c:震华",
            "c:华信",
            "c:震",
            "p:zhen",
            "pp:zhenhua",
            "pp:shenzhen",
        ] {
            assert!(
                terms.iter().any(|t| t == expected),
                "{expected} missing from {terms:?}"
            );
        }
        for pair in ["i:sz", "i:zz", "i:zh", "i:ss"] {
            assert!(terms.iter().any(|t| t == pair), "{pair}");
        }
        assert!(
            !terms.iter().any(|t| t == "i:hj"),
            "initials pairs span at most one character"
        );
    }

    #[test]
    fn digits_become_four_grams_and_words_lowercase() {
        let has = |text: &str, term: &str| terms(text).iter().any(|t| t == term);
        let text = "Tel 0755-8888 6666, ACME Ltd";
        assert!(has(text, "d:0755") && has(text, "d:8888") && has(text, "w:acme"));
        assert!(has(text, "d:8886"), "digits across separators");
        assert!(has("13800138000", "d:0013") && has("13800138000", "d:8000"));
    }

    #[test]
    fn syllables_split_like_a_user_types_them() {
        assert_eq!(split_syllables("zhenhua"), Some(vec!["zhen", "hua"]));
        assert_eq!(split_syllables("shenzhen"), Some(vec!["shen", "zhen"]));
        assert_eq!(split_syllables("xyz"), None);
    }

    #[test]
    fn queries_plan_every_way_a_piece_may_match() {
        let plan = plan("zh hua");
        assert_eq!(plan.len(), 2);
        let started = plan[0].iter().find_map(|a| match a.as_slice() {
            [Match::AnyOf(terms)] => Some(terms),
            _ => None,
        });
        assert!(started.unwrap().contains(&"p:zhen".to_string()));
        assert!(plan[0].contains(&vec![Match::Term("i:zh".into())]));
        assert_eq!(
            super::plan("szzh")[0].last().unwrap(),
            &["i:sz", "i:zz", "i:zh"]
                .map(|t| Match::Term(t.into()))
                .to_vec()
        );
        assert!(plan[1].contains(&vec![Match::Term("p:hua".into())]));
        assert_eq!(
            super::plan("震华")[0],
            vec![vec![Match::Term("c:震华".into())]]
        );
        assert!(super::plan("zhenhua")[0].contains(&vec![Match::Term("pp:zhenhua".into())]));
        assert_eq!(
            super::plan("shenzhen")[0][0],
            vec![Match::Fuzzy("shenzhen".into(), 1)],
            "a pinyin word keeps one typo as a latin word"
        );
        assert_eq!(
            super::plan("precision")[0][0],
            vec![Match::Fuzzy("precision".into(), 2)]
        );
    }

    #[test]
    fn typo_variants_meet_within_the_allowed_distance() {
        let shared = |a: &str, b: &str, d| {
            typo_variants(a, d)
                .intersection(&typo_variants(b, d))
                .next()
                .is_some()
        };
        assert!(shared("acme", "acne", 1), "substitution");
        assert!(shared("acme", "acmes", 1), "insertion");
        assert!(shared("acme", "amce", 1), "transposition");
        assert!(!shared("acme", "bcnf", 1));
        assert!(shared("precision", "prezicion", 2));
        assert_eq!(typos_allowed("abc"), 0);
        assert_eq!(typos_allowed("precision"), 2);
    }

    #[test]
    fn highlights_literal_and_pinyin_matches() {
        assert_eq!(
            highlight(NAME, "震华").unwrap(),
            "深圳市<em>震华</em>信息技术有限公司"
        );
        assert_eq!(
            highlight(NAME, "zhenhua").unwrap(),
            "深圳市<em>震华</em>信息技术有限公司"
        );
        assert_eq!(highlight("<b>", "b").unwrap(), "&lt;<em>b</em>&gt;");
        assert!(highlight(NAME, "nothing").is_none());
    }
}
