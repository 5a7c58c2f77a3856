//! The sandbox hooks run in: QuickJS through rquickjs, a fresh runtime per run with
//! no file, network or module access, and limits on memory, stack depth, operations
//! and wall time. A script is the body of a function; a run passes it named JSON
//! arguments and the host API as plain functions (`reject`, `notify`, `get`,
//! `console.log`), and reads the `record` argument back afterwards, so a script
//! changes a record by assigning its fields.
//!
//! Everything here is synchronous and free of the database: `plugin::hooks` runs it
//! on a blocking thread and answers `get` from the write's transaction.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Exception, Function, Runtime};
use serde_json::Value;

/// What one run may use. QuickJS calls the interrupt check about every ten thousand
/// bytecode branches and calls, so `interrupts` bounds the operations a run performs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub interrupts: u32,
    pub wall: Duration,
    /// Calls of `get` (each a database read).
    pub reads: usize,
    /// Calls of `notify`.
    pub notices: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 << 20,
            stack_bytes: 256 << 10,
            interrupts: 5_000,
            wall: Duration::from_secs(1),
            reads: 20,
            notices: 20,
        }
    }
}

/// The names the script's function takes, in order; a run supplies each (null when
/// absent).
pub const ARGUMENTS: [&str; 4] = ["record", "previous", "user", "event"];

/// What a finished run asks of the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finished {
    /// The `record` argument as the script left it.
    pub record: Value,
    pub rejection: Option<Rejection>,
    pub notices: Vec<ScriptNotice>,
}

/// `reject(message)` or `reject(field, message)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub field: Option<String>,
    pub message: String,
}

/// `notify(user_id, title, body)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptNotice {
    pub user: i64,
    pub title: String,
    pub body: String,
}

/// Why a run did not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("it does not compile: {0}")]
    Compile(String),
    #[error("it threw {0}")]
    Thrown(String),
    #[error("it ran past its limit of {0}")]
    Limit(String),
    #[error("the script engine failed: {0}")]
    Engine(String),
}

/// Answers `get(entity, id)`: the record as the acting user may see it, `None` when it
/// does not exist or is out of their reach, `Err` with a message the script sees.
pub trait Reader: FnMut(&str, i64) -> Result<Option<Value>, String> + 'static {}
impl<F: FnMut(&str, i64) -> Result<Option<Value>, String> + 'static> Reader for F {}

/// Defines the host API from the raw functions the run installs. `reject` throws so
/// that the script stops; a script that catches it is still rejected.
const PRELUDE: &str = r#"
"use strict";
globalThis.reject = (a, b) => {
  if (b === undefined) __reject(null, String(a)); else __reject(String(a), String(b));
  throw new Error("rejected: " + (b === undefined ? a : b));
};
globalThis.notify = (user, title, body) =>
  __notify(Number(user), String(title), body == null ? "" : String(body));
globalThis.get = (entity, id) => {
  const text = __get(String(entity), Number(id));
  return text == null ? null : JSON.parse(text);
};
globalThis.console = {
  log: (...parts) =>
    __log(parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" ")),
};
"#;

/// The function a script's body becomes.
fn wrap(script: &str) -> String {
    format!(
        "(function ({}) {{\n\"use strict\";\n{script}\n}})",
        ARGUMENTS.join(", ")
    )
}

/// Checks that a script compiles, without running it.
pub fn check(name: &str, script: &str) -> Result<(), ScriptError> {
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(Limits::default().memory_bytes);
    let context = Context::full(&runtime).map_err(engine)?;
    context.with(|ctx| {
        compile(&ctx, name, script)
            .map(|_| ())
            .map_err(|e| ScriptError::Compile(describe(&e)))
    })
}

fn compile<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    script: &str,
) -> Result<Function<'js>, CaughtError<'js>> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = true;
    options.filename = Some(name.to_string());
    ctx.eval_with_options(wrap(script), options).catch(ctx)
}

const TRIPPED_NONE: u8 = 0;
const TRIPPED_OPERATIONS: u8 = 1;
const TRIPPED_TIME: u8 = 2;

