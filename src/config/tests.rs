use std::collections::HashMap;

use super::*;

fn load(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = std::env::temp_dir().join(format!("payoutd-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let result = Settings::load_from(&dir, |k| env.get(k).cloned());
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

#[test]
fn defaults_are_a_development_setup_with_the_simulator() {
    let s = load(&[], &[]).unwrap();
    assert_eq!(s.env, Environment::Development);
    assert!(matches!(s.provider_mode(), ProviderMode::EmbeddedSimulator));
    assert_eq!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
    assert_eq!(s.log_format(), LogFormat::Pretty);
}

#[test]
fn files_then_environment_override_in_order() {
    let s = load(
        &[
            (
                "default.toml",
                "[server]\nlisten_addr = \"127.0.0.1:1000\"\n[worker]\nmax_attempts = 3\n",
            ),
            (
                "development.toml",
                "[server]\nlisten_addr = \"127.0.0.1:2000\"\n",
            ),
        ],
        &[
            ("PAYOUTD_API_TOKENS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb"),
            ("DATABASE_URL", "postgres://x/y"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen_addr.port(), 2000);
    assert_eq!(s.worker.max_attempts, 3);
    assert_eq!(s.server.api_tokens.len(), 2);
    assert_eq!(s.database.url.expose(), "postgres://x/y");
}

#[test]
fn production_refuses_to_start_without_real_settings() {
    let err = load(&[], &[("PAYOUTD_ENV", "production")]).unwrap_err();
    assert!(err.to_string().contains("COINSPAID_API_URL"), "{err}");
    let ok = load(
        &[],
        &[
            ("PAYOUTD_ENV", "production"),
            ("COINSPAID_API_URL", "https://app.cryptoprocessing.com/api"),
            ("COINSPAID_API_KEY", "k"),
            ("COINSPAID_API_SECRET", "s"),
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
        ],
    )
    .unwrap();
    assert!(matches!(ok.provider_mode(), ProviderMode::CoinsPaid));
    assert_eq!(ok.log_format(), LogFormat::Json);
    let no_tokens = load(
        &[],
        &[
            ("PAYOUTD_ENV", "production"),
            ("COINSPAID_API_URL", "https://x"),
            ("COINSPAID_API_KEY", "k"),
            ("COINSPAID_API_SECRET", "s"),
        ],
    );
    assert!(no_tokens.is_err());
}

#[test]
fn half_configured_coinspaid_and_unknown_keys_are_errors() {
    assert!(load(&[], &[("COINSPAID_API_URL", "http://127.0.0.1:9")]).is_err());
    assert!(load(&[("default.toml", "[server]\nlisten = 1\n")], &[]).is_err());
    assert!(load(&[], &[("PAYOUTD_ENV", "staging")]).is_err());
}

#[test]
fn the_first_attempt_wait_stays_below_the_request_timeout() {
    let wait = |toml: &str| load(&[("default.toml", toml)], &[]).map(|s| s.first_attempt_wait());
    // Unset: half the request timeout, as before the setting existed.
    assert_eq!(wait("").unwrap(), Duration::from_secs(15));
    assert_eq!(
        wait("[worker]\nfirst_attempt_wait_ms = 0\n").unwrap(),
        Duration::ZERO
    );
    let err = wait("[server]\nrequest_timeout_secs = 2\n[worker]\nfirst_attempt_wait_ms = 2000\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("worker.first_attempt_wait_ms must be below"),
        "{err}"
    );
    let err = wait("[worker]\nmax_in_flight = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("worker.max_in_flight must be at least 1"),
        "{err}"
    );
}

#[test]
fn withdrawal_minimums_are_decimal_strings_keyed_by_currency_code() {
    let s = load(
        &[(
            "default.toml",
            "[withdrawal_minimums]\nBTC = \"0.001\"\nUSDTT = \"10\"\n",
        )],
        &[],
    )
    .unwrap();
    let minimums = s.withdrawal_minimums();
    assert_eq!(
        minimums[&Currency::parse("BTC").unwrap()].to_string(),
        "0.001"
    );
    assert_eq!(minimums.len(), 2);
    for bad in [
        "[withdrawal_minimums]\nBTC = 0.001\n",
        "[withdrawal_minimums]\nBTC = \"-1\"\n",
        "[withdrawal_minimums]\nBTC = \"0\"\n",
        "[withdrawal_minimums]\nbtc = \"1\"\n",
    ] {
        assert!(load(&[("default.toml", bad)], &[]).is_err(), "{bad}");
    }
}

#[test]
fn travel_rule_defaults_are_parsed_at_start_and_a_bad_one_names_its_key() {
    let s = load(
        &[(
            "default.toml",
            "[travel_rule]\nrequired = true\ndefault_sender_type = \"legal\"\n\
             default_sender_data = { legal_name = \"Example GmbH\", country_of_registration = \"DEU\" }\n\
             default_receiver_type = \"self\"\n",
        )],
        &[],
    )
    .unwrap();
    let policy = s
        .travel_rule
        .policy(chrono::Utc::now().date_naive())
        .unwrap();
    assert!(policy.required);
    assert_eq!(policy.default_sender.unwrap().kind(), "legal");
    assert_eq!(policy.default_receiver.unwrap().kind(), "self");
    assert!(!format!("{s:?}").contains("Example GmbH"));

    let bad = load(
        &[(
            "default.toml",
            "[travel_rule]\ndefault_sender_type = \"legal\"\n\
             default_sender_data = { legal_name = \"Example GmbH\", country_of_registration = \"Germany\" }\n",
        )],
        &[],
    )
    .unwrap_err();
    assert!(
        bad.to_string()
            .contains("travel_rule.default_sender_data.country_of_registration"),
        "{bad}"
    );
    let data_alone = load(
        &[(
            "default.toml",
            "[travel_rule]\ndefault_receiver_data = { legal_name = \"X\" }\n",
        )],
        &[],
    )
    .unwrap_err();
    assert!(
        data_alone
            .to_string()
            .contains("travel_rule.default_receiver_type"),
        "{data_alone}"
    );
    assert!(load(
        &[("default.toml", "[travel_rule]\nretention_days = 0\n")],
        &[]
    )
    .is_err());
}

#[test]
fn the_dev_tokens_only_open_a_service_whose_provider_is_the_simulator_with_its_credentials() {
    use super::{SIMULATOR_KEY as DEFAULT_KEY, SIMULATOR_SECRET as DEFAULT_SECRET};
    // `payoutd simulator` with the key and secret it prints, wherever it runs.
    for url in [
        "http://127.0.0.1:9000",
        "http://[::1]:8090",
        "http://simulator:8090",
    ] {
        let s = load(
            &[],
            &[
                ("COINSPAID_API_URL", url),
                ("COINSPAID_API_KEY", DEFAULT_KEY),
                ("COINSPAID_API_SECRET", DEFAULT_SECRET),
            ],
        )
        .unwrap();
        assert!(s.development_features(), "{url}");
        assert_eq!(s.provider_label(), "simulator");
        assert_eq!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
        assert_eq!(s.effective_operators()[0].name, "dev");
    }
    // Any other credentials, even on a loopback http URL (a proxy to CoinsPaid) and
    // without PAYOUTD_ENV (development by default): both kinds of token are required.
    for (url, key, secret) in [
        ("http://127.0.0.1:9000", "k", "s"),
        ("http://localhost:1", DEFAULT_KEY, "s"),
        ("https://app.cryptoprocessing.com/api", "k", "s"),
        ("http://10.0.0.5:8080", "k", DEFAULT_SECRET),
    ] {
        let credentials = [
            ("COINSPAID_API_URL", url),
            ("COINSPAID_API_KEY", key),
            ("COINSPAID_API_SECRET", secret),
        ];
        let err = load(&[], &credentials).unwrap_err().to_string();
        assert!(
            err.contains("server.api_tokens (PAYOUTD_API_TOKENS) is required")
                && err.contains("admin.tokens (PAYOUTD_ADMIN_TOKENS) is required"),
            "{err}"
        );
        let tokens = [
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
        ];
        let s = load(&[], &[&credentials[..], &tokens[..]].concat()).unwrap();
        assert!(!s.development_features(), "{url}");
        assert_eq!(s.provider_label(), "coinspaid");
        assert_eq!(s.effective_api_tokens().len(), 1);
        assert_ne!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
        assert_eq!(s.effective_operators()[0].name, "alice");
    }
    // Production never runs against the simulator's credentials.
    let err = load(
        &[],
        &[
            ("PAYOUTD_ENV", "production"),
            ("COINSPAID_API_URL", "https://simulator.example"),
            ("COINSPAID_API_KEY", DEFAULT_KEY),
            ("COINSPAID_API_SECRET", DEFAULT_SECRET),
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("production never uses the simulator"), "{err}");
}

#[test]
fn booleans_from_the_environment_are_strict() {
    for (raw, expected) in [
        ("True", true),
        ("TRUE", true),
        ("1", true),
        ("false", false),
        ("FALSE", false),
        ("0", false),
    ] {
        let s = load(&[], &[("PAYOUTD_WORKER_ENABLED", raw)]).unwrap();
        assert_eq!(s.worker.enabled, expected, "{raw}");
    }
    for raw in ["on", "yes", "", "tru"] {
        let err = load(&[], &[("PAYOUTD_WORKER_ENABLED", raw)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("worker.enabled (PAYOUTD_WORKER_ENABLED)"),
            "{err}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once_naming_key_and_variable() {
    let err = load(
        &[(
            "default.toml",
            "[database]\nmax_connections = \"16\"\n[worker]\nmax_attempts = \"x\"\n",
        )],
        &[
            ("PAYOUTD_WORKER_ENABLED", "on"),
            ("PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS", "soon"),
            ("PAYOUTD_LISTEN_ADDR", "localhost"),
        ],
    )
    .unwrap_err()
    .to_string();
    for named in [
        "database.max_connections (config file only",
        "worker.max_attempts (config file only",
        "worker.enabled (PAYOUTD_WORKER_ENABLED)",
        "simulator.callback_delay_ms (PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS)",
        "server.listen_addr (PAYOUTD_LISTEN_ADDR)",
    ] {
        assert!(err.contains(named), "{named} missing from: {err}");
    }
}

#[test]
fn urls_are_parsed_at_start_and_missing_partners_are_named() {
    let err = load(
        &[],
        &[
            ("COINSPAID_API_URL", "htp:/broken"),
            ("COINSPAID_API_KEY", "k"),
            ("COINSPAID_API_SECRET", "s"),
            ("PAYOUTD_NOTIFY_URL", "not a url"),
            ("PAYOUTD_NOTIFY_SECRET", NOTIFY_SECRET),
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("coinspaid.api_url (COINSPAID_API_URL)"),
        "{err}"
    );
    assert!(err.contains("notify.url (PAYOUTD_NOTIFY_URL)"), "{err}");
    let err = load(&[], &[("COINSPAID_API_URL", "http://127.0.0.1:9")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("coinspaid.api_key (COINSPAID_API_KEY)"),
        "{err}"
    );
    assert!(
        err.contains("coinspaid.api_secret (COINSPAID_API_SECRET)"),
        "{err}"
    );
    assert!(
        !err.contains("coinspaid.api_url (COINSPAID_API_URL)"),
        "{err}"
    );
}

const NOTIFY_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[test]
fn notification_secrets_are_whsec_and_errors_name_key_and_variable_never_the_value() {
    let two = format!("{NOTIFY_SECRET}, whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let s = load(
        &[],
        &[
            ("PAYOUTD_NOTIFY_URL", "http://127.0.0.1:9/hook"),
            ("PAYOUTD_NOTIFY_SECRET", &two),
        ],
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("C2FVs"));
    for (bad, says) in [
        (
            "website-notify-secret-123",
            "secret #1 does not start with whsec_",
        ),
        ("whsec_c2hvcnQ=", "secret #1 holds 5 bytes"),
        (
            &*format!("{NOTIFY_SECRET},whsec_!!"),
            "secret #2 is not base64",
        ),
    ] {
        let err = load(&[], &[("PAYOUTD_NOTIFY_SECRET", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notify.secret (PAYOUTD_NOTIFY_SECRET)"),
            "{err}"
        );
        assert!(err.contains(says), "{err}");
        assert!(err.contains("openssl rand -base64 32"), "{err}");
        assert!(
            !err.contains("website-notify") && !err.contains("c2hvcnQ"),
            "{err}"
        );
    }
    let err = load(&[], &[("PAYOUTD_NOTIFY_URL", "http://127.0.0.1:9/hook")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs notify.secret (PAYOUTD_NOTIFY_SECRET)"),
        "{err}"
    );
}

#[test]
fn a_previous_coinspaid_pair_is_whole_and_differs_from_the_current_one() {
    let with = |previous: &[(&'static str, &'static str)]| {
        let mut env = vec![
            ("COINSPAID_API_URL", "http://127.0.0.1:9"),
            ("COINSPAID_API_KEY", "new-key"),
            ("COINSPAID_API_SECRET", "new-secret"),
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
        ];
        env.extend_from_slice(previous);
        load(&[], &env)
    };
    let s = with(&[
        ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
        ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
    ])
    .unwrap();
    assert_eq!(s.coinspaid.api_key_previous, "old-key");
    assert_eq!(s.coinspaid.api_secret_previous.expose(), "old-secret");
    assert!(!format!("{s:?}").contains("old-secret"));

    let refused = |previous: &[(&'static str, &'static str)], says: &str| {
        let err = with(previous).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
        for value in ["old-secret", "new-secret"] {
            assert!(!err.contains(value), "{err}");
        }
    };
    // What a setup from before COINSPAID_API_KEY_PREVIOUS had: refused, naming the missing key.
    refused(
        &[("COINSPAID_API_SECRET_PREVIOUS", "old-secret")],
        "coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS) is set without coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS)",
    );
    refused(
        &[("COINSPAID_API_KEY_PREVIOUS", "old-key")],
        "coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS) is set without coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS)",
    );
    refused(
        &[
            ("COINSPAID_API_KEY_PREVIOUS", "new-key"),
            ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
        ],
        "coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS) equals",
    );
    refused(
        &[
            ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
            ("COINSPAID_API_SECRET_PREVIOUS", "new-secret"),
        ],
        "coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS) equals",
    );
    let alone = load(
        &[],
        &[
            ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
            ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        alone.contains("are only accepted with coinspaid.api_key"),
        "{alone}"
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let s = load(
        &[],
        &[
            ("COINSPAID_API_URL", "http://127.0.0.1:9"),
            ("COINSPAID_API_KEY", "k"),
            ("COINSPAID_API_SECRET", "very-secret-value"),
            ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
        ],
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("very-secret-value"));
}

/// Every key of `config/default.toml`, dotted (tables are walked, values are leaves).
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let dotted = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) if !inner.is_empty() => {
                leaf_keys(inner, &format!("{dotted}."), out)
            }
            _ => out.push(dotted),
        }
    }
}

/// `text` without the line that sets the dotted `key` (each value in config/default.toml is
/// on one line; an empty table is its `[header]` line).
fn without_key(text: &str, key: &str) -> String {
    let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    let mut removed = false;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let line = line.trim();
            if line == format!("[{key}]") {
                removed = true;
                return false;
            }
            if let Some(header) = line.strip_prefix('[') {
                current = header.trim_end_matches(']').to_owned();
            }
            let sets = line
                .strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            let hit = current == section && sets;
            removed |= hit;
            !hit
        })
        .collect();
    assert!(removed, "{key} not found");
    kept.join("\n")
}

#[test]
fn every_default_is_written_once_in_default_toml() {
    // The binary's defaults are the file's text, as built.
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap();
    assert_eq!(DEFAULTS, on_disk);
    // A default changed in the file is the one loaded.
    let changed = DEFAULTS.replace("max_attempts = 25\n", "max_attempts = 7\n");
    assert_ne!(changed, DEFAULTS);
    let s = Settings::load_layers(&changed, None, &|_| None).unwrap();
    assert_eq!(s.worker.max_attempts, 7);
    assert_eq!(Settings::defaults().worker.max_attempts, 25);
    // No default in the code stands behind the file: without any one of its keys, loading
    // fails and names that key.
    let table: toml::Table = DEFAULTS.parse().unwrap();
    let mut keys = Vec::new();
    leaf_keys(&table, "", &mut keys);
    assert!(keys.len() > 50, "{keys:?}");
    for key in keys {
        let err = Settings::load_layers(&without_key(DEFAULTS, &key), None, &|_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{key} (")), "{key}: {err}");
    }
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let err = load(&[("default.toml", "[server]\nlisten = 1\n")], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.listen (config file only"), "{err}");
    let err = load(&[("development.toml", "[wroker]\nenabled = false\n")], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("wroker (config file only"), "{err}");
}

#[test]
fn networks_are_cidrs_or_single_addresses() {
    let s = load(
        &[(
            "development.toml",
            "[abuse]\ncallback_allow = [\"203.0.113.0/24\", \"2001:db8::1\"]\n\
             trusted_proxies = [\" 10.0.0.1 \"]\n",
        )],
        &[],
    )
    .unwrap();
    assert_eq!(
        s.abuse.callback_allow,
        vec![
            "203.0.113.0/24".parse::<ipnet::IpNet>().unwrap(),
            "2001:db8::1/128".parse().unwrap()
        ]
    );
    assert_eq!(
        s.abuse.trusted_proxies,
        vec!["10.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]
    );
    let err = load(
        &[(
            "development.toml",
            "[abuse]\ncallback_allow = [\"not-an-ip\"]\n",
        )],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("abuse.callback_allow (config file only")
            && err.contains("\"not-an-ip\" is not an IP address or CIDR"),
        "{err}"
    );
}

#[test]
fn every_variable_sets_its_key_and_an_empty_url_means_unset() {
    let s = load(
        &[],
        &[
            ("PAYOUTD_LOG_FORMAT", "json"),
            ("PAYOUTD_SIMULATOR_LISTEN_ADDR", "127.0.0.1:9999"),
            ("PAYOUTD_SIMULATOR_CALLBACK_URL", "http://127.0.0.1:1/cb"),
            ("PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS", " 5 "),
            ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456, "),
            ("COINSPAID_API_URL", ""),
            ("PAYOUTD_NOTIFY_URL", " "),
        ],
    )
    .unwrap();
    assert_eq!(s.log_format(), LogFormat::Json);
    assert_eq!(s.simulator.listen_addr.port(), 9999);
    assert_eq!(s.simulator.callback_url.as_str(), "http://127.0.0.1:1/cb");
    assert_eq!(s.simulator.callback_delay_ms, 5);
    assert_eq!(s.admin.tokens.len(), 1);
    assert!(matches!(s.provider_mode(), ProviderMode::EmbeddedSimulator));
    assert!(s.notify.url.is_none());
}

#[test]
fn a_bad_url_is_named_without_its_text() {
    let err = load(&[], &[("PAYOUTD_NOTIFY_URL", "hunter2.example/hook")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notify.url (PAYOUTD_NOTIFY_URL): not a URL"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn traces_are_off_by_default_and_set_by_the_standard_opentelemetry_variables() {
    let s = load(&[], &[]).unwrap();
    assert!(s.traces.otlp_endpoint.is_none());
    assert_eq!(s.traces.traces_url(), None);
    assert_eq!(s.traces.service_name, "payoutd");
    let s = load(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SERVICE_NAME", "payoutd-eu"),
        ],
    )
    .unwrap();
    assert_eq!(
        s.traces.traces_url().as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert_eq!(s.traces.service_name, "payoutd-eu");
    // Empty is unset, as the OpenTelemetry specification reads them.
    let s = load(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", " "),
            ("OTEL_SERVICE_NAME", ""),
        ],
    )
    .unwrap();
    assert!(s.traces.otlp_endpoint.is_none());
    assert_eq!(s.traces.service_name, "payoutd");
}

#[test]
fn a_traces_endpoint_must_be_http() {
    let err = load(
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("traces.otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): must be an http(s) URL"),
        "{err}"
    );
    let err = load(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("traces.otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)"),
        "{err}"
    );
}
