//! The JavaScript engine behind `run_script`, built as a component of the
//! `script-engine` world (`wit/script.wit`).
//!
//! The model's program runs as the body of an async function in Boa. Its
//! only way out of the sandbox is `call(module, tool, arguments, {account})`
//! (and `tools.<module>.<tool>(arguments, {account})`, the same through a
//! proxy): each starts a tool call in the host and returns a promise. The
//! event loop here runs the script's jobs until it waits on calls, then
//! asks the host for the next call that ended and settles its promise, so
//! calls the script starts together (`Promise.all`) run together in the
//! host. Everything else about a call (masks, consent, validation, audit,
//! which calls may overlap) is the host's.
//!
//! Limits are the host's too: the CPU budget and memory limit stop a
//! script that loops or allocates without end, whatever it does here.

use std::cell::RefCell;
use std::collections::BTreeMap;

use boa_engine::builtins::promise::{PromiseState, ResolvingFunctions};
use boa_engine::object::builtins::JsPromise;
use boa_engine::property::Attribute;
use boa_engine::{
    Context, JsError, JsNativeError, JsResult, JsValue, NativeFunction, Source, js_string,
};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "mcpist:plugin/script-engine@0.2.0",
    // 0.1.0's interfaces sit beside 0.2.0's in `wit/`; this world uses none.
    generate_all,
});

use mcpist::plugin0_2_0::script_host;

struct Engine;

impl exports::mcpist::plugin0_2_0::script::Guest for Engine {
    fn run(source: String) -> Result<String, String> {
        let outcome = run(&source);
        // The promises' resolving functions belong to this run's context.
        WAITING.with(|waiting| waiting.borrow_mut().clear());
        outcome
    }
}

export!(Engine);

thread_local! {
    /// The promises of calls started and not yet ended, by call number.
    static WAITING: RefCell<BTreeMap<u32, ResolvingFunctions>> = const { RefCell::new(BTreeMap::new()) };
}

/// Globals defined in JavaScript before the script runs: `tools` turns
/// `tools.github.get_issue(args)` into `call("github", "get_issue", args)`.
/// `then` is never a module or tool, so that awaiting `tools` or one of its
/// modules by mistake does not call anything.
const PRELUDE: &str = r#"
Object.defineProperty(globalThis, "tools", {
  value: new Proxy({}, {
    get(_, module) {
      if (typeof module !== "string" || module === "then") return undefined;
      return new Proxy({}, {
        get(_, tool) {
          if (typeof tool !== "string" || tool === "then") return undefined;
          return (args, options) => call(module, tool, args, options);
        },
      });
    },
  }),
});
"#;

/// Run `source` to the end: its value as JSON text, or why it failed.
fn run(source: &str) -> Result<String, String> {
    let mut context = Context::default();
    define_globals(&mut context).map_err(|e| format!("the engine could not start: {e}"))?;
    // The body of an async function, on the script's own first line, so
    // that the engine's line numbers are the script's.
    let wrapped = format!("(async () => {{{source}\n}})()");
    let started = context
        .eval(Source::from_bytes(wrapped.as_bytes()))
        .map_err(|e| uncaught(&e, &mut context))?;
    let promise = started
        .as_object()
        .and_then(|object| JsPromise::from_object(object.clone()).ok())
        .ok_or_else(|| "the script did not start as an async function".to_owned())?;
    loop {
        context.run_jobs().map_err(|e| uncaught(&e, &mut context))?;
        match promise.state() {
            PromiseState::Fulfilled(value) => return json_text(&value, &mut context),
            PromiseState::Rejected(reason) => {
                return Err(uncaught(&JsError::from_opaque(reason), &mut context));
            }
            PromiseState::Pending => {}
        }
        let Some(ended) = script_host::next_ended() else {
            return Err(
                "the script is waiting for something that never comes: it awaits a \
                        promise that no tool call settles (only tool calls and promises made \
                        from them can be awaited)"
                    .to_owned(),
            );
        };
        settle(ended, &mut context).map_err(|e| uncaught(&e, &mut context))?;
    }
}

