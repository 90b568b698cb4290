//! Property tests of untrusted input: definitions (YAML, JSON, protobuf), run inputs, keys, worker outputs and errors.
//!
//! Each property runs a fixed number of cases (256; `PROPTEST_CASES` raises it for a longer hunt)
//! from a random seed (`PROPTEST_RNG_SEED` replays one). A failure prints the shrunk input; no
//! regression files are written.

use std::time::Duration;

use braid_control_plane::api::convert;
use braid_control_plane::domain::limits;
use braid_control_plane::domain::payload::{bounded_error, output_problem};
use braid_control_plane::domain::records::TaskError;
use braid_control_plane::domain::validate::validate_concurrency_key;
use braid_control_plane::domain::{
    RetrySpec, RunSettings, TaskDefinition, ValidationError, WorkflowDefinition, validate, validate_idempotency_key,
    validate_input_json,
};
use braid_proto::v1 as pb;
use proptest::prelude::*;
use proptest::test_runner::Config;
use prost::Message;

fn config() -> Config {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { 256 };
    Config { cases, failure_persistence: None, ..base }
}

// --- what "clean" means ------------------------------------------------------

/// A validation error names a path into the definition and says what is wrong.
fn assert_clean_definition_errors(errors: &[ValidationError]) {
    assert!(!errors.is_empty(), "a rejection lists at least one error");
    for e in errors {
        let top = e.path.split(['.', '[']).next().unwrap_or_default();
        assert!(
            ["name", "description", "tasks", "settings", "definition"].contains(&top),
            "path {:?} is not a definition path ({e})",
            e.path
        );
        assert!(!e.reason.is_empty(), "{e:?} has no reason");
    }
}

/// A rejected run input names the field and says why in one of the two known ways.
fn assert_clean_input_error(e: &ValidationError) {
    assert_eq!(e.path, "input_json");
    assert!(e.reason.starts_with("not valid JSON: ") || e.reason.starts_with("too large: "), "{e}");
}

/// Validates a parsed definition; an accepted one must round-trip through its canonical JSON,
/// YAML and the wire form to the same content hash.
fn check_definition(def: &WorkflowDefinition) {
    let valid = match validate(def) {
        Ok(valid) => valid,
        Err(errors) => return assert_clean_definition_errors(&errors),
    };
    assert!(valid.canonical_json.len() <= limits::MAX_DEFINITION_BYTES);
    assert!(!valid.canonical_json.contains('\0'), "canonical JSON escapes NUL");
    let again = WorkflowDefinition::from_json_str(&valid.canonical_json).expect("canonical JSON parses");
    assert_eq!(again, valid.definition);
    let revalidated = validate(&again).expect("the normalized definition is valid");
    assert_eq!(revalidated.content_hash, valid.content_hash);
    let yaml = serde_norway::to_string(&valid.definition).expect("a valid definition writes as YAML");
    let from_yaml = WorkflowDefinition::from_yaml_str(&yaml).expect("its YAML parses");
    assert_eq!(validate(&from_yaml).map(|v| v.content_hash).ok(), Some(valid.content_hash.clone()));
    let wire = convert::definition(convert::definition_to_proto(def)).expect("a valid definition converts back");
    assert_eq!(validate(&wire).map(|v| v.content_hash).ok(), Some(valid.content_hash));
}

/// Parses `text` every way a definition arrives as text; whatever parses is validated.
fn check_definition_text(text: &str) {
    let parsed = [
        WorkflowDefinition::from_yaml_str(text),
        WorkflowDefinition::from_json_str(text),
        WorkflowDefinition::from_file_contents("wf.json", text),
        WorkflowDefinition::from_file_contents("wf.yaml", text),
    ];
    for result in parsed {
        match result {
            Ok(def) => check_definition(&def),
            Err(err) => {
                assert!(!err.message.is_empty());
                let shown = err.to_string();
                assert!(shown.starts_with("invalid YAML workflow definition: ") || shown.starts_with("invalid JSON "));
            }
        }
    }
}

