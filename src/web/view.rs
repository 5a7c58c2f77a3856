//! The minijinja environment: templates from `web/templates/`, autoescaped as HTML,
//! with `t(key)` for UI text in the page's language and `asset(path)` for versioned
//! static URLs.

use std::sync::OnceLock;

use minijinja::{Environment, State, Value};

use super::assets;
use super::i18n::{Lang, text};
use crate::error::{Error, Result};

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_loader(|name| Ok(assets::template(name)));
        // `.html` templates escape every value (minijinja's default for that suffix);
        // say it explicitly, since it is what keeps a `<script>` label harmless.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        // Our own URLs: safe to put in attributes unescaped.
        env.add_function("asset", |path: &str| {
            Value::from_safe_string(assets::url(path))
        });
        env.add_filter("snippet", |snippet: &str| {
            Value::from_safe_string(neutralize_tags(snippet))
        });
        env.add_function("t", |state: &State, key: &str| {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().and_then(Lang::parse))
                .unwrap_or(Lang::Zh);
            text(lang, key)
        });
        env
    })
}

/// Renders `template` with `context`.
pub fn render(template: &str, context: &serde_json::Value) -> Result<String> {
    environment()
        .get_template(template)
        .and_then(|t| t.render(Value::from(minijinja::value::Serde(context))))
        .map_err(|e| Error::Internal(format!("template {template}: {e:#}")))
}

/// A search snippet is escaped text with its matches in `<em>`: any other tag (which
/// a conforming backend never sends) is escaped, so a snippet can never carry markup.
fn neutralize_tags(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len());
    let mut rest = snippet;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("<em>") || tail.starts_with("</em>") {
            out.push('<');
        } else {
            out.push_str("&lt;");
        }
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_keep_only_em() {
        assert_eq!(
            neutralize_tags("深圳市<em>震华</em><script>x</script>"),
            "深圳市<em>震华</em>&lt;script>x&lt;/script>"
        );
    }

    #[test]
    fn values_are_escaped() {
        let html = render_str(
            "{{ v }}",
            minijinja::context! { v => "<script>alert(1)</script>" },
        );
        assert_eq!(html, "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;");
    }

    fn render_str(source: &str, ctx: Value) -> String {
        let mut env = environment().clone();
        env.add_template_owned("t.html", source.to_string())
            .unwrap();
        env.get_template("t.html").unwrap().render(ctx).unwrap()
    }
}
