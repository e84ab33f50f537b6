//! The `mcpist` binary's plugin commands and configuration errors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{bundled, fixture};

fn mcpist(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpist"))
        .args(args)
        .env("MCPIST_HOME", home)
        .env_remove("MCPIST_CONFIG")
        .env_remove("MCPIST_LOG")
        .output()
        .expect("cannot run mcpist")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn list_approve_verify() {
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(bundled("text"), plugins.join("text.wasm")).unwrap();
    std::fs::copy(fixture("hostile"), plugins.join("hostile.wasm")).unwrap();

    let list = mcpist(home.path(), &["plugins", "list"]);
    assert!(list.status.success());
    let text = stdout(&list);
    assert!(text.contains("hostile  0.1.0    pending"), "{text}");
    assert!(text.contains("not served until approved"), "{text}");

    let verify = mcpist(home.path(), &["plugins", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("2 problem(s)"));

    for (name, version) in [("text", "0.2.0"), ("hostile", "0.1.0")] {
        let approve = mcpist(home.path(), &["plugins", "approve", name, "--yes"]);
        assert!(
            approve.status.success(),
            "{}",
            String::from_utf8_lossy(&approve.stderr)
        );
        assert!(stdout(&approve).contains("hosts    none: no network access"));
        assert!(stdout(&approve).contains(&format!("Pinned {name} {version}")));
    }
    let verify = mcpist(home.path(), &["plugins", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("All 2 modules are pinned."));

    // A pinned file removed from the folder fails verification.
    std::fs::remove_file(plugins.join("hostile.wasm")).unwrap();
    let verify = mcpist(home.path(), &["plugins", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains("missing  hostile (hostile.wasm)"),
        "{}",
        stdout(&verify)
    );

    let again = mcpist(home.path(), &["plugins", "approve", "text"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("it is already pinned"));
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("mcpist.toml");
    std::fs::write(&config, "[limits]\nwall_ms = -5\n").unwrap();
    let output = mcpist(
        home.path(),
        &["--config", config.to_str().unwrap(), "plugins", "list"],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "mcpist: {}:2: key `limits.wall_ms`: ",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_empty_home_lists_nothing() {
    let home = tempfile::tempdir().unwrap();
    let output = mcpist(home.path(), &["plugins", "list"]);
    assert!(output.status.success());
    assert!(stdout(&output).starts_with("No modules in "));
}
