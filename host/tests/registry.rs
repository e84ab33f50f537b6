//! Trust on first use: pinning, loading, and refusing what is not pinned.

mod common;

use mcpist::calls::InvokeError;
use mcpist::catalog::LookupError;
use mcpist::registry::{self, Guards, HostRule, Lock, ModuleState};
use mcpist::runtime::{CallContext, Limits, Runtime};
use serde_json::json;

use common::{Home, bundled, fixture, repo};

fn assert_invalid(state: &ModuleState, because: &str) {
    match state {
        ModuleState::Invalid { reason } => assert!(reason.contains(because), "{reason}"),
        other => panic!("expected invalid ({because}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_module_is_pending_and_not_served() {
    let home = Home::new(Limits::default());
    home.add(&bundled("text"));
    let scan = home.scan().await;
    assert_eq!(scan.modules.len(), 1);
    assert_eq!(scan.modules[0].state, ModuleState::Pending);
    assert_eq!(
        scan.modules[0].name(),
        "text",
        "pending modules are described, sandboxed"
    );
    assert!(!scan.all_pinned());
    let catalog = home.server(Default::default(), Default::default()).await;
    assert_eq!(catalog.modules().count(), 0);
    let err = catalog
        .invoke(
            "text",
            "count",
            &json!({"text": "x"}),
            &CallContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Lookup(LookupError::UnknownModule { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_approved_module_is_pinned_and_served() {
    let home = Home::new(Limits::default());
    let catalog = home.serve(&[bundled("text")]).await;
    let lock = home.lock();
    let entry = &lock.entries()[0];
    assert_eq!(
        (entry.name.as_str(), entry.file.as_str()),
        ("text", "text.wasm")
    );
    assert_eq!(
        entry.sha256,
        registry::sha256_hex(&std::fs::read(bundled("text")).unwrap())
    );
    assert!(entry.tools.contains_key("hash") && entry.hosts.is_empty());
    assert!(home.scan().await.all_pinned());

    let output = catalog
        .invoke(
            "text",
            "count",
            &json!({"text": "a b\nc"}),
            &CallContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        output.structured,
        Some(json!({"bytes": 5, "chars": 5, "words": 3, "lines": 2}))
    );
}

#[tokio::test]
async fn a_tampered_module_is_changed_and_not_served() {
    let home = Home::new(Limits::default());
    home.serve(&[bundled("time")]).await;
    let path = home.plugins().join("time.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let scan = home.scan().await;
    let pinned = home.lock().entries()[0].sha256.clone();
    assert_eq!(
        scan.modules[0].state,
        ModuleState::Changed {
            pinned_sha256: pinned
        }
    );
    assert!(scan.modules[0].prepared.is_none());
    let catalog = home.server(Default::default(), Default::default()).await;
    assert_eq!(catalog.modules().count(), 0);
    // Approving needs a readable module; a file that no longer even parses
    // cannot be approved by accident.
    let mut lock = home.lock();
    if scan.modules[0].manifest.is_none() {
        let err = registry::approve(
            &scan,
            &mut lock,
            registry::Approval::of("time"),
            &home.plugins(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot be approved"), "{err}");
    }
}

#[tokio::test]
async fn a_pin_without_its_file_is_reported_missing() {
    let home = Home::new(Limits::default());
    home.serve(&[bundled("text")]).await;
    std::fs::remove_file(home.plugins().join("text.wasm")).unwrap();
    let scan = home.scan().await;
    assert!(scan.modules.is_empty());
    assert_eq!(scan.missing.len(), 1);
    assert!(!scan.all_pinned());
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_invalid() {
    let home = Home::new(Limits::default());
    std::fs::write(home.plugins().join("junk.wasm"), b"\0asm not really").unwrap();
    let scan = home.scan().await;
    assert_invalid(&scan.modules[0].state, "not a valid WebAssembly component");
    let mut lock = home.lock();
    let err = registry::approve(
        &scan,
        &mut lock,
        registry::Approval::of("junk"),
        &home.plugins(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot be approved"), "{err}");
}

#[tokio::test]
async fn a_module_importing_what_the_host_lacks_names_the_import_and_what_is_offered() {
    let home = Home::new(Limits::default());
    // A component importing an interface no host provides, as a module
    // built against another runtime's API would.
    let component = wat::parse_str(
        r#"(component (import "example:other-runtime/kv@1.0.0" (instance (export "get" (func)))))"#,
    )
    .unwrap();
    std::fs::write(home.plugins().join("wordstats.wasm"), component).unwrap();
    let scan = home.scan().await;
    for expected in [
        "the module imports `example:other-runtime/kv@1.0.0`",
        "`mcpist:plugin/log`",
        "`wasi:http/outgoing-handler` 0.2",
    ] {
        assert_invalid(&scan.modules[0].state, expected);
    }
    // Approving it under the name its author meant says why the file is not
    // usable, not only that nothing is waiting.
    let mut lock = home.lock();
    let err = registry::approve(
        &scan,
        &mut lock,
        registry::Approval::of("word-stats"),
        &home.plugins(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no module is waiting; wordstats.wasm is not a usable module")
            && err.contains("example:other-runtime/kv@1.0.0"),
        "{err}"
    );
}

/// The attack: a service module importing the script engine's
/// `script-host`, to call the owner's other tools from inside a call. Only
/// the script engine's linker has it, so the module never loads.
#[tokio::test]
async fn a_module_cannot_import_the_script_engines_tool_calls() {
    let home = Home::new(Limits::default());
    let component = wat::parse_str(
        r#"(component
            (import "mcpist:plugin/script-host@0.2.0" (instance
                (export "call-tool" (func (param "module" string) (param "tool" string)
                    (param "account" (option string)) (param "arguments" string) (result u32)))
                (export "console" (func (param "line" string))))))"#,
    )
    .unwrap();
    std::fs::write(home.plugins().join("caller.wasm"), component).unwrap();
    let scan = home.scan().await;
    assert_invalid(
        &scan.modules[0].state,
        "the module imports `mcpist:plugin/script-host@0.2.0`",
    );
}

/// A module whose `describe` returns a value the host cannot read: its
/// `tools` list points at an address not aligned for the list's elements.
/// A core module in text, made a component for the 0.1.0 world (as a
/// hand-written canonical ABI in Go or C would be).
fn misaligned_describe() -> Vec<u8> {
    // module-info at 128: name, version and description all "bad" (at 64),
    // tools at address 3 (records of tools are 4-aligned), no hosts or
    // credentials.
    let core = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 64) "bad")
            (data (i32.const 128)
                "\40\00\00\00\03\00\00\00" "\40\00\00\00\03\00\00\00"
                "\40\00\00\00\03\00\00\00" "\03\00\00\00\01\00\00\00"
                "\00\00\00\00\00\00\00\00" "\00\00\00\00\00\00\00\00")
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
            (func (export "mcpist:plugin/module@0.1.0#describe") (result i32) i32.const 128)
            (func (export "mcpist:plugin/module@0.1.0#call")
                (param i32 i32 i32 i32 i32 i32 i32) (result i32) unreachable))"#,
    )
    .unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(repo().join("wit/deps/mcpist-plugin-0.1.0"))
        .unwrap();
    let world = resolve.select_world(&[package], Some("plugin")).unwrap();
    let mut core = core;
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[tokio::test]
async fn a_result_the_host_cannot_read_names_the_export_that_returned_it() {
    let home = Home::new(Limits::default());
    std::fs::write(
        home.plugins().join("misaligned.wasm"),
        misaligned_describe(),
    )
    .unwrap();
    let scan = home.scan().await;
    assert_invalid(
        &scan.modules[0].state,
        "export `mcpist:plugin/module@0.1.0#describe`",
    );
    assert_invalid(&scan.modules[0].state, "not aligned");
}

#[tokio::test]
async fn approving_an_unknown_name_lists_what_is_waiting() {
    let home = Home::new(Limits::default());
    home.add(&fixture("hostile"));
    let scan = home.scan().await;
    let mut lock = home.lock();
    let err = registry::approve(
        &scan,
        &mut lock,
        registry::Approval::of("github"),
        &home.plugins(),
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("; waiting: hostile"), "{err}");
}

#[tokio::test]
async fn a_description_that_drifts_from_its_pin_is_refused() {
    let home = Home::new(Limits::default());
    home.add(&fixture("shifty"));
    home.approve("shifty").await;
    // Same bytes, so the hash still matches; but the tool description the
    // module gives now is not the one that was approved.
    let scan = home.scan().await;
    assert_invalid(
        &scan.modules[0].state,
        "description differs from the one pinned",
    );
    assert_eq!(
        home.server(Default::default(), Default::default())
            .await
            .modules()
            .count(),
        0
    );
}

/// The committed registry.lock pins exactly what `cargo xtask build-plugins`
/// produces from the committed sources.
#[tokio::test]
async fn the_committed_lock_matches_the_built_bundled_modules() {
    let repo = repo();
    let lock = Lock::load(&repo.join("registry.lock")).unwrap();
    let mut files: Vec<String> = lock.entries().iter().map(|e| e.file.clone()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "github.wasm",
            "google_calendar.wasm",
            "notion.wasm",
            "text.wasm",
            "time.wasm"
        ]
    );
    for entry in lock.entries() {
        let built = registry::sha256_hex(&std::fs::read(bundled(&entry.name)).unwrap());
        assert_eq!(
            built, entry.sha256,
            "plugins/{} does not match registry.lock: rebuild with `cargo xtask build-plugins`; \
             if the sources changed on purpose, approve the new build",
            entry.file
        );
        assert_eq!(
            entry.approved_tools().len(),
            entry.tools.len(),
            "registry.lock records what was approved of every {} tool, for `plugins diff`",
            entry.name
        );
    }
    let runtime = Runtime::new(Limits::default()).unwrap();
    let scan = registry::scan(&runtime, &repo.join("plugins"), &lock, &Guards::default())
        .await
        .unwrap();
    assert!(
        scan.all_pinned(),
        "{:?}",
        scan.modules
            .iter()
            .map(|m| (&m.file, &m.state))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn host_rules_are_pinned_and_survive_reapproval_of_the_same_hosts() {
    let home = Home::new(Limits::default());
    home.serve(&[fixture("prober")]).await;
    let rule = HostRule {
        methods: vec!["GET".into()],
        paths: vec!["/v1/".into()],
        allow_private: true,
    };
    home.set_host_rule("prober", "https://api.service.test", rule.clone());
    let text = std::fs::read_to_string(home.lock_path()).unwrap();
    assert!(
        text.contains("[module.host_rules.\"https://api.service.test\"]")
            && text.contains("allow_private = true"),
        "{text}"
    );
    let scan = home.scan().await;
    assert_eq!(
        scan.modules[0].state,
        ModuleState::Pinned,
        "rules are not part of the pin's identity"
    );
    assert_eq!(scan.modules[0].host_rules["https://api.service.test"], rule);

    // A rebuilt file (other bytes, same declaration) needs approval again;
    // the owner's rule for a host it still declares is kept.
    let path = home.plugins().join("prober.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    // A custom section appended to a component is ignored by the runtime.
    bytes.extend_from_slice(&[0x00, 0x04, 0x03, b'p', b'a', b'd']);
    std::fs::write(&path, &bytes).unwrap();
    home.approve("prober").await;
    assert_eq!(
        home.lock().entries()[0].host_rules["https://api.service.test"],
        rule
    );

    // Only declared hosts of approved modules can have rules.
    let mut lock = home.lock();
    let err = registry::set_host_rule(
        &mut lock,
        "prober",
        "https://evil.test",
        HostRule::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("module `prober` does not declare host `https://evil.test`; it declares: https://api.service.test"),
        "{err}"
    );
    let err = registry::set_host_rule(&mut lock, "nobody", "https://x.test", HostRule::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("approved modules: prober"),
        "{err}"
    );
    // Resetting to the default rule removes the entry.
    registry::set_host_rule(
        &mut lock,
        "prober",
        "https://api.service.test",
        HostRule::default(),
    )
    .unwrap();
    assert!(lock.entries()[0].host_rules.is_empty());
}