/// Runs `script` once with `arguments` (by the names in [`ARGUMENTS`]).
pub fn run(
    name: &str,
    script: &str,
    arguments: &[Value; 4],
    limits: &Limits,
    read: impl Reader,
) -> Result<Finished, ScriptError> {
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);
    let tripped = Arc::new(AtomicU8::new(TRIPPED_NONE));
    let deadline = Instant::now() + limits.wall;
    let mut interrupts = 0u32;
    let max_interrupts = limits.interrupts;
    let flag = tripped.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        interrupts += 1;
        let why = if interrupts > max_interrupts {
            TRIPPED_OPERATIONS
        } else if Instant::now() > deadline {
            TRIPPED_TIME
        } else {
            return false;
        };
        flag.store(why, Ordering::Relaxed);
        true
    })));
    let context = Context::full(&runtime).map_err(engine)?;
    let state = Rc::new(RefCell::new(State::default()));
    let outcome = context.with(|ctx| -> Result<Value, ScriptError> {
        install_host(&ctx, &state, read, limits).map_err(engine)?;
        ctx.eval::<(), _>(PRELUDE).map_err(engine)?;
        let function =
            compile(&ctx, name, script).map_err(|e| ScriptError::Compile(describe(&e)))?;
        let mut values = Vec::with_capacity(arguments.len());
        for argument in arguments {
            values.push(ctx.json_parse(argument.to_string()).map_err(engine)?);
        }
        let record = values[0].clone();
        let called: Result<(), CaughtError> = function
            .call((
                values[0].clone(),
                values[1].clone(),
                values[2].clone(),
                values[3].clone(),
            ))
            .catch(&ctx);
        if state.borrow().rejection.is_some() {
            return Ok(Value::Null);
        }
        match tripped.load(Ordering::Relaxed) {
            TRIPPED_OPERATIONS => {
                return Err(ScriptError::Limit(format!(
                    "{} operations",
                    u64::from(limits.interrupts) * 10_000
                )));
            }
            TRIPPED_TIME => {
                return Err(ScriptError::Limit(format!(
                    "{} ms of run time",
                    limits.wall.as_millis()
                )));
            }
            _ => {}
        }
        if let Err(error) = called {
            let message = describe(&error);
            // Out of memory, QuickJS may not manage to allocate the error either and
            // throws null instead (a script that throws null itself is reported alike).
            let null = matches!(&error, CaughtError::Value(v) if v.is_null());
            if null || message.contains("out of memory") {
                return Err(ScriptError::Limit(format!(
                    "{} MB of memory",
                    limits.memory_bytes >> 20
                )));
            }
            if let Some(host) = state.borrow_mut().host_error.take() {
                return Err(ScriptError::Thrown(host));
            }
            return Err(ScriptError::Thrown(message));
        }
        let text = ctx
            .json_stringify(record)
            .map_err(engine)?
            .map(|s| s.to_string())
            .transpose()
            .map_err(engine)?
            .unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).map_err(|e| ScriptError::Engine(e.to_string()))
    });
    // The runtime's functions hold the state; they go with it.
    drop(context);
    drop(runtime);
    let record = outcome?;
    let state = Rc::try_unwrap(state)
        .map(RefCell::into_inner)
        .unwrap_or_default();
    Ok(Finished {
        record,
        rejection: state.rejection,
        notices: state.notices,
    })
}

#[derive(Default)]
struct State {
    rejection: Option<Rejection>,
    notices: Vec<ScriptNotice>,
    reads: usize,
    /// A host call that failed for a reason the script must not be able to swallow.
    host_error: Option<String>,
}

fn install_host<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    read: impl Reader,
    limits: &Limits,
) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    let shared = state.clone();
    globals.set(
        "__reject",
        Function::new(
            ctx.clone(),
            move |field: Option<String>, message: String| {
                shared
                    .borrow_mut()
                    .rejection
                    .get_or_insert(Rejection { field, message });
            },
        )?,
    )?;
    let shared = state.clone();
    let max_notices = limits.notices;
    globals.set(
        "__notify",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, user: f64, title: String, body: String| {
                let mut state = shared.borrow_mut();
                if state.notices.len() >= max_notices {
                    return Err(Exception::throw_message(
                        &ctx,
                        &format!("notify may be called at most {max_notices} times"),
                    ));
                }
                state.notices.push(ScriptNotice {
                    user: user as i64,
                    title,
                    body,
                });
                Ok(())
            },
        )?,
    )?;
    let shared = state.clone();
    let max_reads = limits.reads;
    let read = RefCell::new(read);
    globals.set(
        "__get",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, entity: String, id: f64| -> rquickjs::Result<Option<String>> {
                let mut state = shared.borrow_mut();
                state.reads += 1;
                if state.reads > max_reads {
                    let message = format!("get may be called at most {max_reads} times");
                    state.host_error = Some(message.clone());
                    return Err(Exception::throw_message(&ctx, &message));
                }
                drop(state);
                match (read.borrow_mut())(&entity, id as i64) {
                    Ok(record) => Ok(record.map(|r| r.to_string())),
                    Err(message) => Err(Exception::throw_message(&ctx, &message)),
                }
            },
        )?,
    )?;
    globals.set(
        "__log",
        Function::new(ctx.clone(), |line: String| {
            tracing::info!(target: "metacrm::hooks", "{line}");
        })?,
    )?;
    Ok(())
}

