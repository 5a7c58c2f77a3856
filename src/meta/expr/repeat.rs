//! Sequence repetition (`[0] * n`) under the fuel limit.
//!
//! minijinja repeats a list lazily and charges no fuel for it, so `[0] * 100000000`
//! costs nothing until something walks it: `~`, `|string`, `|tojson` or turning the
//! result into JSON then run for seconds per level of nesting (`[[0] * n] * n` never
//! finishes), and when both operands are constants the compiler folds the expression
//! while compiling it, outside any fuel limit. Publishing such a formula hung the
//! server.
//!
//! So before minijinja compiles an expression that contains `*`, [`rewrite`] turns
//! every multiplication `a * b` into a call `__mul(a, b)`: a call is never folded,
//! and [`mul`] charges a repeated sequence's full size against the evaluation's fuel
//! before multiplying exactly as minijinja does. The operands' extents come from
//! minijinja's own parser (its `unstable_machinery` syntax tree, whose nodes carry
//! byte spans); everything but the multiplications is left byte for byte as written,
//! and the rewritten text must parse to the same tree with the calls in place of the
//! multiplications, or the expression is refused.

use std::sync::LazyLock;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr as Node};
use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind, Expression, State, context};

use super::syntax::{self, arguments, extents, operands};

/// The function multiplications are rewritten to call.
pub(super) const MUL_FUNCTION: &str = "__mul";

/// minijinja's fuel units: one fuel pays for 64 bytes; a list slot costs 32.
const UNITS_PER_FUEL: u64 = 64;
const SLOT_UNITS: u64 = 32;

/// `a * b` exactly as minijinja computes it, after charging a repeated sequence's
/// size (every slot and string byte, nested sequences included) to the fuel and
/// checking a repeated string's size against what is left of it.
pub(super) fn mul(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    static MUL: LazyLock<Expression<'static, 'static>> = LazyLock::new(|| {
        super::ENV
            .compile_expression("a * b")
            .expect("a * b compiles")
    });
    if let Some((repeated, count)) = repetition(&a, &b)
        && let Ok(count) = i128::try_from(count.clone())
        && count > 0
    {
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let remaining = state
            .fuel_levels()
            .map_or(u64::MAX, |(_, remaining)| remaining)
            .saturating_mul(UNITS_PER_FUEL);
        let too_large = || Error::new(ErrorKind::OutOfFuel, "repeated value is too large");
        let units = match repeated.as_str() {
            Some(text) => u64::try_from(text.len()).unwrap_or(u64::MAX),
            None => size_units(repeated, remaining / count).ok_or_else(too_large)?,
        };
        let total = units
            .checked_mul(count)
            .filter(|&total| total < remaining)
            .ok_or_else(too_large)?;
        // The engine charges for a string it gets back, not for a repeated sequence,
        // which stays lazy.
        if repeated.as_str().is_none() {
            state.consume_fuel(total.div_ceil(UNITS_PER_FUEL))?;
        }
    }
    MUL.eval(context! { a => a, b => b })
}

/// The value minijinja's `*` repeats and the count, when it repeats one: a string on
/// either side, else a sequence or iterable on the left, else on the right.
fn repetition<'v>(a: &'v Value, b: &'v Value) -> Option<(&'v Value, &'v Value)> {
    if a.as_str().is_some() {
        return Some((a, b));
    }
    if b.as_str().is_some() {
        return Some((b, a));
    }
    let (object, count) = if a.as_object().is_some() {
        (a, b)
    } else if b.as_object().is_some() {
        (b, a)
    } else {
        return None;
    };
    matches!(object.kind(), ValueKind::Seq | ValueKind::Iterable).then_some((object, count))
}

/// A value's size in fuel units (a slot for every value, a unit for every string
/// byte), walking nested sequences and maps; `None` once it passes `limit`.
fn size_units(value: &Value, limit: u64) -> Option<u64> {
    let mut total: u64 = 0;
    let mut pending = vec![value.clone()];
    while let Some(value) = pending.pop() {
        total = total.checked_add(SLOT_UNITS)?;
        if let Some(text) = value.as_str() {
            total = total.checked_add(u64::try_from(text.len()).ok()?)?;
        } else if matches!(
            value.kind(),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
        ) {
            if let Some(len) = value.len() {
                let slots = u64::try_from(len).ok()?.checked_mul(SLOT_UNITS)?;
                if total.checked_add(slots)? > limit {
                    return None;
                }
            }
            let is_map = value.kind() == ValueKind::Map;
            for item in value.try_iter().ok()? {
                if is_map {
                    pending.push(value.get_item(&item).ok()?);
                }
                pending.push(item);
                let queued = u64::try_from(pending.len()).ok()?.checked_mul(SLOT_UNITS)?;
                if total.checked_add(queued)? > limit {
                    return None;
                }
            }
        }
        if total > limit {
            return None;
        }
    }
    Some(total)
}

