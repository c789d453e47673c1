//! Scrubbing a request's travel-rule values out of text that came back from CoinsPaid (a
//! refusal that quotes the sender's name, an HTTP error body, a callback's `error`) before it
//! is stored, logged or notified.
//!
//! Every value of `sender_data` / `receiver_data` is replaced, ignoring case, by [`REDACTED`];
//! so is each word of a value of several words (`Anna Maria` also redacts a lone `Maria`), a
//! date of birth also in its usual other spellings (`17.08.1995`, `17/08/1995`, `08/17/1995`,
//! `1995/08/17`), and a value with characters beyond ASCII also as JSON escapes them
//! (`M\u00fcller`), since an error body may be JSON from any serializer.
//!
//! Short values are handled deliberately: a value (or word) of [`ANYWHERE_MIN`] characters or
//! more is replaced wherever it appears; a shorter one of two or three characters (the name
//! `Li`, the country `DEU`) only where it stands as a whole word, so `DE` never eats the `de`
//! of `code`; a single character (an initial) is left alone, since it identifies no one and
//! would otherwise redact every `a` standing alone.

use chrono::NaiveDate;

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Values (and words) at least this long are redacted anywhere, even inside a longer word.
pub const ANYWHERE_MIN: usize = 4;

/// Shorter than this, a value is left alone: an initial.
pub const WORD_MIN: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Needle {
    /// Lowercased, as `char::to_lowercase` folds the text.
    chars: Vec<char>,
    whole_word: bool,
}

/// The values to scrub from one request, ready to apply to any number of texts.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a whole value is replaced before one of its words.
    needles: Vec<Needle>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

