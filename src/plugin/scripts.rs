//! The sandbox hooks run in: QuickJS through rquickjs, with no file, network or
//! module access, and limits per run on memory, stack depth, operations and wall
//! time. A script is the body of a function; a run passes it named JSON
//! arguments and the host API as plain functions (`reject`, `notify`, `get`,
//! `create`, `console.log`), and reads the `record` argument back afterwards, so a script
//! changes a record by assigning its fields.
//!
//! Runs happen on a few engine threads of their own; each keeps the engines it
//! prepared (a context with the host API and one compiled script, its globals
//! frozen), since starting an engine costs more than a typical run. Nothing here
//! touches the database: `plugin::hooks` answers `get` from the write's transaction.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Persistent, Runtime};
use serde_json::Value;
use tokio::sync::oneshot;

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
    /// Calls of `create`.
    pub creates: usize,
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
            creates: 20,
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
    pub creates: Vec<ScriptCreate>,
}

/// `create(entity, fields)`: a record the host creates once the run succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCreate {
    pub entity: String,
    pub fields: Value,
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
pub trait Reader: FnMut(&str, i64) -> Result<Option<Value>, String> + Send + 'static {}
impl<F: FnMut(&str, i64) -> Result<Option<Value>, String> + Send + 'static> Reader for F {}

/// Defines the host API from the raw functions the run installs. `reject` throws so
/// that the script stops; a script that catches it is still rejected.
const PRELUDE: &str = r#"
"use strict";
globalThis.reject = (a, b) => {
  if (b === undefined) __reject(null, String(a)); else __reject(String(a), String(b));
  throw new Error("rejected: " + (b === undefined ? a : b));
};
// The host answers errors as `{error}` for these wrappers to throw: an error thrown
// from Rust would have to set `message` on an object whose prototype is frozen.
const host = (answer) => {
  if (answer !== undefined && answer !== null && answer.error !== undefined) throw new Error(answer.error);
  return answer;
};
globalThis.notify = (user, title, body) => {
  host(__notify(Number(user), String(title), body == null ? "" : String(body)));
};
globalThis.create = (entity, fields) => {
  host(__create(String(entity), JSON.stringify(fields == null ? {} : fields)));
};
globalThis.get = (entity, id) => {
  const answer = host(__get(String(entity), Number(id)));
  return answer == null ? null : JSON.parse(answer.record);
};
globalThis.console = {
  log: (...parts) =>
    __log(parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" ")),
};
"#;

/// Freezes every object reachable from the global object once the host API and the
/// script are in place: a prepared engine is reused across runs of its script, and
/// frozen globals and built-ins leave a run nowhere to keep state for the next one.
const LOCKDOWN: &str = r#"
"use strict";
(() => {
  const seen = new Set();
  const freeze = (value) => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (seen.has(value)) return;
    seen.add(value);
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      const property = Object.getOwnPropertyDescriptor(value, key);
      if (!property) continue;
      if ("value" in property) freeze(property.value);
      freeze(property.get);
      freeze(property.set);
    }
    freeze(Object.getPrototypeOf(value));
  };
  freeze(globalThis);
})();
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

/// One run of a script: `scope` (the tenant) and `name` (the hook) with the script
/// text identify the prepared engine it may reuse; nothing is shared across scopes.
#[derive(Debug, Clone)]
pub struct Run {
    pub scope: String,
    pub name: String,
    pub script: String,
    /// By the names in [`ARGUMENTS`].
    pub arguments: [Value; 4],
    pub limits: Limits,
}

/// The outcome of a run, sent back from the engine thread.
pub type Reply = oneshot::Receiver<Result<Finished, ScriptError>>;

/// Queues `run` on the engine threads. The reader lives as long as the run and is
/// dropped as soon as it ends, before the reply is sent.
pub fn submit(run: Run, read: impl Reader) -> Reply {
    let (reply, replied) = oneshot::channel();
    let job = Job {
        run,
        read: Box::new(read),
        reply,
    };
    if let Err(mpsc::SendError(job)) = engines().send(job) {
        let _ = job.reply.send(Err(ScriptError::Engine(
            "the engine threads are gone".into(),
        )));
    }
    replied
}

struct Job {
    run: Run,
    read: Box<dyn Reader>,
    reply: oneshot::Sender<Result<Finished, ScriptError>>,
}

/// Engines kept per thread: starting one costs more than most runs, so each thread
/// keeps the engines it prepared, least recently used dropped first.
const ENGINES_PER_THREAD: usize = 64;

/// The engine threads' queue, started on first use: as many threads as cores (at
/// least two, so one long script does not hold up every other), taking runs in turn.
fn engines() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("metacrm-script-{i}"))
                .stack_size(8 << 20)
                .spawn(move || engine_thread(&jobs))
                .expect("start a script engine thread");
        }
        queue
    })
}