/// `source` with every multiplication `a * b` written as ` __mul(a , b)`; `Err` with
/// minijinja's own message when it does not parse, and a syntax error when the
/// rewritten text would not mean the same (never seen; the check keeps it so).
pub(super) fn rewrite(source: &str) -> Result<String, Error> {
    let tree = syntax::parse(source)?;
    let mut edits = Vec::new();
    collect_edits(source, &tree, &mut edits).ok_or_else(not_understood)?;
    // At one offset, a product's `)` closes before the next one opens, and both
    // come before a `*` there is replaced.
    edits.sort_by_key(|edit| (edit.at, edit.text != ")", edit.replaces));
    let mut out = String::with_capacity(source.len() + edits.len() * 10);
    let mut copied = 0;
    for edit in edits {
        out.push_str(source.get(copied..edit.at).ok_or_else(not_understood)?);
        out.push_str(edit.text);
        copied = edit.at + edit.replaces;
    }
    out.push_str(&source[copied..]);
    // Each product becomes a call inside the next one, and minijinja's parser
    // refuses calls nested deeper than its recursion limit.
    let rewritten = syntax::parse(&out).map_err(|err| {
        Error::new(
            err.kind(),
            format!(
                "too many multiplications in a row: {}",
                err.detail().unwrap_or("the expression nests too deep")
            ),
        )
    })?;
    if shape(&rewritten) != shape(&tree) {
        return Err(not_understood());
    }
    Ok(out)
}

fn not_understood() -> Error {
    Error::new(ErrorKind::SyntaxError, "expression not understood")
}

/// Text to put at byte `at` of the source in place of the `replaces` bytes there.
struct Edit {
    at: usize,
    replaces: usize,
    text: &'static str,
}

/// The edits for every product in the tree; `None` when the text between a
/// product's operands is not what it should be.
fn collect_edits(source: &str, tree: &Node, edits: &mut Vec<Edit>) -> Option<()> {
    let extents = extents(tree);
    let extent = |node: &Node| extents[&std::ptr::from_ref(node)];
    let mut pending = vec![tree];
    while let Some(node) = pending.pop() {
        pending.extend(operands(node));
        let Node::BinOp(product) = node else { continue };
        if !matches!(product.op, BinOpKind::Mul) {
            continue;
        }
        let (start, _) = extent(node);
        let (_, left_end) = extent(&product.left);
        let (right_start, right_end) = extent(&product.right);
        // Between the operands: the `*` and the parentheses closing the left one and
        // opening the right one.
        let between = source.get(left_end..right_start)?;
        if between.matches('*').count() != 1 {
            return None;
        }
        let star = left_end + between.find('*')?;
        // The space keeps `__mul` from joining a name or number just before it.
        edits.push(Edit {
            at: start,
            replaces: 0,
            text: " __mul(",
        });
        edits.push(Edit {
            at: star,
            replaces: 1,
            text: ",",
        });
        edits.push(Edit {
            at: right_end,
            replaces: 0,
            text: ")",
        });
    }
    Some(())
}

/// The tree without its spans, a multiplication and a call of `__mul` with two
/// positional arguments written alike, for comparing a tree with its rewrite.
fn shape(tree: &Node) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // A stack, not recursion: `a * b * c …` nests as deep as it is long.
    let mut pending = vec![Some(tree)];
    while let Some(item) = pending.pop() {
        let Some(node) = item else {
            out.push(')');
            continue;
        };
        let is_product = match node {
            Node::BinOp(binary) => matches!(binary.op, BinOpKind::Mul),
            Node::Call(call) => {
                matches!(&call.expr, Node::Var(callee) if callee.id == MUL_FUNCTION)
                    && matches!(call.args.as_slice(), [CallArg::Pos(_), CallArg::Pos(_)])
            }
            _ => false,
        };
        let _ = match node {
            _ if is_product => write!(out, "mul"),
            Node::Var(var) => write!(out, "var {:?}", var.id),
            Node::Const(constant) => write!(out, "const {:?}", constant.value),
            Node::Slice(slice) => write!(
                out,
                "slice {} {} {}",
                slice.start.is_some(),
                slice.stop.is_some(),
                slice.step.is_some()
            ),
            Node::UnaryOp(unary) => write!(out, "unary {:?}", unary.op),
            Node::BinOp(binary) => write!(out, "binary {:?}", binary.op),
            Node::Compare(compare) => write!(
                out,
                "compare {:?}",
                compare.ops.iter().map(|op| op.op).collect::<Vec<_>>()
            ),
            Node::IfExpr(branch) => write!(out, "if {}", branch.false_expr.is_some()),
            Node::Filter(filter) => {
                write!(out, "filter {:?} {}", filter.name, arg_kinds(&filter.args))
            }
            Node::Test(test) => write!(out, "test {:?} {}", test.name, arg_kinds(&test.args)),
            Node::GetAttr(attr) => write!(out, "attr {:?}", attr.name),
            Node::GetItem(_) => write!(out, "item"),
            Node::Call(call) => write!(out, "call {}", arg_kinds(&call.args)),
            Node::List(_) => write!(out, "list"),
            Node::Tuple(_) => write!(out, "tuple"),
            Node::Map(_) => write!(out, "map"),
        };
        out.push('(');
        pending.push(None);
        let operands: Vec<&Node> = match node {
            Node::Call(call) if is_product => arguments(&call.args).collect(),
            _ => operands(node),
        };
        pending.extend(operands.into_iter().rev().map(Some));
    }
    out
}