fn define_globals(context: &mut Context) -> JsResult<()> {
    context.register_global_builtin_callable(
        js_string!("call"),
        4,
        NativeFunction::from_fn_ptr(start_call),
    )?;
    let console = boa_engine::object::ObjectInitializer::new(context)
        .function(
            NativeFunction::from_fn_ptr(|_, args, ctx| console_line("", args, ctx)),
            js_string!("log"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(|_, args, ctx| console_line("", args, ctx)),
            js_string!("info"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(|_, args, ctx| console_line("warn: ", args, ctx)),
            js_string!("warn"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(|_, args, ctx| console_line("error: ", args, ctx)),
            js_string!("error"),
            0,
        )
        .build();
    context.register_global_property(js_string!("console"), console, Attribute::all())?;
    context.eval(Source::from_bytes(PRELUDE))?;
    Ok(())
}

/// `call(module, tool, arguments?, {account}?)`: start the call in the host
/// and return the promise its end settles.
fn start_call(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let name = |index: usize, what: &str, context: &mut Context| -> JsResult<String> {
        match args.get(index) {
            Some(value) if value.is_string() => {
                Ok(value.to_string(context)?.to_std_string_escaped())
            }
            _ => Err(JsNativeError::typ()
                .with_message(format!(
                    "call(module, tool, arguments, options): `{what}` must be a string"
                ))
                .into()),
        }
    };
    let module = name(0, "module", context)?;
    let tool = name(1, "tool", context)?;
    let arguments = match args.get(2) {
        None => serde_json::json!({}),
        Some(value) if value.is_undefined() || value.is_null() => serde_json::json!({}),
        Some(value) => value
            .to_json(context)?
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let account = match args.get(3) {
        Some(options) if options.is_object() => {
            let account = options
                .as_object()
                .expect("checked above")
                .get(js_string!("account"), context)?;
            if account.is_undefined() || account.is_null() {
                None
            } else if account.is_string() {
                Some(account.to_string(context)?.to_std_string_escaped())
            } else {
                return Err(JsNativeError::typ()
                    .with_message("call options: `account` must be a string")
                    .into());
            }
        }
        _ => None,
    };
    let number = script_host::call_tool(&module, &tool, account.as_deref(), &arguments.to_string());
    let (promise, resolvers) = JsPromise::new_pending(context);
    WAITING.with(|waiting| waiting.borrow_mut().insert(number, resolvers));
    Ok(promise.into())
}

/// Settle the promise of a call that ended: its result, parsed, or an
/// `Error` carrying the host's reason.
fn settle(ended: script_host::Ended, context: &mut Context) -> JsResult<()> {
    let Some(resolvers) = WAITING.with(|waiting| waiting.borrow_mut().remove(&ended.call)) else {
        return Ok(());
    };
    match ended.outcome {
        Ok(text) => {
            let value = serde_json::from_str(&text)
                .map_err(|e| JsNativeError::syntax().with_message(e.to_string()))
                .and_then(|json| {
                    JsValue::from_json(&json, context)
                        .map_err(|e| JsNativeError::error().with_message(e.to_string()))
                })?;
            resolvers
                .resolve
                .call(&JsValue::undefined(), &[value], context)?;
        }
        Err(reason) => {
            let error = JsNativeError::error()
                .with_message(reason)
                .to_opaque(context);
            resolvers
                .reject
                .call(&JsValue::undefined(), &[error.into()], context)?;
        }
    }
    Ok(())
}

/// `console.log` and friends: the arguments as text, separated by spaces;
/// strings as they are, everything else as JSON where it is JSON.
fn console_line(prefix: &str, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let mut line = String::from(prefix);
    for (index, value) in args.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&shown(value, context));
    }
    script_host::console(&line);
    Ok(JsValue::undefined())
}

fn shown(value: &JsValue, context: &mut Context) -> String {
    if value.is_string() {
        return value
            .to_string(context)
            .map(|s| s.to_std_string_escaped())
            .unwrap_or_default();
    }
    if value.is_object()
        && !value.is_callable()
        && let Ok(Some(json)) = value.to_json(context)
    {
        return json.to_string();
    }
    value.display().to_string()
}

/// The script's value as JSON text; `undefined` (no `return`) is `null`.
fn json_text(value: &JsValue, context: &mut Context) -> Result<String, String> {
    match value.to_json(context) {
        Ok(Some(json)) => Ok(json.to_string()),
        Ok(None) => Ok("null".to_owned()),
        Err(e) => Err(format!(
            "the script's return value cannot be made JSON: {}",
            uncaught(&e, context)
        )),
    }
}

/// An uncaught error as the model should read it: `TypeError: …`, or the
/// thrown value when it is not an error.
fn uncaught(error: &JsError, context: &mut Context) -> String {
    match error.try_native(context) {
        Ok(native) => native.to_string(),
        Err(_) => {
            let thrown = error.to_opaque(context);
            format!("uncaught {}", shown(&thrown, context))
        }
    }
}
