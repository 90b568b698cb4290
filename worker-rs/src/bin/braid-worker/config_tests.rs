//! The config file's parsing: the documented example, defaults, and errors that name the bad key.

use super::*;

const EXAMPLE: &str = r#"
control_plane = "http://127.0.0.1:7400"
token_env = "EDGE_TOKEN"
name = "edge-worker"
slots = 8

[[task]]
type = "thumbnail"
executor = "http"
url = "http://127.0.0.1:9000/thumb"
timeout = "30s"
headers_from_env = { Authorization = "THUMB_AUTH" }

[[task]]
type = "report"
executor = "process"
command = ["python3", "scripts/report.py"]
timeout = "5m"
retryable_exit_codes = [75]
"#;

#[test]
fn the_example_parses() {
    let c = parse(EXAMPLE).expect("parses");
    assert_eq!((c.slots, c.name.as_deref(), c.token_env.as_deref()), (8, Some("edge-worker"), Some("EDGE_TOKEN")));
    let types: Vec<&str> = c.tasks.iter().map(TaskConfig::task_type).collect();
    assert_eq!(types, ["thumbnail", "report"]);
    let TaskConfig::Process(report) = &c.tasks[1] else { panic!("process") };
    assert_eq!(report.timeout, Some(Duration::from_secs(300)));
    assert_eq!(report.retryable_exit_codes.as_deref(), Some(&[75][..]));
    let minimal = parse("[[task]]\ntype = \"a\"\nexecutor = \"http\"\nurl = \"http://x\"\n").expect("minimal");
    assert_eq!((minimal.slots, minimal.control_plane), (4, None));
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("slotz = 3\n", "slotz"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"http\"\nurl = \"http://x\"\nretries = 3\n", "retries"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"process\"\ncommand = [\"x\"]\nurl = \"http://x\"\n", "url"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"grpc\"\n", "grpc"),
        ("[[task]]\ntype = \"a\"\nurl = \"http://x\"\n", "executor"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"http\"\n", "url"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"http\"\nurl = \"http://x\"\ntimeout = \"soon\"\n", "soon"),
        ("slots = \"many\"\n", "slots"),
    ];
    for (text, key) in cases {
        let e = parse(text).expect_err(text);
        assert!(e.contains(key), "{text:?}: {e}");
    }
}

#[test]
fn load_checks_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = load(&dir.path().join("nope.toml")).expect_err("missing");
    assert!(missing.to_string().ends_with("nope.toml: cannot read"), "{missing}");
    let path = dir.path().join("w.toml");
    std::fs::write(&path, "name = \"x\"\n").expect("write");
    let e = load(&path).expect_err("no tasks");
    assert!(e.to_string().contains("no [[task]]"), "{e}");
    std::fs::write(&path, "[[task]]\ntype = \"a\"\nexecutor = \"process\"\ncommand = []\n").expect("write");
    let e = load(&path).expect_err("empty command");
    assert!(e.to_string().contains("task 1 (\"a\"): command is empty"), "{e}");
    std::fs::write(&path, EXAMPLE).expect("write");
    assert_eq!(load(&path).expect("loads").dir, dir.path());
}