/// `p` `k name` `*` `**` for each argument: what `operands` does not tell apart.
fn arg_kinds(args: &[CallArg]) -> String {
    args.iter()
        .map(|arg| match arg {
            CallArg::Pos(_) => "p".to_owned(),
            CallArg::Kwarg(name, _) => format!("k {name}"),
            CallArg::PosSplat(_) => "*".to_owned(),
            CallArg::KwargSplat(_) => "**".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplications_become_calls_and_nothing_else_changes() {
        for (source, rewritten) in [
            ("a*b", " __mul(a,b)"),
            ("a * b * c", " __mul( __mul(a , b) , c)"),
            ("a / b * c % d", " __mul(a / b , c) % d"),
            ("x + -a.b * f(c)|g", "x +  __mul(-a.b , f(c)|g)"),
            ("a ** 2 * b", " __mul(a ** 2 , b)"),
            ("f(*args, x=a*b)", "f(*args, x= __mul(a,b))"),
            ("[1,2]*3 ~ (x*y)", " __mul([1,2],3) ~ ( __mul(x,y))"),
            (
                "a*b if c*d else e*f",
                " __mul(a,b) if  __mul(c,d) else  __mul(e,f)",
            ),
            ("'a*b' * 2", " __mul('a*b' , 2)"),
            ("x is divisibleby 3 * 2", " __mul(x is divisibleby 3 , 2)"),
            ("x.0*1.5e3", " __mul(x.0,1.5e3)"),
            ("not a*b in c", "not  __mul(a,b) in c"),
            ("(a) * (b * c)", " __mul((a) , ( __mul(b , c)))"),
            // A filter's and a test's own spans start at their name.
            ("a * (b * c)|f", " __mul(a , ( __mul(b , c))|f)"),
            ("a * b is odd * c", " __mul( __mul(a , b is odd) , c)"),
            ("a*b*c", " __mul( __mul(a,b),c)"),
        ] {
            assert_eq!(rewrite(source).ok().as_deref(), Some(rewritten), "{source}");
        }
    }

    #[test]
    fn what_minijinja_refuses_is_refused_with_its_message() {
        for source in [
            "a *", "* a", "a * * b", "(a * b", "a * b)", "'a * b", "a * b c",
        ] {
            let expected = super::super::ENV.compile_expression(source).err().unwrap();
            let err = rewrite(source).err().unwrap();
            assert_eq!(err.kind(), expected.kind(), "{source}");
            assert_eq!(err.detail(), expected.detail(), "{source}");
        }
    }

    #[test]
    fn long_products_are_rewritten_and_overlong_ones_refused() {
        let source = vec!["a"; 40].join(" * ");
        let rewritten = rewrite(&source).unwrap();
        assert_eq!(rewritten.matches(MUL_FUNCTION).count(), 39);
        // As long as `Expr::compile` lets an expression be: more calls in one
        // another than minijinja parses.
        let source = vec!["a"; super::super::MAX_SOURCE_BYTES / 2].join("*");
        let err = rewrite(&source).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SyntaxError);
        assert!(
            err.to_string()
                .contains("too many multiplications in a row"),
            "{err}"
        );
    }

    #[test]
    fn a_tree_and_its_rewrite_have_one_shape() {
        let tree = syntax::parse("f(a, k=b * c)|g(1) if x[1:2] else {'k': -y.z}").unwrap();
        let rewritten =
            syntax::parse("f(a, k= __mul(b , c))|g(1) if x[1:2] else {'k': -y.z}").unwrap();
        assert_eq!(shape(&tree), shape(&rewritten));
        let other = syntax::parse("f(a, k=b / c)|g(1) if x[1:2] else {'k': -y.z}").unwrap();
        assert_ne!(shape(&tree), shape(&other));
    }
}
