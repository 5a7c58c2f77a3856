//! Walking the syntax tree minijinja's own parser gives for an expression (its
//! `unstable_machinery` API, which has no semver promise: Cargo.toml pins the exact
//! minijinja version).

use std::collections::HashMap;

use minijinja::machinery::ast::{CallArg, Expr as Node};

pub(super) use minijinja::machinery::parse_expr as parse;

/// A node's operands, in source order.
pub(super) fn operands<'n, 'a>(node: &'n Node<'a>) -> Vec<&'n Node<'a>> {
    match node {
        Node::Var(_) | Node::Const(_) => Vec::new(),
        Node::Slice(slice) => std::iter::once(&slice.expr)
            .chain(
                [&slice.start, &slice.stop, &slice.step]
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        Node::UnaryOp(unary) => vec![&unary.expr],
        Node::BinOp(binary) => vec![&binary.left, &binary.right],
        Node::Compare(compare) => std::iter::once(&compare.expr)
            .chain(compare.ops.iter().map(|op| &op.expr))
            .collect(),
        Node::IfExpr(branch) => [&branch.test_expr, &branch.true_expr]
            .into_iter()
            .chain(&branch.false_expr)
            .collect(),
        Node::Filter(filter) => filter.expr.iter().chain(arguments(&filter.args)).collect(),
        Node::Test(test) => std::iter::once(&test.expr)
            .chain(arguments(&test.args))
            .collect(),
        Node::GetAttr(attr) => vec![&attr.expr],
        Node::GetItem(item) => vec![&item.expr, &item.subscript_expr],
        Node::Call(call) => std::iter::once(&call.expr)
            .chain(arguments(&call.args))
            .collect(),
        Node::List(list) => list.items.iter().collect(),
        Node::Tuple(tuple) => tuple.items.iter().collect(),
        // Keys and values alternate in the source.
        Node::Map(map) => map
            .keys
            .iter()
            .zip(&map.values)
            .flat_map(|(key, value)| [key, value])
            .collect(),
    }
}

/// The expressions passed as arguments, whatever their kind.
pub(super) fn arguments<'n, 'a>(args: &'n [CallArg<'a>]) -> impl Iterator<Item = &'n Node<'a>> {
    args.iter().map(|arg| match arg {
        CallArg::Pos(expr)
        | CallArg::Kwarg(_, expr)
        | CallArg::PosSplat(expr)
        | CallArg::KwargSplat(expr) => expr,
    })
}

/// The byte range every node of a tree covers, itself and everything under it,
/// keyed by the node's address. A node's own span is not enough: a filter's and a
/// test's start at their name, after their operand.
pub(super) fn extents<'a>(tree: &Node<'a>) -> HashMap<*const Node<'a>, (usize, usize)> {
    let mut extents = HashMap::new();
    // A stack, not recursion (`a * b * c …` nests as deep as it is long); a node is
    // visited again once its operands are done.
    let mut pending = vec![(tree, false)];
    while let Some((node, operands_done)) = pending.pop() {
        if !operands_done {
            pending.push((node, true));
            pending.extend(operands(node).into_iter().map(|operand| (operand, false)));
            continue;
        }
        let span = node.span();
        let own = (span.start_offset as usize, span.end_offset as usize);
        let extent = operands(node)
            .into_iter()
            .map(|operand| extents[&std::ptr::from_ref(operand)])
            .fold(own, |(start, end), (operand_start, operand_end)| {
                (start.min(operand_start), end.max(operand_end))
            });
        extents.insert(std::ptr::from_ref(node), extent);
    }
    extents
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NameKind {
    Filter,
    Test,
}

/// The filter (`x|name`) and test (`x is name`) names an expression uses, in the
/// order they are written.
pub(super) fn filter_and_test_names(node: &Node) -> Vec<(NameKind, String)> {
    let mut names = Vec::new();
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        // Their spans start at the name.
        match node {
            Node::Filter(filter) => {
                names.push((node.span().start_offset, NameKind::Filter, filter.name))
            }
            Node::Test(test) => names.push((node.span().start_offset, NameKind::Test, test.name)),
            _ => {}
        }
        pending.extend(operands(node));
    }
    names.sort_by_key(|(start, ..)| *start);
    names
        .into_iter()
        .map(|(_, kind, name)| (kind, name.to_owned()))
        .collect()
}