fn fold(text: &str) -> Vec<char> {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// `text` as a JSON string's content is written with every non-ASCII character escaped.
fn json_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The spellings of an ISO date (`1995-08-17`) an error message is likely to use.
fn date_spellings(text: &str) -> Vec<String> {
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(date) => ["%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d"]
            .iter()
            .map(|f| date.format(f).to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Redactor {
    /// From the values of `sender_data` and `receiver_data` (any order, any number).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut spellings: Vec<String> = Vec::new();
        for value in values {
            let value = value.trim();
            spellings.push(value.to_owned());
            spellings.extend(value.split_whitespace().map(str::to_owned));
            spellings.extend(date_spellings(value));
        }
        let escaped: Vec<String> = spellings
            .iter()
            .map(|s| json_escaped(s))
            .filter(|e| !spellings.contains(e))
            .collect();
        spellings.extend(escaped);
        let mut needles: Vec<Needle> = spellings
            .iter()
            .map(|s| fold(s))
            .filter(|chars| chars.len() >= WORD_MIN)
            .map(|chars| Needle {
                whole_word: chars.len() < ANYWHERE_MIN,
                chars,
            })
            .collect();
        needles.sort_by(|a, b| b.chars.len().cmp(&a.chars.len()).then(a.cmp(b)));
        needles.dedup();
        Self { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every value replaced by [`REDACTED`]. Text without one comes back as is.
    pub fn scrub(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_owned();
        }
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            match self.match_at(&chars, i) {
                Some(len) => {
                    out.push_str(REDACTED);
                    i += len;
                }
                None => {
                    out.push(chars[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// `scrub` for an optional text.
    pub fn scrub_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.scrub(t))
    }

    /// How many characters of `chars` from `start` the longest needle matching there covers.
    fn match_at(&self, chars: &[char], start: usize) -> Option<usize> {
        let word_char = |c: &char| c.is_alphanumeric();
        let starts_word = start == 0 || !word_char(&chars[start - 1]);
        self.needles.iter().find_map(|needle| {
            if needle.whole_word && !starts_word {
                return None;
            }
            let len = matched_len(&chars[start..], &needle.chars)?;
            let ends_word = chars.get(start + len).is_none_or(|c| !word_char(c));
            (!needle.whole_word || ends_word).then_some(len)
        })
    }
}

/// How many characters of `text` fold (lowercased) to exactly `needle`, if a prefix does.
fn matched_len(text: &[char], needle: &[char]) -> Option<usize> {
    let mut n = 0;
    for (used, c) in text.iter().enumerate() {
        if n == needle.len() {
            return Some(used);
        }
        for folded in c.to_lowercase() {
            if needle.get(n) != Some(&folded) {
                return None;
            }
            n += 1;
        }
    }
    (n == needle.len()).then_some(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn friedrich() -> Redactor {
        Redactor::new([
            "Friedrich",
            "Müller",
            "1995-08-17",
            "f.mueller@example.com",
            "Example GmbH",
            "DEU",
        ])
    }

    #[test]
    fn every_value_is_replaced_ignoring_case() {
        let r = friedrich();
        assert_eq!(
            r.scrub("Sender FRIEDRICH müller (born 1995-08-17) is blocked"),
            "Sender [redacted] [redacted] (born [redacted]) is blocked"
        );
        assert_eq!(
            r.scrub(r#"{"errors":{"receiver_data":"example gmbh, deu: unknown"}}"#),
            r#"{"errors":{"receiver_data":"[redacted], [redacted]: unknown"}}"#
        );
        assert_eq!(
            r.scrub("mail F.Mueller@Example.com bounced"),
            "mail [redacted] bounced"
        );
    }

    #[test]
    fn a_date_of_birth_is_replaced_in_its_other_spellings() {
        let r = friedrich();
        for date in ["17.08.1995", "17/08/1995", "08/17/1995", "1995/08/17"] {
            assert_eq!(
                r.scrub(&format!("dob {date}!")),
                "dob [redacted]!",
                "{date}"
            );
        }
        assert_eq!(r.scrub("1995-08-18"), "1995-08-18");
    }

    #[test]
    fn json_escaped_spellings_and_single_words_of_a_value_are_replaced() {
        let r = friedrich();
        assert_eq!(
            r.scrub(r#"{"error":"M\u00fcller is on a list"}"#),
            r#"{"error":"[redacted] is on a list"}"#
        );
        assert_eq!(
            r.scrub("the GmbH named Example"),
            "the [redacted] named [redacted]"
        );
        let multi = Redactor::new(["Anna Maria"]);
        assert_eq!(multi.scrub("anna maria / Maria"), "[redacted] / [redacted]");
    }

    #[test]
    fn short_values_are_replaced_only_as_whole_words_and_initials_not_at_all() {
        let r = Redactor::new(["Li", "DE", "J", "DEU"]);
        assert_eq!(
            r.scrub("Li from DE (deu): invalid code, J. Li-Wu"),
            "[redacted] from [redacted] ([redacted]): invalid code, J. [redacted]-Wu"
        );
        assert_eq!(r.scrub("a valid address"), "a valid address");
        assert_eq!(
            r.scrub("Deutsche Bank, DEUTSCHE"),
            "Deutsche Bank, DEUTSCHE"
        );
    }

    #[test]
    fn text_without_a_value_and_an_empty_redactor_change_nothing() {
        let text = "Invalid address. Ümlaut İstanbul 💸";
        assert_eq!(friedrich().scrub(text), text);
        let none = Redactor::new([]);
        assert!(none.is_empty());
        assert_eq!(none.scrub(text), text);
        assert_eq!(Redactor::new(["", " ", "x"]).scrub(text), text);
    }

    #[test]
    fn folding_that_changes_length_still_matches_whole_characters() {
        // 'İ' lowercases to two characters; the match must cover it whole.
        let r = Redactor::new(["İstanbul"]);
        assert_eq!(r.scrub("from İSTANBUL!"), "from [redacted]!");
        assert_eq!(r.scrub("from istanbul"), "from istanbul");
    }

    #[test]
    fn debug_never_prints_a_value() {
        assert!(!format!("{:?}", friedrich()).contains("ller"));
    }
}
