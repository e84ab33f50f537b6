use super::*;

fn record(tool: &str) -> Record {
    Record {
        time: now(),
        client: "stdio".into(),
        module: "github".into(),
        module_sha256: Some("ab".repeat(32)),
        tool: tool.into(),
        account: Some("work".into()),
        outcome: Outcome::Ok,
        reason: None,
        duration_us: 1234,
        outbound: vec![Outbound {
            method: "GET".into(),
            origin: "https://api.github.com".into(),
            status: Some(200),
        }],
        consent: None,
        plan: None,
        arguments_sha256: digest(&serde_json::json!({"owner": "o", "repo": "r"})),
        arguments: None,
    }
}

fn log_with(tools: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    for tool in tools {
        log.append(record(tool)).unwrap();
    }
    (dir, path)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn appended_lines_form_an_intact_chain_that_survives_reopening() {
    let (_dir, path) = log_with(&["list_issues", "get_issue"]);
    let log = AuditLog::open(&path, Fsync::Always).unwrap();
    assert_eq!(log.append(record("create_issue")).unwrap(), 3);
    let report = verify(&path).unwrap();
    assert_eq!(report.lines, 3);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let text = lines(&path);
    let first: serde_json::Value = serde_json::from_str(&text[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], GENESIS);
    assert_eq!(first["outbound"][0]["origin"], "https://api.github.com");
    let second: serde_json::Value = serde_json::from_str(&text[1]).unwrap();
    assert_eq!(second["prev"], first["hash"]);
    assert_eq!(
        report.last_hash.as_deref(),
        serde_json::from_str::<serde_json::Value>(&text[2]).unwrap()["hash"].as_str()
    );
}

#[test]
fn a_one_byte_edit_is_found_on_its_line() {
    let (_dir, path) = log_with(&["a", "b", "c"]);
    let mut bytes = std::fs::read(&path).unwrap();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = second_line
        + bytes[second_line..]
            .windows(4)
            .position(|w| w == b"1234")
            .unwrap();
    bytes[at] = b'9';
    std::fs::write(&path, &bytes).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(report.problems, vec![Problem::Edited { line: 2 }]);
    assert!(!report.is_intact());
    assert_eq!(
        report.problems[0].to_string(),
        "line 2: edited (its content does not match its hash)"
    );
}

#[test]
fn removed_and_reordered_lines_break_the_chain_where_they_were() {
    let (_dir, path) = log_with(&["a", "b", "c", "d"]);
    let original = lines(&path);

    let mut removed = original.clone();
    removed.remove(1);
    write_lines(&path, &removed);
    let report = verify(&path).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let message = report.problems[0].to_string();
    assert!(
        message.starts_with("line 2: does not follow line 1 (record 3 after record 1)"),
        "{message}"
    );

    let mut swapped = original.clone();
    swapped.swap(1, 2);
    write_lines(&path, &swapped);
    let report = verify(&path).unwrap();
    let lines_with_problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        lines_with_problems[0].starts_with("line 2: does not follow line 1"),
        "{lines_with_problems:?}"
    );
    assert!(!report.is_intact());

    let mut first_removed = original.clone();
    first_removed.remove(0);
    write_lines(&path, &first_removed);
    let report = verify(&path).unwrap();
    assert!(
        report.problems[0]
            .to_string()
            .starts_with("line 1: does not follow the start of the log"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_rehashed_edit_is_found_on_the_next_line() {
    let (_dir, path) = log_with(&["a", "b", "c"]);
    let mut text = lines(&path);
    // Rewrite line 2 consistently (new content, new hash), as an attacker
    // who knows the format would; line 3 still names the old hash.
    let parsed = verify::parse_line(&text[1]).unwrap();
    let mut line = parsed.line;
    line.record.tool = "delete_repository".into();
    text[1] = seal(&line).0.trim_end().to_owned();
    write_lines(&path, &text);
    let report = verify(&path).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .to_string()
            .starts_with("line 3: does not follow line 2")
    );
}

#[test]
fn a_torn_last_line_is_reported_then_cut_off_on_the_next_open() {
    let (_dir, path) = log_with(&["a", "b"]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":3,"time":"2026-"#);
    std::fs::write(&path, &bytes).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(report.problems, vec![Problem::Torn { line: 3, bytes: 22 }]);
    assert!(report.is_intact(), "a torn line is a crash, not tampering");

    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    assert_eq!(log.append(record("c")).unwrap(), 3);
    let report = verify(&path).unwrap();
    assert_eq!((report.lines, report.problems.len()), (3, 0));
}

#[test]
fn a_log_ending_in_a_foreign_line_is_not_appended_to() {
    let (_dir, path) = log_with(&["a"]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"not a record\n");
    std::fs::write(&path, &bytes).unwrap();
    let err = AuditLog::open(&path, Fsync::Never).err().unwrap();
    assert!(
        err.to_string().contains("run `mcpist audit verify`"),
        "{err}"
    );
    assert_eq!(
        verify(&path).unwrap().problems[0],
        Problem::Malformed {
            line: 2,
            reason: "no `hash` member".into()
        }
    );
}

#[test]
fn reasons_are_capped() {
    assert_eq!(reason("short"), "short");
    assert_eq!(
        reason(&"x".repeat(5000)).chars().count(),
        MAX_REASON_CHARS + 1
    );
}

#[test]
fn a_huge_client_supplied_name_is_recorded_bounded_and_the_log_still_opens() {
    let (_dir, path) = log_with(&["a"]);
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    let huge = "m".repeat(300 * 1024);
    let mut attack = record("t");
    attack.module = huge.clone();
    attack.tool = format!("{huge}-tool");
    attack.account = Some(huge.clone());
    attack.client = huge.clone();
    attack.arguments = Some(serde_json::json!({ "text": huge }));
    log.append(attack).unwrap();
    drop(log);

    let last = lines(&path).pop().unwrap();
    assert!(
        last.len() < MAX_ARGUMENTS_BYTES + 4096,
        "{} bytes",
        last.len()
    );
    let line = parse_record(&last).unwrap();
    let digest = hex::encode(Sha256::digest(huge.as_bytes()));
    assert!(line.record.module.starts_with("mmmm"));
    assert!(line.record.module.ends_with(&format!("sha256 {digest}]")));
    assert!(line.record.module.len() <= 64 + 128);
    // The log reopens and the chain goes on.
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    assert_eq!(log.append(record("c")).unwrap(), 3);
    assert!(verify(&path).unwrap().is_intact());
}

#[test]
fn a_last_line_longer_than_the_first_read_window_is_found() {
    let (_dir, path) = log_with(&["a"]);
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    // Reasons are cut by the callers, not by the log: a line written by an
    // older version, or with a long reason, can be longer than the window.
    let mut long = record("b");
    long.reason = Some("r".repeat(3 * TAIL_WINDOW as usize));
    log.append(long).unwrap();
    drop(log);
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    assert_eq!(log.append(record("c")).unwrap(), 3);
    assert!(verify(&path).unwrap().is_intact());
}

#[test]
fn the_log_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home").join("audit.log");
    AuditLog::open(&path, Fsync::Never).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn a_reader_pages_the_calls_a_filter_keeps_newest_first() {
    let (_dir, path) = log_with(&["a", "b", "c", "d", "e"]);
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    log.append(Record {
        outcome: Outcome::Refused,
        client: "phone".into(),
        ..record("f")
    })
    .unwrap();
    drop(log);
    // A line still being written is not read.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"seq\":7,")
        .unwrap();
    let tools = |page: read::Page| -> Vec<String> {
        page.lines.into_iter().map(|l| l.record.tool).collect()
    };
    let all = read::Filter::default();
    let first = read::page(&path, &all, 0, 4).unwrap();
    assert_eq!(first.matching, 6);
    assert_eq!(tools(first), ["f", "e", "d", "c"]);
    assert_eq!(tools(read::page(&path, &all, 1, 4).unwrap()), ["b", "a"]);
    let refused = read::Filter {
        outcome: Some(Outcome::Refused),
        ..Default::default()
    };
    assert_eq!(tools(read::page(&path, &refused, 0, 4).unwrap()), ["f"]);
    let phone = read::Filter {
        client: Some("stdio".into()),
        module: Some("github".into()),
        ..Default::default()
    };
    assert_eq!(read::page(&path, &phone, 0, 10).unwrap().matching, 5);
    let missing = read::page(&path.with_extension("none"), &all, 0, 10).unwrap();
    assert_eq!(missing.matching, 0);
}

#[test]
fn in_every_mode_a_line_is_in_the_file_when_append_returns() {
    // What a crash of mcpist (not of the machine) would leave: the file as
    // the OS has it, whatever has reached the disk.
    for fsync in [Fsync::Interval, Fsync::Always, Fsync::Never] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, fsync).unwrap();
        for (n, tool) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(log.append(record(tool)).unwrap(), n as u64 + 1);
            assert_eq!(lines(&path).len(), n + 1, "{fsync:?}");
        }
        assert!(log.failure().is_none());
        drop(log);
        let report = verify(&path).unwrap();
        assert_eq!(report.lines, 3);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

#[test]
fn concurrent_appends_with_always_share_flushes_and_keep_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = std::sync::Arc::new(AuditLog::open(&path, Fsync::Always).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    log.append(record("t")).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let report = verify(&path).unwrap();
    assert_eq!(report.lines, 200);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
