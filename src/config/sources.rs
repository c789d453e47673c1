//! Where settings come from, in order, each over the one before (figment merges them):
//! `config/default.toml` as built into the binary (every default lives there and only there),
//! `default.toml` and `$PAYOUTD_ENV.toml` in the configuration directory when present, then
//! the environment variables of [`ENV`].

use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::de::DeserializeOwned;

use super::ConfigError;

/// `config/default.toml`, built in: the binary starts without the file.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// How an environment variable's text becomes a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    /// Taken as it is; the field's type parses it (an address, a URL, a secret...).
    Text,
    /// Like [`Kind::Text`], but empty means unset (`COINSPAID_API_URL=` keeps the simulator).
    OptionalText,
    /// `true`, `false`, `1` or `0` in any case; anything else is refused rather than read as
    /// false (`True` once turned the worker off).
    Bool,
    Whole,
    /// Comma-separated, blanks dropped: `PAYOUTD_API_TOKENS=a,b`.
    List,
}

/// Every environment variable payoutd reads for its settings: the contract's names (section 1),
/// ours (CONTRACT-ADDITIONS section 1) and OpenTelemetry's standard ones, each with the TOML
/// key it sets.
const ENV: &[(&str, &str, Kind)] = &[
    ("PAYOUTD_ENV", "env", Kind::Text),
    ("DATABASE_URL", "database.url", Kind::Text),
    ("PAYOUTD_LISTEN_ADDR", "server.listen_addr", Kind::Text),
    ("PAYOUTD_API_TOKENS", "server.api_tokens", Kind::List),
    ("PAYOUTD_ADMIN_TOKENS", "admin.tokens", Kind::List),
    ("COINSPAID_API_URL", "coinspaid.api_url", Kind::OptionalText),
    ("COINSPAID_API_KEY", "coinspaid.api_key", Kind::Text),
    ("COINSPAID_API_SECRET", "coinspaid.api_secret", Kind::Text),
    (
        "COINSPAID_API_KEY_PREVIOUS",
        "coinspaid.api_key_previous",
        Kind::Text,
    ),
    (
        "COINSPAID_API_SECRET_PREVIOUS",
        "coinspaid.api_secret_previous",
        Kind::Text,
    ),
    ("PAYOUTD_LOG_FORMAT", "log.format", Kind::Text),
    ("PAYOUTD_WORKER_ENABLED", "worker.enabled", Kind::Bool),
    ("PAYOUTD_NOTIFY_URL", "notify.url", Kind::OptionalText),
    // Comma-separated too, but one value: the list is parsed as Standard Webhooks secrets.
    ("PAYOUTD_NOTIFY_SECRET", "notify.secret", Kind::Text),
    (
        "PAYOUTD_SIMULATOR_LISTEN_ADDR",
        "simulator.listen_addr",
        Kind::Text,
    ),
    (
        "PAYOUTD_SIMULATOR_CALLBACK_URL",
        "simulator.callback_url",
        Kind::Text,
    ),
    (
        "PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS",
        "simulator.callback_delay_ms",
        Kind::Whole,
    ),
    // Empty means unset, as the OpenTelemetry specification reads them.
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "traces.otlp_endpoint",
        Kind::OptionalText,
    ),
    (
        "OTEL_SERVICE_NAME",
        "traces.service_name",
        Kind::OptionalText,
    ),
];

/// `key (VARIABLE)`, or the key alone when no environment variable sets it.
pub fn describe(key: &str) -> String {
    match ENV.iter().find(|(_, k, _)| *k == key) {
        Some((var, _, _)) => format!("{key} ({var})"),
        None => format!("{key} (config file only, no environment variable)"),
    }
}

