//! Operator configuration: who may act (`PAYOUTD_ADMIN_TOKENS`).

use serde::Deserialize;

use crate::coinspaid::signing::SecretString;

/// `[admin]`: operator tokens, each `name:token`, so every action is attributed to a name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `name:token` pairs (`PAYOUTD_ADMIN_TOKENS=alice:...,bob:...`). Empty in development
    /// means the dev operator `dev` with [`DEV_ADMIN_TOKEN`]; empty in production means the
    /// operator interface accepts nobody.
    pub tokens: Vec<SecretString>,
}

/// The well-known operator token in development when none is configured.
pub const DEV_ADMIN_TOKEN: &str = "payoutd-dev-admin-token";

/// One operator: a name for the audit trail, and the token that proves it.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub token: SecretString,
}

impl AdminSettings {
    /// Parses `name:token` pairs; refuses an empty or odd name, a short token, a repeated name.
    pub fn operators(&self) -> Result<Vec<Operator>, String> {
        let mut seen = Vec::<String>::new();
        self.tokens
            .iter()
            .map(|pair| {
                let (name, token) = pair.expose().split_once(':').ok_or(
                    "PAYOUTD_ADMIN_TOKENS: each entry is name:token (the name attributes actions)",
                )?;
                let name_ok = (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
                if !name_ok || matches!(name, "website" | "policy") {
                    return Err(format!(
                        "PAYOUTD_ADMIN_TOKENS: operator name {name:?} must be 1 to 64 of [A-Za-z0-9._-@] and not website or policy"
                    ));
                }
                if token.len() < 16 {
                    return Err(format!(
                        "PAYOUTD_ADMIN_TOKENS: the token of {name:?} must be at least 16 characters"
                    ));
                }
                if seen.iter().any(|s| s == name) {
                    return Err(format!("PAYOUTD_ADMIN_TOKENS: {name:?} appears twice"));
                }
                seen.push(name.to_owned());
                Ok(Operator {
                    name: name.to_owned(),
                    token: SecretString::new(token),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(pairs: &[&str]) -> AdminSettings {
        AdminSettings {
            tokens: pairs.iter().map(|p| SecretString::new(*p)).collect(),
        }
    }

    #[test]
    fn operator_tokens_are_named_and_long() {
        let ops = admin(&["alice:0123456789abcdef", "bob:fedcba9876543210"])
            .operators()
            .unwrap();
        assert_eq!(ops[0].name, "alice");
        assert_eq!(ops[1].token.expose(), "fedcba9876543210");
        for bad in [
            &["0123456789abcdef"][..],
            &["alice:short"],
            &[":0123456789abcdef"],
            &["website:0123456789abcdef"],
            &["a b:0123456789abcdef"],
            &["alice:0123456789abcdef", "alice:fedcba9876543210"],
        ] {
            assert!(admin(bad).operators().is_err(), "{bad:?}");
        }
    }
}
