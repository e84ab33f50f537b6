//! A module declared once: each tool is one [`Declaration::tool`] call with
//! its name, description, flags and handler, and its input schema derived
//! from the handler's arguments type (`#[derive(Deserialize, JsonSchema)]`),
//! so that the schema the host validates against and the type the handler
//! reads cannot drift apart. [`crate::module!`] exports it.
//!
//! ```ignore
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct CountArgs {
//!     /// The text to count.
//!     text: String,
//! }
//!
//! fn declaration() -> Declaration {
//!     Declaration::new("text", env!("CARGO_PKG_VERSION"), "Text utilities.")
//!         .tool(
//!             ToolSpec::new("count", "Count the words of a text.", ToolFlags::READ_ONLY),
//!             |args: CountArgs, _call: &mut Call| {
//!                 Ok(serde_json::json!({"words": args.text.split_whitespace().count()}))
//!             },
//!         )
//! }
//! mcpist_plugin::module!(declaration);
//! ```

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::web::{self, Transport};
use crate::{CallContext, CallOutput, CredentialBinding, ModuleInfo, Tool, ToolError, ToolFlags};

/// What a handler is given besides its arguments: who the call is for, and
/// the way out. In a module `http` is the host ([`web::Host`]); native tests
/// run the same handlers over a scripted API or a local server.
pub struct Call<'a> {
    pub context: &'a CallContext,
    pub http: &'a mut dyn Transport,
}

/// What a tool is, apart from its arguments (which its handler's type says).
pub struct ToolSpec {
    name: String,
    description: String,
    flags: ToolFlags,
    output: Option<Value>,
}

impl ToolSpec {
    pub fn new(name: &str, description: &str, flags: ToolFlags) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            flags,
            output: None,
        }
    }

    /// The JSON Schema of the structured result; the host checks every
    /// result against it.
    pub fn output(mut self, schema: Value) -> ToolSpec {
        self.output = Some(schema);
        self
    }
}

/// What a handler may return: a value, given to the client as structured
/// content (and as its JSON text), or a [`CallOutput`] the handler built
/// itself, e.g. text for the model beside a structured summary.
pub trait IntoOutput {
    fn into_output(self) -> CallOutput;
}

impl IntoOutput for Value {
    fn into_output(self) -> CallOutput {
        crate::structured(&self)
    }
}

impl IntoOutput for CallOutput {
    fn into_output(self) -> CallOutput {
        self
    }
}

type Handler = Box<dyn Fn(&str, &mut Call<'_>) -> Result<CallOutput, ToolError>>;

struct Declared {
    spec: ToolSpec,
    input: fn() -> Value,
    run: Handler,
}

/// A module: what `describe` answers and how `call` dispatches.
pub struct Declaration {
    name: String,
    version: String,
    description: String,
    hosts: Vec<String>,
    credentials: Vec<CredentialBinding>,
    tools: Vec<Declared>,
}

impl Declaration {
    pub fn new(name: &str, version: &str, description: &str) -> Declaration {
        Declaration {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            hosts: Vec::new(),
            credentials: Vec::new(),
            tools: Vec::new(),
        }
    }

    /// An origin the module may send requests to, e.g. `https://api.github.com`.
    pub fn host(mut self, origin: &str) -> Declaration {
        self.hosts.push(origin.into());
        self
    }

    /// A credential the host attaches to requests for the module.
    pub fn credential(mut self, binding: CredentialBinding) -> Declaration {
        self.credentials.push(binding);
        self
    }

    /// A tool whose arguments are an `A` and whose result is what `run`
    /// returns.
    pub fn tool<A, O, F>(mut self, spec: ToolSpec, run: F) -> Declaration
    where
        A: DeserializeOwned + JsonSchema + 'static,
        O: IntoOutput,
        F: Fn(A, &mut Call<'_>) -> Result<O, ToolError> + 'static,
    {
        self.tools.push(Declared {
            spec,
            input: input_schema::<A>,
            run: Box::new(move |arguments, call| {
                run(crate::arguments(arguments)?, call).map(IntoOutput::into_output)
            }),
        });
        self
    }

    /// What `describe` returns.
    pub fn describe(&self) -> ModuleInfo {
        ModuleInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            tools: self
                .tools
                .iter()
                .map(|tool| Tool {
                    name: tool.spec.name.clone(),
                    description: tool.spec.description.clone(),
                    input_schema: (tool.input)().to_string(),
                    output_schema: tool.spec.output.as_ref().map(Value::to_string),
                    flags: tool.spec.flags,
                })
                .collect(),
            hosts: self.hosts.clone(),
            credentials: self.credentials.clone(),
        }
    }

    /// What `call` returns: the tool's result, its requests sent through
    /// the host.
    pub fn call(
        &self,
        tool: &str,
        arguments: &str,
        context: &CallContext,
    ) -> Result<CallOutput, ToolError> {
        let mut call = Call {
            context,
            http: &mut web::Host,
        };
        self.run(tool, arguments, &mut call)
    }

    /// Run `tool` with `arguments` (JSON text) for `call`: what native
    /// tests drive, over a transport of their own.
    pub fn run(
        &self,
        tool: &str,
        arguments: &str,
        call: &mut Call,
    ) -> Result<CallOutput, ToolError> {
        let declared = self
            .tools
            .iter()
            .find(|t| t.spec.name == tool)
            .ok_or_else(|| {
                ToolError::UnknownTool(format!("{} has no tool named {tool:?}", self.name))
            })?;
        (declared.run)(arguments, call)
    }
}

/// The JSON Schema of `A`, self-contained (no `$ref`s) and without the
/// `$schema` and `title` keys, which tell the model nothing.
fn input_schema<A: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<A>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
    }
    tidy(&mut schema);
    schema
}

/// Two simplifications, recursively: an optional property (not in
/// `required`) typed `[T, "null"]` (an `Option<T>`) becomes plain `T`, and
/// `null` leaves its `enum`, since leaving the argument out is how the
/// model says "none"; and the formats
/// schemars gives Rust integers (`uint`, `int64`, ...), which JSON Schema
/// does not define, are dropped: the bounds say what matters.
fn tidy(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let numeric = map
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "integer" || t == "number");
            if numeric {
                map.remove("format");
            }
            let required: Vec<String> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if required.contains(name) {
                        continue;
                    }
                    if let Some([one, null]) = property
                        .get("type")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        && null == "null"
                    {
                        let one = one.clone();
                        property["type"] = one;
                    }
                    // An `Option` of an enum also lists `null` among its values.
                    if let Some(values) = property.get_mut("enum").and_then(Value::as_array_mut) {
                        values.retain(|v| !v.is_null());
                    }
                }
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// Export a [`Declaration`]: `module!(declaration)` where `declaration` is
/// a `fn() -> Declaration`. Each call builds it afresh (an instance serves
/// one call), which costs boxing the handlers, not the schemas.
#[macro_export]
macro_rules! module {
    ($declaration:path) => {
        struct __McpistModule;
        impl $crate::Guest for __McpistModule {
            fn describe() -> $crate::ModuleInfo {
                $declaration().describe()
            }
            fn call(
                tool: ::std::string::String,
                arguments: ::std::string::String,
                context: $crate::CallContext,
            ) -> ::std::result::Result<$crate::CallOutput, $crate::ToolError> {
                $declaration().call(&tool, &arguments, &context)
            }
        }
        $crate::export!(__McpistModule);
    };
}
