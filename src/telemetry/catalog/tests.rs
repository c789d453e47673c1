use std::collections::BTreeSet;
use std::path::Path;

use super::*;

#[test]
fn the_label_lists_match_the_code_that_counts() {
    use crate::withdrawals::settle::callbacks::CallbackOutcome;
    for outcome in [
        CallbackOutcome::Applied,
        CallbackOutcome::Duplicate,
        CallbackOutcome::Ignored,
        CallbackOutcome::Anomaly,
        CallbackOutcome::Unrecognized,
        CallbackOutcome::Unreadable,
        CallbackOutcome::Invalid,
    ] {
        assert!(CALLBACK_OUTCOMES.contains(&outcome.label()), "{outcome:?}");
    }
    for reason in [
        crate::withdrawals::queue::ParkReason::AttemptsExhausted,
        crate::withdrawals::queue::ParkReason::NeedsOperator,
    ] {
        assert!(PARK_REASONS.contains(&reason.as_str()));
    }
    for used in [
        crate::coinspaid::SecretUsed::Current,
        crate::coinspaid::SecretUsed::Previous,
    ] {
        assert!(CALLBACK_SECRETS.contains(&used.label()));
    }
    use crate::coinspaid::{LookupError, ProviderError};
    for err in [
        LookupError::Provider(ProviderError::Transport(String::new())),
        LookupError::Refused {
            status: 403,
            body: String::new(),
        },
        LookupError::Unusable(String::new()),
        LookupError::NotFound {
            status: 404,
            body: String::new(),
        },
    ] {
        assert!(LOOKUP_RESULTS.contains(&err.label()), "{err:?}");
    }
    use crate::withdrawals::submit::reconcile::Check;
    for check in [
        Check::Settled,
        Check::InProgress,
        Check::Resubmitted,
        Check::NotYetSubmitted,
        Check::Missing,
        Check::Anomaly,
        Check::LookupFailed,
    ] {
        assert!(RECONCILER_RESULTS.contains(&check.label()), "{check:?}");
    }
    assert_eq!(
        WithdrawalStatus::ALL
            .map(WithdrawalStatus::as_str)
            .as_slice(),
        STATUSES
    );
}

#[test]
fn the_transitions_registered_are_the_moves_the_state_machine_makes() {
    let mut registered = transitions();
    registered.sort();
    let mut expected = vec![
        vec!["awaiting_approval", "pending"],
        vec!["awaiting_approval", "rejected"],
        vec!["awaiting_approval", "cancelled"],
        vec!["pending", "processing"],
        vec!["pending", "rejected"],
        vec!["pending", "confirmed"],
        vec!["pending", "cancelled"],
        vec!["processing", "confirmed"],
        vec!["processing", "cancelled"],
    ];
    expected.sort();
    assert_eq!(registered, expected);
}

#[test]
fn names_types_and_help_follow_prometheus_conventions() {
    let mut names = BTreeSet::new();
    for m in CATALOGUE {
        assert!(names.insert(m.name), "{} listed twice", m.name);
        assert!(m.name.starts_with("payoutd_"), "{}", m.name);
        assert!(
            m.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            m.name
        );
        match m.kind {
            Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
            Kind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            // Only these get the latency buckets (`telemetry`); any other is rendered as a summary.
            Kind::Histogram => assert!(m.name.ends_with("_duration_seconds"), "{}", m.name),
        }
        if m.unit == Some(Unit::Seconds) {
            assert!(m.name.ends_with("_seconds"), "{}", m.name);
        }
        assert!(
            m.help.ends_with('.') && m.help.len() > 10 && !m.help.contains('\n'),
            "{}: {:?}",
            m.name,
            m.help
        );
        let labels: BTreeSet<_> = m.labels.iter().map(|(l, _)| *l).collect();
        assert_eq!(labels.len(), m.labels.len(), "{}", m.name);
        if !matches!(m.start, Start::OnUse) {
            assert!(
                m.labels.iter().all(|(_, values)| !values.is_empty()),
                "{}: open label values cannot be registered at start",
                m.name
            );
            assert!(!m.start_series().is_empty(), "{}", m.name);
        }
        for series in m.start_series() {
            assert_eq!(series.len(), m.labels.len(), "{}", m.name);
            for ((label, values), value) in m.labels.iter().zip(&series) {
                assert!(values.contains(value), "{}: {label}={value}", m.name);
            }
        }
    }
}

/// A `counter!`, `gauge!` or `histogram!` call in the source: its name and labels, with each
/// label's value when it is a string literal.
#[derive(Debug)]
struct Recorded {
    file: String,
    kind: Kind,
    name: String,
    labels: Vec<(String, Option<String>)>,
}

