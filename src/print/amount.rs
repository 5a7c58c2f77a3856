//! Amounts in Chinese capitals (大写金额) as invoices, quotes and receipts write them:
//! 1234.50 → 壹仟贰佰叁拾肆元伍角整; 100000 → 壹拾万元整; 1005.07 → 壹仟零伍元零柒分.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
const SMALL_UNITS: [&str; 4] = ["", "拾", "佰", "仟"];
const GROUP_UNITS: [&str; 4] = ["", "万", "亿", "万亿"];

/// The amount in capitals, rounded to the fen (分); `None` beyond 万亿 (10^16).
pub fn rmb_upper(amount: Decimal) -> Option<String> {
    let fen = (amount.abs() * Decimal::from(100))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_u64()?;
    if fen >= 10u64.pow(18) {
        return None;
    }
    let (yuan, jiao, fen) = (fen / 100, (fen / 10) % 10, fen % 10);
    let mut text = String::new();
    if amount.is_sign_negative() && (yuan, jiao, fen) != (0, 0, 0) {
        text.push('负');
    }
    if yuan > 0 {
        text.push_str(&integer_part(yuan));
        text.push('元');
    }
    match (jiao, fen) {
        (0, 0) => {
            if yuan == 0 {
                text.push_str("零元");
            }
            text.push('整');
        }
        (jiao, 0) => {
            text.push(DIGITS[jiao as usize]);
            text.push_str("角整");
        }
        (jiao, fen) => {
            // 零 stands for a missing 角 after 元 (壹元零伍分), not before the first digit.
            if jiao == 0 {
                if yuan > 0 {
                    text.push('零');
                }
            } else {
                text.push(DIGITS[jiao as usize]);
                text.push('角');
            }
            text.push(DIGITS[fen as usize]);
            text.push('分');
        }
    }
    Some(text)
}

/// Whole yuan in groups of four digits (个, 万, 亿, 万亿); one 零 for any run of
/// zeros between digits, none at the end of a group.
fn integer_part(mut number: u64) -> String {
    let mut groups = Vec::new();
    while number > 0 {
        groups.push((number % 10_000) as usize);
        number /= 10_000;
    }
    let mut text = String::new();
    let mut zero_pending = false;
    for (index, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            zero_pending = !text.is_empty();
            continue;
        }
        if zero_pending || (!text.is_empty() && group < 1000) {
            text.push('零');
        }
        zero_pending = false;
        text.push_str(&group_text(group));
        text.push_str(GROUP_UNITS[index]);
    }
    text
}

fn group_text(group: usize) -> String {
    let digits = [group / 1000, group / 100 % 10, group / 10 % 10, group % 10];
    let mut text = String::new();
    let mut zero = false;
    for (position, &digit) in digits.iter().enumerate() {
        if digit == 0 {
            zero = !text.is_empty();
            continue;
        }
        if zero {
            text.push('零');
            zero = false;
        }
        text.push(DIGITS[digit]);
        text.push_str(SMALL_UNITS[3 - position]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(text: &str) -> String {
        rmb_upper(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn amounts_as_chinese_documents_write_them() {
        for (amount, capitals) in [
            ("0", "零元整"),
            ("1", "壹元整"),
            ("10", "壹拾元整"),
            ("15", "壹拾伍元整"),
            ("101", "壹佰零壹元整"),
            ("1005.07", "壹仟零伍元零柒分"),
            ("1234.50", "壹仟贰佰叁拾肆元伍角整"),
            ("1234.56", "壹仟贰佰叁拾肆元伍角陆分"),
            ("100000", "壹拾万元整"),
            ("100010", "壹拾万零壹拾元整"),
            ("10203.4", "壹万零贰佰零叁元肆角整"),
            ("1000000000", "壹拾亿元整"),
            ("100000001", "壹亿零壹元整"),
            ("12345678.9", "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角整"),
            ("0.05", "伍分"),
            ("0.5", "伍角整"),
            ("-20", "负贰拾元整"),
            ("3.005", "叁元零壹分"),
        ] {
            assert_eq!(upper(amount), capitals, "{amount}");
        }
    }
}