fn engine_thread(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut thread = match EngineThread::new() {
        Ok(thread) => thread,
        Err(error) => {
            tracing::error!("a script engine thread could not start: {error}");
            return;
        }
    };
    loop {
        let next = jobs.lock().map(|jobs| jobs.recv());
        let Ok(Ok(job)) = next else {
            return;
        };
        let Job { run, read, reply } = job;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| thread.run(&run, read)))
                .unwrap_or_else(|_| {
                    // The engine a panic interrupted may be in any state: start afresh.
                    thread.engines.clear();
                    Err(ScriptError::Engine("the script engine panicked".into()))
                });
        let _ = reply.send(outcome);
    }
}

/// One thread's runtime and the engines (contexts) it prepared.
struct EngineThread {
    runtime: Runtime,
    engines: HashMap<(String, String), Prepared>,
    clock: u64,
    /// Bytes the prepared engines hold (see `measure`).
    in_use: usize,
}

/// A context with the host API, its globals frozen, and one script compiled in it.
struct Prepared {
    script: String,
    context: Context,
    function: Persistent<Function<'static>>,
    state: Rc<RefCell<State>>,
    last_used: u64,
}

impl EngineThread {
    fn new() -> Result<EngineThread, ScriptError> {
        let runtime = Runtime::new().map_err(engine)?;
        runtime.set_max_stack_size(Limits::default().stack_bytes);
        Ok(EngineThread {
            runtime,
            engines: HashMap::new(),
            clock: 0,
            in_use: 0,
        })
    }

    fn run(&mut self, run: &Run, read: Box<dyn Reader>) -> Result<Finished, ScriptError> {
        self.clock += 1;
        let key = (run.scope.clone(), run.name.clone());
        if self
            .engines
            .get(&key)
            .is_none_or(|p| p.script != run.script)
        {
            self.engines.remove(&key);
            if self.engines.len() >= ENGINES_PER_THREAD
                && let Some(oldest) = self
                    .engines
                    .iter()
                    .min_by_key(|(_, p)| p.last_used)
                    .map(|(k, _)| k.clone())
            {
                self.engines.remove(&oldest);
            }
            let prepared = self.prepare(run)?;
            self.engines.insert(key.clone(), prepared);
            self.measure();
        }
        let prepared = self.engines.get_mut(&key).expect("prepared above");
        prepared.last_used = self.clock;
        let outcome = execute(&self.runtime, self.in_use, prepared, run, read);
        // After a failure the engine may hold a half-built state (out of memory, an
        // interrupted call): the next run prepares a fresh one.
        if outcome.is_err() {
            self.engines.remove(&key);
            self.measure();
        }
        outcome
    }

    /// What the prepared engines hold, from which each run's memory limit counts.
    /// Measuring walks the whole heap, so it happens when the engines change (a run's
    /// own garbage is freed as it ends: QuickJS counts references).
    fn measure(&mut self) {
        self.runtime.run_gc();
        self.in_use = usize::try_from(self.runtime.memory_usage().malloc_size).unwrap_or(0);
    }

    fn prepare(&self, run: &Run) -> Result<Prepared, ScriptError> {
        self.runtime.set_memory_limit(0);
        self.runtime.set_interrupt_handler(None);
        let context = Context::full(&self.runtime).map_err(engine)?;
        let state = Rc::new(RefCell::new(State::default()));
        let function = context.with(|ctx| -> Result<_, ScriptError> {
            install_host(&ctx, &state).map_err(engine)?;
            ctx.eval::<(), _>(PRELUDE).map_err(engine)?;
            let function = compile(&ctx, &run.name, &run.script)
                .map_err(|e| ScriptError::Compile(describe(&e)))?;
            ctx.eval::<(), _>(LOCKDOWN).map_err(engine)?;
            Ok(Persistent::save(&ctx, function))
        })?;
        Ok(Prepared {
            script: run.script.clone(),
            context,
            function,
            state,
            last_used: 0,
        })
    }
}

const TRIPPED_NONE: u8 = 0;
const TRIPPED_OPERATIONS: u8 = 1;
const TRIPPED_TIME: u8 = 2;

