//! Reading one party: its `*_type` word and its `*_data` object, key by key, into the
//! types of the parent module. Refusals name the field and never repeat the value.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};

use super::{FieldError, LegalEntity, NaturalPerson, Party};

pub const NAME_MAX: usize = 100;
pub const LEGAL_NAME_MAX: usize = 200;
pub const EMAIL_MAX: usize = 254;
pub const OLDEST_BIRTH_YEAR: i32 = 1900;
/// The keys of a natural person's data, and of a legal entity's; `email` is the optional one.
pub const NATURAL_KEYS: &[&str] = &["first_name", "last_name", "date_of_birth", "email"];
pub const LEGAL_KEYS: &[&str] = &["legal_name", "country_of_registration", "email"];

#[derive(Clone, Copy)]
pub(super) enum Role {
    Sender,
    Receiver,
}

impl Role {
    pub(super) fn type_field(self) -> &'static str {
        match self {
            Self::Sender => "sender_type",
            Self::Receiver => "receiver_type",
        }
    }

    pub(super) fn data_field(self) -> &'static str {
        match self {
            Self::Sender => "sender_data",
            Self::Receiver => "receiver_data",
        }
    }
}

/// A `*_type` word and its `*_data`, if any.
pub(super) type Stated<'a> = (&'a str, Option<&'a Map<String, Value>>);

/// `None` when neither field was given; data without a type is refused.
pub(super) fn stated<'a>(
    role: Role,
    kind: &'a Option<String>,
    data: &'a Option<Map<String, Value>>,
) -> Result<Option<Stated<'a>>, FieldError> {
    match (kind, data) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(FieldError::new(
            role.type_field(),
            format!("is required when {} is given", role.data_field()),
        )),
        (Some(kind), data) => Ok(Some((kind.as_str(), data.as_ref()))),
    }
}

/// One `*_data` object of the given type, every key known and every value well-formed.
pub(super) fn party(
    role: Role,
    kind: &str,
    data: &Map<String, Value>,
    today: NaiveDate,
) -> Result<Party, FieldError> {
    let known = if kind == "natural" {
        NATURAL_KEYS
    } else {
        LEGAL_KEYS
    };
    if let Some(unknown) = data.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(FieldError::new(
            format!("{}.{unknown}", role.data_field()),
            format!("is not a field of a {kind} {}", role.data_field()),
        ));
    }
    let reader = Reader { role, data };
    let email = reader.optional("email")?.map(email).transpose();
    let email = email.map_err(|m| reader.error("email", m))?;
    Ok(if kind == "natural" {
        Party::Natural(NaturalPerson {
            first_name: reader.name("first_name", NAME_MAX)?,
            last_name: reader.name("last_name", NAME_MAX)?,
            date_of_birth: birth_date(reader.required("date_of_birth")?, today)
                .map_err(|m| reader.error("date_of_birth", m))?,
            email,
        })
    } else {
        Party::Legal(LegalEntity {
            legal_name: reader.name("legal_name", LEGAL_NAME_MAX)?,
            country_of_registration: country(reader.required("country_of_registration")?)
                .map_err(|m| reader.error("country_of_registration", m))?,
            email,
        })
    })
}

struct Reader<'a> {
    role: Role,
    data: &'a Map<String, Value>,
}

impl<'a> Reader<'a> {
    fn error(&self, key: &str, message: &str) -> FieldError {
        FieldError::new(format!("{}.{key}", self.role.data_field()), message)
    }

    /// Absent and `null` are both "not given".
    fn optional(&self, key: &str) -> Result<Option<&'a str>, FieldError> {
        match self.data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(key, "must be a string")),
        }
    }

    fn required(&self, key: &str) -> Result<&'a str, FieldError> {
        self.optional(key)?
            .ok_or_else(|| self.error(key, "is required"))
    }

    /// Passed on exactly as given, so it must already be clean: not blank, no control
    /// characters, bounded.
    fn name(&self, key: &str, max: usize) -> Result<String, FieldError> {
        let text = self.required(key)?;
        if text.trim().is_empty()
            || text.chars().count() > max
            || text.chars().any(char::is_control)
        {
            let message =
                format!("must be 1 to {max} characters, not blank, no control characters");
            return Err(self.error(key, &message));
        }
        Ok(text.to_owned())
    }
}

/// `YYYY-MM-DD`, a real calendar date, in the past and not before 1900.
fn birth_date(text: &str, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    const FORMAT: &str = "must be a past date written YYYY-MM-DD";
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(FORMAT);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| FORMAT)?;
    if date >= today || date.year() < OLDEST_BIRTH_YEAR {
        return Err(FORMAT);
    }
    Ok(date)
}

/// ISO 3166-1 alpha-3: three uppercase letters.
fn country(text: &str) -> Result<String, &'static str> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err("must be an ISO 3166-1 alpha-3 code: three uppercase letters such as DEU")
    }
}

/// A plausible address: one `@`, a dotted domain, no spaces; bounded.
fn email(text: &str) -> Result<String, &'static str> {
    let plausible = text.chars().count() <= EMAIL_MAX
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if plausible {
        Ok(text.to_owned())
    } else {
        Err("must be an email address")
    }
}