/// The layers merged. A variable that does not parse as its kind is a problem, left out.
pub fn layers(
    defaults: &str,
    dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Toml::string(defaults));
    if let Some(dir) = dir {
        figment = figment.merge(Toml::string(&read(&dir.join("default.toml"))?));
    }
    let env_name = match env("PAYOUTD_ENV") {
        Some(name) => name,
        None => figment
            .extract_inner::<String>("env")
            .map_err(|e| ConfigError::Invalid(format!("{}: {}", describe("env"), e.kind)))?,
    };
    if !matches!(env_name.as_str(), "development" | "production") {
        return Err(ConfigError::Invalid(format!(
            "{}: must be development or production, not {env_name:?}",
            describe("env")
        )));
    }
    if let Some(dir) = dir {
        figment = figment.merge(Toml::string(&read(&dir.join(format!("{env_name}.toml")))?));
    }
    for (var, key, kind) in ENV {
        let Some(raw) = env(var) else { continue };
        match value(*kind, &raw) {
            Ok(Some(value)) => figment = figment.merge(Serialized::default(key, value)),
            Ok(None) => {}
            Err(problem) => problems.push(format!("{key} ({var}): {problem}")),
        }
    }
    Ok(figment)
}

/// A file's text, checked here so a syntax error names the file and never quotes its line (it
/// may hold a secret); a missing file is empty.
fn read(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.parse::<toml::Table>() {
            Ok(_) => Ok(text),
            Err(e) => Err(ConfigError::Invalid(format!(
                "{}: {}",
                path.display(),
                e.message()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn value(kind: Kind, raw: &str) -> Result<Option<Value>, String> {
    Ok(Some(match kind {
        Kind::Text => Value::from(raw.to_owned()),
        Kind::OptionalText if raw.trim().is_empty() => return Ok(None),
        Kind::OptionalText => Value::from(raw.trim().to_owned()),
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Value::from(true),
            "false" | "0" => Value::from(false),
            _ => return Err(format!("{raw:?} is not a boolean (true, false, 1 or 0)")),
        },
        Kind::Whole => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| format!("{raw:?} is not a whole number"))?,
        Kind::List => Value::from(
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ),
    }))
}

/// Deserializes the merged layers, naming every key whose value has the wrong type, not just
/// the first: serde stops at the first error, so the bad key is recorded, set back to its
/// built-in default (or dropped: an unknown key, an unset option) and the rest read again.
/// `None` when a key cannot be set back.
pub fn extract_reporting_all<T: DeserializeOwned>(
    figment: &Figment,
    defaults: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let mut data: Dict = match figment.extract() {
        Ok(data) => data,
        Err(e) => {
            problems.push(e.kind.to_string());
            return None;
        }
    };
    let defaults: Dict = Figment::from(Toml::string(defaults))
        .extract()
        .unwrap_or_default();
    // Each round fixes one key; a configuration has far fewer keys than this.
    for _ in 0..64 {
        let error = match Figment::from(Serialized::defaults(&data)).extract::<T>() {
            Ok(settings) => return Some(settings),
            Err(errors) => errors.into_iter().next()?,
        };
        let mut path = error.path.clone();
        if let figment::error::Kind::MissingField(field) = &error.kind {
            path.push(field.to_string());
        }
        // A list's element is reported, and set back, as the whole list.
        if let Some(index) = path.iter().position(|p| p.parse::<usize>().is_ok()) {
            path.truncate(index);
        }
        let key = path.join(".");
        problems.push(format!("{}: {}", describe(&key), error.kind));
        let removed = remove(&mut data, &path);
        let restored = find(&defaults, &path)
            .filter(|_| removed)
            .is_some_and(|default| insert(&mut data, &path, default.clone()));
        if !removed && !restored {
            return None;
        }
    }
    None
}

fn find<'a>(dict: &'a Dict, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut current = dict;
    for part in parents {
        current = current.get(part)?.as_dict()?;
    }
    current.get(last)
}

fn remove(dict: &mut Dict, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = dict;
    for part in parents {
        match current.get_mut(part) {
            Some(Value::Dict(_, next)) => current = next,
            _ => return false,
        }
    }
    current.remove(last).is_some()
}

fn insert(dict: &mut Dict, path: &[String], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = dict;
    for part in parents {
        match current.get_mut(part) {
            Some(Value::Dict(_, next)) => current = next,
            _ => return false,
        }
    }
    current.insert(last.clone(), value);
    true
}