/// Runs a prepared script once within `run.limits`.
fn execute(
    runtime: &Runtime,
    in_use: usize,
    prepared: &Prepared,
    run: &Run,
    read: Box<dyn Reader>,
) -> Result<Finished, ScriptError> {
    let limits = &run.limits;
    *prepared.state.borrow_mut() = State {
        read: Some(read),
        max_reads: limits.reads,
        max_notices: limits.notices,
        max_creates: limits.creates,
        ..State::default()
    };
    // The limit counts from what the thread's prepared engines already hold.
    runtime.set_memory_limit(in_use + limits.memory_bytes);
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
    let outcome = prepared.context.with(|ctx| -> Result<Value, ScriptError> {
        let function = prepared.function.clone().restore(&ctx).map_err(engine)?;
        let mut values = Vec::with_capacity(run.arguments.len());
        for argument in &run.arguments {
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
        if prepared.state.borrow().rejection.is_some() {
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
        // A limit the script ran into fails the run even if the script caught it.
        if let Some(host) = prepared.state.borrow_mut().host_error.take() {
            return Err(ScriptError::Thrown(host));
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
    runtime.set_interrupt_handler(None);
    runtime.set_memory_limit(0);
    // The reader goes now: the host stops serving reads when it is dropped.
    let state = std::mem::take(&mut *prepared.state.borrow_mut());
    let record = outcome?;
    Ok(Finished {
        record,
        rejection: state.rejection,
        notices: state.notices,
        creates: state.creates,
    })
}

/// What the host functions of one prepared engine share with the run in progress.
#[derive(Default)]
struct State {
    read: Option<Box<dyn Reader>>,
    max_reads: usize,
    max_notices: usize,
    max_creates: usize,
    rejection: Option<Rejection>,
    notices: Vec<ScriptNotice>,
    creates: Vec<ScriptCreate>,
    reads: usize,
    /// A host call that failed for a reason the script must not be able to swallow.
    host_error: Option<String>,
}

fn install_host<'js>(ctx: &Ctx<'js>, state: &Rc<RefCell<State>>) -> rquickjs::Result<()> {
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
    globals.set(
        "__notify",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, user: f64, title: String, body: String| {
                let mut state = shared.borrow_mut();
                if state.notices.len() >= state.max_notices {
                    let message =
                        format!("notify may be called at most {} times", state.max_notices);
                    state.host_error = Some(message.clone());
                    return host_error(&ctx, &message);
                }
                state.notices.push(ScriptNotice {
                    user: user as i64,
                    title,
                    body,
                });
                Ok(None)
            },
        )?,
    )?;
    let shared = state.clone();
    globals.set(
        "__create",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, entity: String, fields: String| {
                let mut state = shared.borrow_mut();
                if state.creates.len() >= state.max_creates {
                    let message =
                        format!("create may be called at most {} times", state.max_creates);
                    state.host_error = Some(message.clone());
                    return host_error(&ctx, &message);
                }
                let fields = serde_json::from_str(&fields).unwrap_or(Value::Null);
                state.creates.push(ScriptCreate { entity, fields });
                Ok(None)
            },
        )?,
    )?;
    let shared = state.clone();
    globals.set(
        "__get",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  entity: String,
                  id: f64|
                  -> rquickjs::Result<Option<Object<'js>>> {
                let mut state = shared.borrow_mut();
                state.reads += 1;
                if state.reads > state.max_reads {
                    let message = format!("get may be called at most {} times", state.max_reads);
                    state.host_error = Some(message.clone());
                    return host_error(&ctx, &message);
                }
                let Some(read) = state.read.as_mut() else {
                    return host_error(&ctx, "get is not available here");
                };
                match read(&entity, id as i64) {
                    Ok(None) => Ok(None),
                    Ok(Some(record)) => {
                        let answer = Object::new(ctx.clone())?;
                        answer.set("record", record.to_string())?;
                        Ok(Some(answer))
                    }
                    Err(message) => host_error(&ctx, &message),
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

/// A host function's failure, for the prelude's wrapper to throw.
fn host_error<'js>(ctx: &Ctx<'js>, message: &str) -> rquickjs::Result<Option<Object<'js>>> {
    let answer = Object::new(ctx.clone())?;
    answer.set("error", message)?;
    Ok(Some(answer))
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

    fn run_with(
        script: &str,
        arguments: [Value; 4],
        read: impl Reader,
    ) -> Result<Finished, ScriptError> {
        let run = Run {
            scope: "test".into(),
            name: "test".into(),
            script: script.into(),
            arguments,
            limits: Limits::default(),
        };
        submit(run, read).blocking_recv().expect("a reply")
    }

    fn run_body(script: &str, record: Value) -> Result<Finished, ScriptError> {
        let arguments = [
            record,
            Value::Null,
            json!({"id": 7}),
            json!({"name": "before_save"}),
        ];
        run_with(script, arguments, |_: &str, _| Ok(None))
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
        let done = run_with(
            "const c = get('customer', 3); notify(5, 'Hi ' + c.entity, c.id);",
            [json!({}), Value::Null, Value::Null, Value::Null],
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
    fn hostile_scripts_are_stopped_and_the_engine_recovers() {
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
        // Every engine thread still serves ordinary runs.
        for _ in 0..8 {
            let done = run_body("record.ok = true;", json!({})).unwrap();
            assert_eq!(done.record, json!({"ok": true}));
        }
    }

    #[test]
    fn a_run_keeps_nothing_for_the_next() {
        let script = "globalThis.seen = (globalThis.seen || 0) + 1; record.seen = globalThis.seen;";
        for _ in 0..3 {
            let error = run_body(script, json!({})).unwrap_err();
            assert!(
                matches!(error, ScriptError::Thrown(ref m) if m.contains("not extensible") || m.contains("read-only")),
                "{error:?}"
            );
        }
        let patch = "Array.prototype.leak = 1;";
        assert!(run_body(patch, json!({})).is_err());
        let done = run_body("record.leak = [].leak === undefined;", json!({})).unwrap();
        assert_eq!(done.record["leak"], json!(true));
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