/// Checks a run input: accepted values re-serialize to JSON without raw NUL (what is stored is
/// the text as given, which parsed, so it holds none either); rejections are clean.
fn check_input(text: &str) {
    match validate_input_json(text) {
        Ok(value) => {
            assert!(!text.contains('\0'), "raw NUL accepted in {text:?}");
            assert!(!value.to_string().contains('\0'));
            assert_eq!(validate_input_json(&value.to_string()), Ok(value));
        }
        Err(e) => assert_clean_input_error(&e),
    }
    match output_problem(text) {
        None => assert!(!text.contains('\0') && !text.trim().is_empty()),
        Some(problem) => assert!(problem.starts_with("output_json is "), "{problem}"),
    }
}

// --- strategies ----------------------------------------------------------------

/// Names: mostly valid and from a small pool (so dependencies hit, duplicates and cycles
/// happen), sometimes odd: empty, too long, non-ASCII, control characters, NUL.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-e]",
        2 => "[A-Za-z0-9][A-Za-z0-9_.-]{0,8}",
        1 => Just(String::new()),
        1 => Just("x".repeat(limits::MAX_NAME_LEN + 1)),
        1 => Just("x".repeat(limits::MAX_NAME_LEN)),
        1 => "[-_. é\u{0}\n\t/:]{1,3}[a-z]{0,2}",
        1 => any::<String>(),
    ]
}

fn description() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        2 => ".{0,20}",
        1 => Just("é".repeat(limits::MAX_DESCRIPTION_LEN + 1)),
        1 => "[a\u{0}\n]{0,5}",
    ]
}

/// Durations around the limits: zero, sub-millisecond, typical, huge.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        (0u64..2_000_000).prop_map(Duration::from_micros),
        (0u64..200_000).prop_map(Duration::from_secs),
        any::<u64>().prop_map(Duration::from_secs),
    ]
}

fn multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..12.0f64, Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), any::<f64>()]
}

