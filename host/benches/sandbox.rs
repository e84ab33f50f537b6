//! Micro-benchmarks of what every `call_module_tool` pays inside the host:
//!
//! - `instantiate/fresh_sandbox`: set up and tear down one call's sandbox
//!   (store, limits, instance from the pool) without running the guest;
//! - `call/text.count/sandboxed` and `call/text.count/native`: the bundled
//!   `text.count` in a fresh sandbox, and its native twin, through the same
//!   `Runtime::call`;
//! - `validate/...`: checking arguments against a tool's input schema, for a
//!   small schema (`text.count`) and a larger one (`github.create_issue`).
//!
//! The bundled modules must be built (`cargo xtask build-plugins`);
//! `cargo xtask bench` does that and then runs these.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use mcpist::catalog::schema::{ArgumentValidator, close_object_schemas};
use mcpist::egress::{CallEgress, Egress, HttpSettings, ModulePolicy};
use mcpist::manifest::ModuleManifest;
use mcpist::registry::sha256_hex;
use mcpist::runtime::{CallContext, GuestCall, Limits, PreparedModule, Runtime};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[path = "common/text_count.rs"]
mod text_count;

fn bundled(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the bundled modules first: cargo xtask build-plugins",
            path.display()
        )
    })
}

struct Loaded {
    runtime: Runtime,
    module: PreparedModule,
    manifest: ModuleManifest,
}

fn load(tokio: &tokio::runtime::Runtime, runtime: Runtime, name: &str) -> Loaded {
    let bytes = bundled(name);
    let module = runtime
        .prepare("bench.wasm", &bytes, &sha256_hex(&bytes))
        .expect("compile");
    let manifest = tokio
        .block_on(runtime.describe(&module, name))
        .expect("describe");
    Loaded {
        runtime,
        module,
        manifest,
    }
}

/// A call's egress as the catalog makes it: the shared client and the
/// module's policy are built once, the per-call part for every call.
fn egress_for(manifest: &ModuleManifest) -> impl Fn() -> CallEgress {
    let egress = Arc::new(Egress::new(HttpSettings::default(), &BTreeMap::new()).unwrap());
    let policy = Arc::new(ModulePolicy::new(
        &manifest.name,
        &manifest.hosts,
        &manifest.credentials,
        &BTreeMap::new(),
    ));
    move || CallEgress::new(egress.clone(), policy.clone(), None, BTreeMap::new())
}

fn sandbox(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = load(&tokio, Runtime::new(Limits::default()).unwrap(), "text");
    let twin = Runtime::new(Limits::default()).unwrap().with_native_twin(
        "text",
        "count",
        Arc::new(text_count::count),
    );
    let arguments = json!({"text": "the quick brown fox"});
    let context = CallContext::default();
    let egress = egress_for(&text.manifest);
    let never = CancellationToken::new();

    c.bench_function("instantiate/fresh_sandbox", |b| {
        b.iter(|| {
            tokio
                .block_on(text.runtime.instantiate_and_drop(&text.module))
                .unwrap()
        })
    });
    let mut call = c.benchmark_group("call/text.count");
    for (label, runtime) in [("sandboxed", &text.runtime), ("native", &twin)] {
        call.bench_function(label, |b| {
            b.iter(|| {
                let output = tokio
                    .block_on(runtime.call(
                        &text.module,
                        "text",
                        GuestCall {
                            tool: "count",
                            arguments: &arguments,
                            context: &context,
                        },
                        Box::new(egress()),
                        &never,
                    ))
                    .unwrap()
                    .unwrap();
                assert!(output.structured.is_some());
            })
        });
    }
    call.finish();
}

fn validation(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(Limits::default()).unwrap();
    let text = load(&tokio, runtime, "text");
    let github = load(&tokio, Runtime::new(Limits::default()).unwrap(), "github");
    let validator = |manifest: &ModuleManifest, tool: &str| {
        let spec = manifest.tools.iter().find(|t| t.name == tool).unwrap();
        ArgumentValidator::new(&close_object_schemas(&spec.input_schema)).unwrap()
    };
    let cases = [
        (
            "validate/text.count",
            validator(&text.manifest, "count"),
            json!({"text": "the quick brown fox"}),
        ),
        (
            "validate/github.create_issue",
            validator(&github.manifest, "create_issue"),
            json!({
                "owner": "octo-org", "repo": "hello-world",
                "title": "Found a bug", "body": "Steps to reproduce: ...",
                "labels": ["bug", "triage"], "assignees": ["octocat"]
            }),
        ),
    ];
    for (name, validator, arguments) in &cases {
        validator.validate(arguments).expect("valid arguments");
        c.bench_function(name, |b| b.iter(|| validator.validate(arguments)));
    }
}

criterion_group!(benches, sandbox, validation);
criterion_main!(benches);
