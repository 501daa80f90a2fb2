//! Bounded, validated text: every free-text field has a limit and a clear error.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("'{0}' is not a valid step key: use 1 to 64 lowercase letters, digits, '_' or '-'")]
    InvalidStepKey(String),
    #[error("'{0}' is not a country code: use the two-letter ISO 3166 code, e.g. NG")]
    InvalidCountry(String),
    #[error("'{0}' is not an IANA time zone, e.g. Europe/Paris")]
    InvalidTimeZone(String),
    #[error("'{0}' is not a language code: use a two-letter ISO 639-1 code such as en, fr or es")]
    InvalidLanguage(String),
    #[error("'{0}' is not an email address")]
    InvalidEmail(String),
    #[error("{field} contains {what} (U+{code:04X}) at character {position}: remove it")]
    Forbidden {
        field: &'static str,
        what: &'static str,
        code: u32,
        position: usize,
    },
}

/// Whether a field holds one line or may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Several,
}

/// What `c` is, if a text field may not hold it. Never allowed: control characters (NUL, the
/// C0 and C1 controls, DEL), which break emails, logs and the database; bidirectional overrides,
/// embeddings and isolates, which make text read other than it is stored (a name or a reason
/// shown reversed); and the zero-width characters that carry nothing (zero-width space, word
/// joiner, byte-order mark). The zero-width joiner and non-joiner are allowed: Persian, Hindi and
/// other scripts need them to spell words. A new line and a tab only where a field has several
/// lines; the Unicode line and paragraph separators nowhere (an ordinary new line says it).
fn forbidden(c: char, lines: Lines) -> Option<&'static str> {
    match c {
        '\n' | '\t' if lines == Lines::Several => None,
        '\n' | '\r' => Some("a line break (this field is one line)"),
        '\u{2028}' | '\u{2029}' => Some("a Unicode line separator"),
        c if c.is_control() => Some("a control character"),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some("a bidirectional override"),
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}' => Some("an invisible character"),
        _ => None,
    }
}

/// Refuses a value holding a character no text field may hold (see [`forbidden`]).
pub fn check_characters(field: &'static str, value: &str, lines: Lines) -> Result<(), TextError> {
    match value
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden(c, lines).map(|what| (i, c, what)))
    {
        None => Ok(()),
        Some((i, c, what)) => Err(TextError::Forbidden {
            field,
            what,
            code: u32::from(c),
            position: i + 1,
        }),
    }
}

/// Checks that `value` is one line, non-empty (after trimming), at most `max` characters, and
/// free of characters no text may hold.
pub fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, TextError> {
    bounded_text(field, value, max, Lines::One)
}

/// As [`bounded`], for a field of several lines (notes, reasons): new lines and tabs allowed,
/// a Windows new line (CR LF) stored as a new line.
pub fn bounded_lines(field: &'static str, value: &str, max: usize) -> Result<String, TextError> {
    bounded_text(field, &value.replace("\r\n", "\n"), max, Lines::Several)
}

fn bounded_text(
    field: &'static str,
    value: &str,
    max: usize,
    lines: Lines,
) -> Result<String, TextError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(TextError::TooLong { field, len, max });
    }
    check_characters(field, trimmed, lines)?;
    Ok(trimmed.to_owned())
}