fn retry() -> impl Strategy<Value = Option<RetrySpec>> {
    let spec = (
        proptest::option::of(prop_oneof![0u32..=120, any::<u32>()]),
        proptest::option::of(duration()),
        proptest::option::of(multiplier()),
        proptest::option::of(duration()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(max_attempts, initial_backoff, multiplier, max_backoff, jitter)| RetrySpec {
            max_attempts,
            initial_backoff,
            multiplier,
            max_backoff,
            jitter,
        });
    proptest::option::weighted(0.3, spec)
}

fn task() -> impl Strategy<Value = TaskDefinition> {
    (name(), name(), proptest::collection::vec(name(), 0..4), retry(), proptest::option::weighted(0.3, duration()))
        .prop_flat_map(|(name, task_type, depends_on, retry, timeout)| {
            description().prop_map(move |description| TaskDefinition {
                name: name.clone(),
                task_type: task_type.clone(),
                depends_on: depends_on.clone(),
                retry: retry.clone(),
                timeout,
                description,
            })
        })
}

fn definition() -> impl Strategy<Value = WorkflowDefinition> {
    let settings = (retry(), proptest::option::weighted(0.3, duration()), 0u32..3, 0u32..3).prop_map(
        |(default_retry, default_task_timeout, max_concurrent_runs, max_per_key)| RunSettings {
            default_retry,
            default_task_timeout,
            max_concurrent_runs,
            max_per_key,
            ..RunSettings::default()
        },
    );
    (name(), description(), proptest::collection::vec(task(), 0..12), settings)
        .prop_map(|(name, description, tasks, settings)| WorkflowDefinition { name, description, tasks, settings })
}

/// Generated graphs over numbered tasks: each task depends on up to three others anywhere
/// (so cycles, self-dependencies and repeats are common) or only on earlier ones (a DAG).
fn graph() -> impl Strategy<Value = WorkflowDefinition> {
    (1usize..60, any::<bool>()).prop_flat_map(|(n, acyclic)| {
        proptest::collection::vec(proptest::collection::vec(0..n, 0..4), n).prop_map(move |deps| {
            let tasks = deps
                .into_iter()
                .enumerate()
                .map(|(i, ds)| TaskDefinition {
                    name: format!("t{i}"),
                    task_type: "work".into(),
                    depends_on: ds.into_iter().filter(|&d| !acyclic || d < i).map(|d| format!("t{d}")).collect(),
                    ..TaskDefinition::default()
                })
                .collect();
            WorkflowDefinition { name: "g".into(), tasks, ..WorkflowDefinition::default() }
        })
    })
}

/// A JSON document as text, written by hand so it can hold what serializers never write:
/// escaped NUL and lone surrogates, raw control characters, huge exponents, odd whitespace.
fn json_text(depth: u32) -> BoxedStrategy<String> {
    let string = prop_oneof![
        "\"[a-z]{0,6}\"",
        Just(r#""\u0000""#.to_owned()),
        Just("\"a\u{0}b\"".to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just(r#""\udc00x""#.to_owned()),
        Just(r#""\ud83d\ude00""#.to_owned()),
        Just("\"\u{1}\t\"".to_owned()),
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
    ];
    let leaf = prop_oneof![
        string.clone(),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,7})?",
        Just("1e999999".to_owned()),
        Just("-0".to_owned()),
        Just("01".to_owned()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let inner = json_text(depth - 1);
    prop_oneof![
        3 => leaf,
        1 => proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
        1 => proptest::collection::vec((string, inner), 0..4).prop_map(|entries| {
            let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", entries.join(" ,\n"))
        }),
    ]
    .boxed()
}

/// Damages a text: a byte-position cut, or a character inserted (NUL, bracket, quote, backslash).
fn damaged(text: String) -> impl Strategy<Value = String> {
    let len = text.len();
    (0..=len, prop_oneof![Just('\0'), Just('['), Just('{'), Just('"'), Just('\\'), any::<char>()], any::<bool>())
        .prop_map(move |(at, c, cut)| {
            let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            if cut { text[..at].to_owned() } else { format!("{}{c}{}", &text[..at], &text[at..]) }
        })
}

/// Tokens of YAML and JSON definitions, for texts that are nearly definitions.
fn definition_like_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name: a\n"),
        Just("tasks:\n"),
        Just("  - name: b\n    task_type: t\n"),
        Just("    depends_on: [a, b]\n"),
        Just("    retry: {max_attempts: 0, multiplier: .nan}\n"),
        Just("    timeout: 99999999999999999999s\n"),
        Just("settings: {default_task_timeout: 1ns}\n"),
        Just("description: \"\\0\"\n"),
        Just("&x "),
        Just("*x"),
        Just("<<: *x\n"),
        Just("!!binary "),
        Just("{\"name\":\"a\",\"tasks\":["),
        Just("{\"name\":\"b\",\"task_type\":\"t\",\"depends_on\":[\"b\"]}"),
        Just("]}"),
        Just("\u{0}"),
        Just("\u{feff}"),
        Just("---\n"),
        Just("\t"),
        Just("["),
        Just("{"),
        Just(": "),
    ];
    proptest::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

fn task_error() -> impl Strategy<Value = TaskError> {
    let message = prop_oneof![
        3 => any::<String>(),
        1 => (".{1,4}", 1usize..8_000).prop_map(|(s, n)| s.repeat(n)),
    ];
    let kind = prop_oneof![any::<String>(), "[€é\u{0}a]{0,80}"];
    let details = proptest::option::of(prop_oneof![json_text(2), any::<String>()]);
    (message, kind, any::<bool>(), details).prop_map(|(message, kind, retryable, details)| TaskError {
        message,
        kind,
        retryable,
        details,
    })
}

// --- properties ----------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_as_a_definition_is_parsed_or_refused_cleanly(text in any::<String>()) {
        check_definition_text(&text);
    }

    #[test]
    fn near_definitions_are_parsed_or_refused_cleanly(text in definition_like_text()) {
        check_definition_text(&text);
    }

    #[test]
    fn any_bytes_as_a_definition_are_parsed_or_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Invalid UTF-8 never reaches a parser as text: files are read as UTF-8 (or lossily) and
        // the wire decoder checks every string field.
        check_definition_text(&String::from_utf8_lossy(&bytes));
        if let Ok(wire) = pb::WorkflowDefinition::decode(bytes.as_slice()) {
            match convert::definition(wire) {
                Ok(def) => check_definition(&def),
                Err(errors) => assert_clean_definition_errors(&errors),
            }
        }
    }

    #[test]
    fn structured_definitions_are_validated_cleanly(def in definition()) {
        check_definition(&def);
        // The wire form carries the same definition (durations that fit a protobuf Duration).
        if let Ok(back) = convert::definition(convert::definition_to_proto(&def)) {
            prop_assert_eq!(validate(&back).is_ok(), validate(&def).is_ok());
        }
        // And so does the JSON the CLI would send, defaults left out.
        if let Ok(valid) = validate(&def) {
            let json = serde_json::to_string(&def).expect("a valid definition serializes");
            let parsed = WorkflowDefinition::from_json_str(&json).expect("its JSON parses");
            prop_assert_eq!(validate(&parsed).map(|v| v.content_hash).ok(), Some(valid.content_hash));
        }
    }

    #[test]
    fn generated_graphs_are_ordered_or_refused_with_the_cycle_named(def in graph()) {
        match validate(&def) {
            Ok(valid) => {
                let position = |name: &str| valid.tasks.iter().position(|t| t.name == name);
                for (i, t) in valid.tasks.iter().enumerate() {
                    for d in &t.depends_on {
                        prop_assert!(position(d) < Some(i), "{} runs before its dependency {d}", t.name);
                    }
                }
            }
            Err(errors) => {
                assert_clean_definition_errors(&errors);
                for e in errors.iter().filter(|e| e.reason.starts_with("cycle: ")) {
                    let names: Vec<&str> = e.reason["cycle: ".len()..].split(" -> ").collect();
                    prop_assert!(names.len() >= 3 && names.first() == names.last(), "{e}");
                }
            }
        }
    }

    #[test]
    fn json_documents_round_trip_as_run_inputs(text in json_text(4)) {
        check_input(&text);
    }

    #[test]
    fn damaged_json_is_refused_cleanly(text in json_text(3).prop_flat_map(damaged)) {
        check_input(&text);
    }

    #[test]
    fn keys_are_accepted_only_when_short_and_printable(key in prop_oneof![any::<String>(), "[a\u{0}\n€]{0,200}"]) {
        for (field, limit, result) in [
            ("idempotency_key", limits::MAX_IDEMPOTENCY_KEY_LEN, validate_idempotency_key(&key)),
            ("concurrency_key", limits::MAX_CONCURRENCY_KEY_LEN, validate_concurrency_key(&key)),
        ] {
            match result {
                Ok(None) => prop_assert!(key.is_empty()),
                Ok(Some(k)) => prop_assert!(k.len() <= limit && !k.chars().any(char::is_control)),
                Err(e) => prop_assert_eq!(e.path.as_str(), field),
            }
        }
    }

    #[test]
    fn worker_errors_are_kept_bounded_and_storable(e in task_error()) {
        let kept = bounded_error(e);
        prop_assert!(kept.kind.len() <= limits::MAX_NAME_LEN && !kept.kind.contains('\0'), "{:?}", kept.kind);
        prop_assert!(kept.message.len() <= limits::MAX_ERROR_MESSAGE_BYTES + "… (truncated)".len());
        if let Some(details) = &kept.details {
            prop_assert!(serde_json::from_str::<serde_json::Value>(details).is_ok());
        }
        // Stored as JSON text: NUL in the message is escaped, never raw.
        let stored = serde_json::to_string(&kept).expect("an error serializes");
        prop_assert!(!stored.contains('\0'));
    }
}

// --- the three named cases, exactly -------------------------------------------

fn nested(depth: usize, open: &str, leaf: &str, close: &str) -> String {
    format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nul_in_a_run_input() {
    let raw = validate_input_json("{\"a\":\"x\0\"}").unwrap_err();
    assert_eq!(
        raw.to_string(),
        "input_json: not valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 8"
    );
    let raw = validate_input_json("{\"a\":1}\0").unwrap_err();
    assert_eq!(raw.to_string(), "input_json: not valid JSON: trailing characters at line 1 column 8");
    // The escape is JSON text without a NUL byte: stored as given, it is fine in a text column.
    let text = r#"{"a":"x\u0000"}"#;
    let value = validate_input_json(text).expect("an escaped NUL is valid JSON");
    assert_eq!(value["a"], "x\0");
    assert_eq!(value.to_string(), text, "re-serialized, the NUL is escaped again");
    let lone = validate_input_json(r#"{"a":"\ud800"}"#).unwrap_err();
    assert_eq!(lone.to_string(), "input_json: not valid JSON: unexpected end of hex escape at line 1 column 13");
}

#[test]
fn nul_in_a_definition() {
    let json = r#"{"name":"wf","description":"a\u0000b","tasks":[{"name":"a","task_type":"t"}]}"#;
    let def = WorkflowDefinition::from_json_str(json).expect("parses");
    let errors = validate(&def).unwrap_err();
    assert_eq!(
        errors,
        [ValidationError::new("description", "must not contain the NUL character (\\u0000, at byte 1)")]
    );
    let raw = WorkflowDefinition::from_json_str("{\"name\":\"w\0f\"}").unwrap_err();
    assert_eq!(
        raw.to_string(),
        "invalid JSON workflow definition: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 11"
    );
    let raw = WorkflowDefinition::from_yaml_str("name: w\0f\n").unwrap_err();
    assert!(raw.to_string().starts_with("invalid YAML workflow definition: "), "{raw}");
    // A NUL in a name is refused by the name rule, naming the field.
    let wire = pb::WorkflowDefinition {
        name: "wf".into(),
        tasks: vec![pb::TaskDefinition { name: "a\0".into(), task_type: "t".into(), ..Default::default() }],
        ..Default::default()
    };
    let errors = validate(&convert::definition(wire).expect("converts")).unwrap_err();
    assert_eq!(errors[0].to_string(), "tasks[0].name: contains '\\0'; use only letters, digits, '_', '.' and '-'");
}

#[test]
fn invalid_utf8_never_reaches_a_parser() {
    // On the wire: a TriggerRunRequest whose input_json (field 3) holds 0xff.
    let bytes = [0x1a, 0x03, b'{', 0xff, b'}'];
    let err = pb::TriggerRunRequest::decode(bytes.as_slice()).unwrap_err();
    assert!(err.to_string().contains("invalid string value: data is not UTF-8 encoded"), "{err}");
    // A definition's name (field 1) the same way.
    let err = pb::WorkflowDefinition::decode([0x0a, 0x02, 0xc3, 0x28].as_slice()).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    // Read lossily (a file), the replacement character is text: fine in a string, refused as a name.
    let input = String::from_utf8_lossy(b"{\"a\":\"\xff\"}");
    assert_eq!(validate_input_json(&input), Ok(serde_json::json!({"a": "\u{fffd}"})));
    let bare = String::from_utf8_lossy(b"{\"a\":\xff}");
    assert_eq!(
        validate_input_json(&bare).unwrap_err().to_string(),
        "input_json: not valid JSON: expected value at line 1 column 6"
    );
    let def =
        WorkflowDefinition::from_yaml_str(&String::from_utf8_lossy(b"name: w\xfff\ntasks: [{name: a, task_type: t}]"))
            .expect("parses");
    assert_eq!(
        validate(&def).unwrap_err()[0].to_string(),
        "name: contains '\u{fffd}'; use only letters, digits, '_', '.' and '-'"
    );
}

#[test]
fn ten_thousand_deep_run_input_is_refused_by_the_recursion_limit() {
    let arrays = nested(10_000, "[", "1", "]");
    let objects = nested(10_000, "{\"a\":", "1", "}");
    for (text, column) in [(&arrays, 128), (&objects, 636)] {
        let err = validate_input_json(text).unwrap_err();
        let want = format!("input_json: not valid JSON: recursion limit exceeded at line 1 column {column}");
        assert_eq!(err.to_string(), want);
        let want = format!("output_json is not JSON: recursion limit exceeded at line 1 column {column}");
        assert_eq!(output_problem(text), Some(want));
    }
    // 127 levels are fine; serde_json's limit is 128.
    assert!(validate_input_json(&nested(127, "[", "1", "]")).is_ok());
}

#[test]
fn ten_thousand_deep_definition_is_refused_at_the_first_wrong_type() {
    // No field of a definition nests, so both parsers stop at the first value of the wrong
    // type without descending (YAML's event loader is not recursive either).
    let arrays = nested(10_000, "[", "1", "]");
    let json = format!(r#"{{"name":"wf","tasks":{arrays}}}"#);
    let err = WorkflowDefinition::from_json_str(&json).unwrap_err();
    let want = "invalid JSON workflow definition: invalid type: sequence, expected a string at line 1 column 23";
    assert_eq!(err.to_string(), want);
    let yaml = format!("name: wf\ntasks: {arrays}\n");
    let err = WorkflowDefinition::from_yaml_str(&yaml).unwrap_err();
    let want = "invalid YAML workflow definition: tasks[0]: invalid type: sequence, expected struct TaskDefinition \
                at line 2 column 9";
    assert_eq!(err.to_string(), want);
    let yaml = format!("name: wf\ndescription: {arrays}\n");
    let err = WorkflowDefinition::from_yaml_str(&yaml).unwrap_err();
    let want = "invalid YAML workflow definition: description: invalid type: sequence, expected a string \
                at line 2 column 14";
    assert_eq!(err.to_string(), want);
    // A whole document of nested objects. YAML loads every event before deserializing, and its
    // scanner is quadratic in flow nesting: this one takes about 3 s in a debug build. Only the
    // CLI parses YAML (the user's own file); the server takes protobuf.
    let objects = nested(10_000, "{\"a\":", "1", "}");
    let err = WorkflowDefinition::from_json_str(&objects).unwrap_err();
    let want = "invalid JSON workflow definition: unknown field `a`, expected one of `name`, `description`, `tasks`, \
                `settings` at line 1 column 4";
    assert_eq!(err.to_string(), want);
    let err = WorkflowDefinition::from_yaml_str(&objects).unwrap_err();
    let want = "invalid YAML workflow definition: unknown field `a`, expected one of `name`, `description`, `tasks`, \
                `settings` at line 1 column 2";
    assert_eq!(err.to_string(), want);
}

#[test]
fn oversized_inputs_are_refused_by_size_before_parsing() {
    // 10 MB of unclosed brackets: parsing would fail anyway, but the size check answers first.
    let huge = "[".repeat(10 * 1024 * 1024);
    assert_eq!(
        validate_input_json(&huge).unwrap_err().to_string(),
        "input_json: too large: 10485760 bytes (limit 1048576 bytes)"
    );
    assert_eq!(output_problem(&huge).unwrap_or_default(), "output_json is 10485760 bytes; the limit is 1048576");
    let err = WorkflowDefinition::from_yaml_str(&huge).unwrap_err();
    assert_eq!(err.message, "too large: 10485760 bytes (limit 4194304 bytes)");
    let details = TaskError { message: String::new(), kind: "k".into(), retryable: false, details: Some(huge) };
    assert!(bounded_error(details).details.is_some_and(|d| d.len() < 200));
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut yaml = String::from("name: wf\ndescription: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        yaml.push_str(&format!("d{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
    }
    assert!(WorkflowDefinition::from_yaml_str(&yaml).is_err());
    let tasks = format!("name: wf\ntasks: [&t {{name: a, task_type: t}}{}]\n", ", *t".repeat(5_000));
    let def = WorkflowDefinition::from_yaml_str(&tasks);
    if let Ok(def) = def {
        let errors = validate(&def).unwrap_err();
        assert_clean_definition_errors(&errors);
    }
}