/// The text of a macro call's arguments from just after its `(` to the matching `)`.
fn arguments(text: &str) -> &str {
    let mut depth = 1;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// The string literal `text` ends with, if it does.
fn trailing_literal(text: &str) -> Option<&str> {
    let text = text.trim_end().strip_suffix('"')?;
    text.rfind('"').map(|start| &text[start + 1..])
}

fn leading_literal(text: &str) -> Option<&str> {
    let text = text.trim_start().strip_prefix('"')?;
    text.find('"').map(|end| &text[..end])
}

fn recorded_in(file: &str, source: &str) -> Vec<Recorded> {
    let mut found = Vec::new();
    for (kind, call) in [
        (Kind::Counter, "counter!("),
        (Kind::Gauge, "gauge!("),
        (Kind::Histogram, "histogram!("),
    ] {
        for (at, _) in source.match_indices(call) {
            // `describe_counter!(` and the like are not recordings.
            if source[..at].ends_with('_') {
                continue;
            }
            let args = arguments(&source[at + call.len()..]);
            let Some(name) = leading_literal(args) else {
                panic!("{file}: a metric named by an expression escapes the catalogue's check: {call}{args})");
            };
            let parts: Vec<&str> = args.split("=>").collect();
            let labels = parts
                .windows(2)
                .map(|pair| {
                    let key = trailing_literal(pair[0]).expect("a label key is a literal");
                    let value = leading_literal(pair[1]).filter(|v| {
                        // A literal value is the whole expression: `"x"` followed by `,` or the end.
                        let rest = pair[1].trim_start()[v.len() + 2..].trim_start();
                        rest.is_empty() || rest.starts_with(',')
                    });
                    (key.to_owned(), value.map(str::to_owned))
                })
                .collect();
            found.push(Recorded {
                file: file.to_owned(),
                kind,
                name: name.to_owned(),
                labels,
            });
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_series_the_code_records_is_in_the_catalogue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut recorded = Vec::new();
    for path in files {
        let file = path.strip_prefix(&root).unwrap().display().to_string();
        // The catalogue registers its own series by name.
        if file.starts_with("telemetry/catalog") {
            continue;
        }
        recorded.extend(recorded_in(&file, &std::fs::read_to_string(&path).unwrap()));
    }
    assert!(
        recorded.len() > 40,
        "the scan found {} calls",
        recorded.len()
    );
    let mut seen = BTreeSet::new();
    for r in &recorded {
        let Some(m) = find(&r.name) else {
            panic!(
                "{}: {} is not in telemetry::catalog::CATALOGUE",
                r.file, r.name
            );
        };
        assert_eq!(m.kind, r.kind, "{}: {}", r.file, r.name);
        let keys: BTreeSet<&str> = r.labels.iter().map(|(k, _)| k.as_str()).collect();
        let listed: BTreeSet<&str> = m.labels.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, listed, "{}: labels of {}", r.file, r.name);
        for (key, value) in &r.labels {
            let values = m.labels.iter().find(|(k, _)| k == key).unwrap().1;
            if let (Some(value), false) = (value, values.is_empty()) {
                assert!(
                    values.contains(&value.as_str()),
                    "{}: {}{{{key}=\"{value}\"}} is not in the catalogue",
                    r.file,
                    r.name
                );
            }
        }
        seen.insert(r.name.as_str());
    }
    // The build's version is set once, by the catalogue itself.
    seen.insert("payoutd_build_info");
    for m in CATALOGUE {
        assert!(
            seen.contains(m.name),
            "{} is in the catalogue but nothing records it",
            m.name
        );
    }
}

#[test]
fn the_scan_reads_names_labels_and_literal_values() {
    let source = r#"
        metrics::counter!("a_total", "endpoint" => endpoint, "outcome" => "2xx").increment(1);
        metrics::gauge!("b").set(f(x));
        describe_counter!("c_total", "help");
        histogram!("d_duration_seconds", "route" => route.clone()).record(1.0);
    "#;
    let found = recorded_in("x.rs", source);
    let summary: Vec<_> = found
        .iter()
        .map(|r| (r.kind, r.name.as_str(), r.labels.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Kind::Counter,
                "a_total",
                vec![
                    ("endpoint".to_owned(), None),
                    ("outcome".to_owned(), Some("2xx".to_owned()))
                ]
            ),
            (Kind::Gauge, "b", vec![]),
            (
                Kind::Histogram,
                "d_duration_seconds",
                vec![("route".to_owned(), None)]
            ),
        ]
    );
}

#[test]
fn the_readme_documents_every_series() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for m in CATALOGUE {
        assert!(
            readme.contains(&format!("`{}`", m.name)),
            "README's metrics table does not name {}",
            m.name
        );
    }
}

#[test]
fn every_coinspaid_endpoint_the_client_calls_is_a_known_label_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/coinspaid/client");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut called = BTreeSet::new();
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("\"/v2/") {
            let path = leading_literal(&source[at..]).unwrap();
            called.insert(path.to_owned());
        }
    }
    assert!(called.len() >= 5, "{called:?}");
    for path in &called {
        assert!(
            PROVIDER_ENDPOINTS.contains(&path.as_str()),
            "payoutd_provider_calls_total{{endpoint=\"{path}\"}} is not in the catalogue"
        );
    }
}
