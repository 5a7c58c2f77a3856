//! Admin-written minijinja templates (print formats, webhook texts, scheduled
//! notices): how long one may be, and the one way they are compiled and run.
//!
//! minijinja compiles a chain of operators (`a + b + c …`) recursively: some ten
//! thousand in one expression overflow a 2 MiB thread stack, which aborts the whole
//! server rather than failing one request. So a template is at most
//! [`MAX_TEMPLATE_BYTES`] long, and is compiled and rendered on a thread whose stack
//! holds the longest chain that fits in that many bytes.

use minijinja::Environment;

/// The longest template, in bytes: a printed A4 quote with its styles is a few KiB.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Stack for compiling and rendering one template; only the pages it touches are
/// ever allocated.
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// The environment admin-written templates and expressions run in: `fuel` bounds the
/// instructions (and so the memory) one rendering spends. It lacks minijinja's
/// `chain` filter, not Jinja2's: minijinja 3.1.0 panics comparing two chains of
/// non-sequences (`1|chain < 2|chain`, found by the expression fuzzer).
pub fn environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(fuel));
    env.remove_filter("chain");
    env
}

/// Whether `source` is short enough and compiles in `env`; the message says why not.
pub fn check(env: &Environment<'_>, source: &str) -> Result<(), String> {
    check_length(source)?;
    on_large_stack(|| env.template_from_str(source).map(|_| ()))
        .map_err(|err| format!("template error: {err}"))
}

/// Renders `source` over `context`; `source` is checked for length first.
pub fn render(
    env: &Environment<'_>,
    source: &str,
    context: minijinja::Value,
) -> Result<String, String> {
    check_length(source)?;
    on_large_stack(|| env.render_str(source, context)).map_err(|err| err.to_string())
}

fn check_length(source: &str) -> Result<(), String> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template is {} bytes long; at most {MAX_TEMPLATE_BYTES} are allowed",
            source.len()
        ));
    }
    Ok(())
}

/// Runs `work` on a thread of its own with a [`STACK_BYTES`] stack, and waits for it.
fn on_large_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("template".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, work)
            .expect("spawning a template thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest chain of operators a template may hold: compiled on the test's
    /// own 2 MiB stack, it aborts the test binary.
    fn longest_chain() -> String {
        let terms = (MAX_TEMPLATE_BYTES - "{{  }}".len()).div_ceil(2);
        format!("{{{{ {} }}}}", vec!["1"; terms].join("+"))
    }

    #[test]
    fn the_longest_operator_chain_compiles_and_renders() {
        let env = Environment::new();
        let source = longest_chain();
        assert!(source.len() <= MAX_TEMPLATE_BYTES);
        check(&env, &source).unwrap();
        let terms = (MAX_TEMPLATE_BYTES - "{{  }}".len()).div_ceil(2);
        assert_eq!(
            render(&env, &source, minijinja::Value::UNDEFINED).unwrap(),
            terms.to_string()
        );
    }

    #[test]
    fn templates_have_no_chain_filter() {
        let err = render(
            &environment(1000),
            "{{ 1|chain < 2|chain }}",
            minijinja::Value::UNDEFINED,
        )
        .unwrap_err();
        assert!(err.contains("unknown filter"), "{err}");
    }

    #[test]
    fn overlong_and_broken_templates_are_refused_with_a_reason() {
        let env = Environment::new();
        let source = format!("{}  ", longest_chain());
        assert_eq!(
            check(&env, &source).unwrap_err(),
            format!(
                "template is {} bytes long; at most 65536 are allowed",
                source.len()
            )
        );
        let err = check(&env, "{{ a + }}").unwrap_err();
        assert!(err.starts_with("template error: syntax error"), "{err}");
    }
}