/// Text from outside any form (a mail server's error, say) made fit for a one-line field: each
/// character no field may hold becomes a space.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if forbidden(c, Lines::One).is_some() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() == 2 && up.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(up))
        } else {
            Err(TextError::InvalidCountry(s.chars().take(20).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<CountryCode> for String {
    fn from(c: CountryCode) -> Self {
        c.0
    }
}
impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ISO 639-1 language codes, sorted.
const ISO_639_1: [&str; 183] = [
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi",
    "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
    "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
    "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
    "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
    "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
    "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
    "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
    "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
    "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
    "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
    "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// A two-letter ISO 639-1 language code, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let low = s.trim().to_ascii_lowercase();
        if ISO_639_1.binary_search(&low.as_str()).is_ok() {
            Ok(Self(low))
        } else {
            Err(TextError::InvalidLanguage(s.chars().take(20).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
/// How a stored language is read back: leniently (any two lowercase letters, the rule before
/// the ISO 639-1 list), so that events recorded then still load. New input goes through
/// [`Language::parse`].
impl TryFrom<String> for Language {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(s))
        } else {
            Err(TextError::InvalidLanguage(s.chars().take(20).collect()))
        }
    }
}
impl From<Language> for String {
    fn from(c: Language) -> Self {
        c.0
    }
}

/// Parses an IANA time zone name, ignoring surrounding whitespace and letter case
/// (`" europe/paris "` is `Europe/Paris`). Store [`chrono_tz::Tz::name`], the canonical spelling,
/// never the input: only the canonical spelling parses back with `str::parse`.
pub fn time_zone(s: &str) -> Result<chrono_tz::Tz, TextError> {
    let trimmed = s.trim();
    trimmed
        .parse::<chrono_tz::Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        })
        .ok_or_else(|| TextError::InvalidTimeZone(s.chars().take(60).collect()))
}

/// A deliberately simple email check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn email(s: &str) -> Result<String, TextError> {
    let s = s.trim();
    let ok = s.len() <= 254
        && !s.contains(char::is_whitespace)
        && check_characters("email", s, Lines::One).is_ok()
        && matches!(s.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
               && !domain.ends_with('.') && !domain.contains('@'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(TextError::InvalidEmail(s.chars().take(80).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_field_holds_controls_overrides_or_invisible_characters() {
        for (text, code) in [
            ("Jo\u{0}y", 0x0),
            ("Jo\u{7}y", 0x7),
            ("Jo\u{7F}y", 0x7F),
            ("Jo\u{85}y", 0x85),
            ("pass\u{202E}txt.exe", 0x202E),
            ("a\u{2066}b", 0x2066),
            ("zero\u{200B}width", 0x200B),
            ("b\u{FEFF}om", 0xFEFF),
            ("line\u{2028}separator", 0x2028),
        ] {
            for lines in [Lines::One, Lines::Several] {
                let refused = bounded_text("title", text, 100, lines).expect_err(text);
                assert!(
                    matches!(refused, TextError::Forbidden { code: c, .. } if c == code),
                    "{text:?}: {refused}"
                );
            }
        }
        let refused = bounded("title", "Passport\r\nBcc: someone@example.org", 100)
            .expect_err("a new line in a title");
        assert_eq!(
            refused.to_string(),
            "title contains a line break (this field is one line) (U+000D) at character 9: remove it"
        );
        assert!(email("ana\u{0}@example.org").is_err());
        assert!(email("ana@exa\u{202E}mple.org").is_err());
    }

    #[test]
    fn several_lines_where_a_field_allows_them_and_scripts_keep_their_joiners() {
        assert_eq!(
            bounded_lines("note", "First line\r\n\tSecond line", 100).expect("two lines"),
            "First line\n\tSecond line"
        );
        assert!(bounded_lines("note", "a lone\rreturn", 100).is_err());
        // Persian "mi-khaham" needs the zero-width non-joiner; emoji sequences the joiner.
        assert!(bounded(
            "full name",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
            100
        )
        .is_ok());
        assert!(bounded("title", "\u{1F469}\u{200D}\u{1F467}", 100).is_ok());
        assert_eq!(one_line("550 rejected\r\n\u{0}next"), "550 rejected   next");
    }

    #[test]
    fn no_two_time_zone_names_differ_only_in_case() {
        let mut names: Vec<String> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name().to_ascii_lowercase())
            .collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            all,
            "a case-insensitive zone name would be ambiguous"
        );
    }

    #[test]
    fn text_limits_are_enforced_with_the_field_name() {
        assert_eq!(
            bounded("title", "  Passport ", 10).expect("fits"),
            "Passport"
        );
        assert_eq!(
            bounded("title", "   ", 10),
            Err(TextError::Empty { field: "title" })
        );
        let e = bounded("title", &"x".repeat(11), 10).expect_err("too long");
        assert_eq!(
            e.to_string(),
            "title is 11 characters long; at most 10 are allowed"
        );
    }

    #[test]
    fn codes_and_addresses_are_checked() {
        assert_eq!(CountryCode::parse("ng").expect("a country").as_str(), "NG");
        assert!(CountryCode::parse("Nigeria").is_err());
        assert!(Language::parse("fr").is_ok());
        assert!(Language::parse("french").is_err());
        assert!(time_zone("Africa/Lagos").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
        assert_eq!(
            time_zone(" europe/PARIS\t").map(chrono_tz::Tz::name),
            Ok("Europe/Paris")
        );
        assert!(email("ada@example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.org",
            "a b@x.org",
            "ada@x",
            "a@@x.org",
        ] {
            assert!(email(bad).is_err(), "{bad} should be rejected");
        }
    }
}