/// A thrown value as one line: the error's message and where it was thrown.
fn describe(error: &CaughtError<'_>) -> String {
    match error {
        CaughtError::Exception(exception) => {
            let message = exception.message().unwrap_or_default();
            let place = exception
                .stack()
                .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
                .filter(|l| !l.is_empty());
            match place {
                Some(place) => format!("{message} ({place})"),
                None => message,
            }
        }
        CaughtError::Value(value) => match value.as_string().and_then(|s| s.to_string().ok()) {
            Some(text) => text,
            None => format!("{value:?}"),
        },
        CaughtError::Error(error) => error.to_string(),
    }
}

fn engine(error: rquickjs::Error) -> ScriptError {
    ScriptError::Engine(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_reads(_: &str, _: i64) -> Result<Option<Value>, String> {
        Ok(None)
    }

    fn run_body(script: &str, record: Value) -> Result<Finished, ScriptError> {
        run(
            "test",
            script,
            &[
                record,
                Value::Null,
                json!({"id": 7}),
                json!({"name": "before_save"}),
            ],
            &Limits::default(),
            no_reads,
        )
    }

    #[test]
    fn a_script_changes_the_record_and_sees_its_arguments() {
        let done = run_body(
            "record.total = record.price * record.qty; record.by = user.id; record.on = event.name;",
            json!({"price": 2.5, "qty": 4}),
        )
        .unwrap();
        assert_eq!(
            done.record,
            json!({"price": 2.5, "qty": 4, "total": 10, "by": 7, "on": "before_save"})
        );
        assert_eq!(done.rejection, None);
    }

    #[test]
    fn reject_stops_the_script_even_when_caught() {
        let done = run_body(
            "try { reject('discount', 'too deep'); } catch (e) {} record.after = 1;",
            json!({}),
        )
        .unwrap();
        assert_eq!(
            done.rejection,
            Some(Rejection {
                field: Some("discount".into()),
                message: "too deep".into()
            })
        );
    }

    #[test]
    fn notices_and_reads_reach_the_host() {
        let read = |entity: &str, id: i64| Ok(Some(json!({"entity": entity, "id": id})));
        let done = run(
            "test",
            "const c = get('customer', 3); notify(5, 'Hi ' + c.entity, c.id);",
            &[json!({}), Value::Null, Value::Null, Value::Null],
            &Limits::default(),
            read,
        )
        .unwrap();
        assert_eq!(
            done.notices,
            vec![ScriptNotice {
                user: 5,
                title: "Hi customer".into(),
                body: "3".into()
            }]
        );
    }

    #[test]
    fn hostile_scripts_are_stopped() {
        let endless = run_body("while (true) {}", json!({}));
        assert!(
            matches!(endless, Err(ScriptError::Limit(ref m)) if m.contains("operations")),
            "{endless:?}"
        );
        let huge = run_body("record.s = 'x'.repeat(100000000);", json!({}));
        assert!(
            matches!(huge, Err(ScriptError::Limit(ref m)) if m.contains("memory")),
            "{huge:?}"
        );
        let hoard = run_body(
            "const a = []; while (true) a.push({n: a.length});",
            json!({}),
        );
        assert!(
            matches!(hoard, Err(ScriptError::Limit(ref m)) if m.contains("memory")),
            "{hoard:?}"
        );
        let deep = run_body("const f = (n) => f(n + 1) + 1; f(0);", json!({}));
        assert!(
            matches!(deep, Err(ScriptError::Thrown(ref m)) if m.contains("stack")),
            "{deep:?}"
        );
        let thrown = run_body("null.x;", json!({}));
        assert!(matches!(thrown, Err(ScriptError::Thrown(_))), "{thrown:?}");
    }

    #[test]
    fn the_sandbox_has_no_host_access() {
        let done = run_body(
            "record.seen = [typeof require, typeof process, typeof std, typeof os, typeof fetch, typeof import_meta];",
            json!({}),
        )
        .unwrap();
        assert_eq!(
            done.record["seen"],
            json!([
                "undefined",
                "undefined",
                "undefined",
                "undefined",
                "undefined",
                "undefined"
            ])
        );
    }

    #[test]
    fn syntax_errors_are_reported_at_check() {
        assert!(check("ok", "record.a = 1;").is_ok());
        let error = check("bad", "record.a = ;").unwrap_err();
        assert!(
            matches!(error, ScriptError::Compile(ref m) if m.contains("bad")),
            "{error:?}"
        );
    }
}
