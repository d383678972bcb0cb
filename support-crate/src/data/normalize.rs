//! Cleaning of the AG News text quirks (see `data/README.md`).
//!
//! The release text is not clean: a lone backslash marks a line break, `\$`
//! stands for `$`, and HTML entities appear both intact (`&lt;`) and with
//! their `&` replaced by a space (`doesn #39;t`, ` quot;`). [`normalize`] is
//! the one place that undoes them; every model sees its output.

/// Undo the AG News text quirks and collapse whitespace.
///
/// * `\$` becomes `$`; any other backslash (a lost line break) becomes a space.
/// * `&name;` and `&#NN;` are decoded; so are the entities that lost their
///   `&` to a space (` #39;`, ` quot;`, ...): the space that replaced the `&`
///   is removed with them, so `doesn #39;t` becomes `doesn't`.
/// * Runs of whitespace become one space; the result is trimmed.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            if let Some(after) = rest.strip_prefix("\\$") {
                out.push('$');
                rest = after;
            } else {
                out.push(' ');
                rest = &rest[1..];
            }
            continue;
        }
        if c == '&' || c == ' ' || c == '#' {
            // `&entity;`, ` entity;` (lost `&`) or `#NN;` glued to a word.
            let body = if c == '#' { rest } else { &rest[1..] };
            if let Some((decoded, len)) = decode_entity(body, c == '#') {
                out.push(decoded);
                rest = &body[len..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    collapse_whitespace(&out)
}

/// Decode an entity at the start of `s` (without its `&`): `#39;`, `quot;`, ...
/// Returns the character and the number of bytes consumed. With `numeric_only`
/// just `#NN;` is accepted (a bare `quot;` inside a word is left alone).
fn decode_entity(s: &str, numeric_only: bool) -> Option<(char, usize)> {
    if let Some(digits) = s.strip_prefix('#') {
        let end = digits.find(';')?;
        if end == 0 || end > 6 || !digits[..end].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let code: u32 = digits[..end].parse().ok()?;
        return char::from_u32(code).map(|ch| (ch, end + 2));
    }
    if numeric_only {
        return None;
    }
    const NAMED: [(&str, char); 6] =
        [("quot;", '"'), ("amp;", '&'), ("lt;", '<'), ("gt;", '>'), ("apos;", '\''), ("nbsp;", ' ')];
    NAMED.iter().find(|(name, _)| s.starts_with(name)).map(|&(name, ch)| (ch, name.len()))
}

fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The text quirks of one raw field, counted for the EDA.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// A backslash other than `\$` (a lost line break).
    pub backslash_break: bool,
    /// `\$` written for a dollar sign.
    pub escaped_dollar: bool,
    /// An entity whose `&` was lost (` #39;`, ` quot;`, ...).
    pub lost_ampersand_entity: bool,
    /// An intact HTML entity (`&lt;`, `&amp;`, ...).
    pub html_entity: bool,
    /// A double quote (written `""` in the CSV).
    pub double_quote: bool,
    /// Leading or trailing whitespace.
    pub untrimmed: bool,
    /// Two or more spaces in a row.
    pub repeated_spaces: bool,
}

impl Quirks {
    /// Names, in the order [`Quirks::flags`] returns them.
    pub const NAMES: [&'static str; 7] = [
        "backslash line break",
        "\\$ for $",
        "entity without &",
        "HTML entity",
        "double quote",
        "untrimmed",
        "repeated spaces",
    ];

    pub fn of(raw: &str) -> Self {
        let lost = |name: &str| raw.contains(&format!(" {name}"));
        let lost_ampersand_entity = ["quot;", "amp;", "lt;", "gt;"].iter().any(|n| lost(n))
            || raw
                .match_indices('#')
                .any(|(i, _)| decode_entity(&raw[i..], true).is_some() && !raw[..i].ends_with('&'));
        Quirks {
            backslash_break: raw.replace("\\$", "").contains('\\'),
            escaped_dollar: raw.contains("\\$"),
            lost_ampersand_entity,
            html_entity: raw.match_indices('&').any(|(i, _)| decode_entity(&raw[i + 1..], false).is_some()),
            double_quote: raw.contains('"'),
            untrimmed: raw.trim() != raw,
            repeated_spaces: raw.contains("  "),
        }
    }

    pub fn flags(&self) -> [bool; 7] {
        [
            self.backslash_break,
            self.escaped_dollar,
            self.lost_ampersand_entity,
            self.html_entity,
            self.double_quote,
            self.untrimmed,
            self.repeated_spaces,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_is_a_line_break() {
        assert_eq!(normalize("A second\\team of rocketeers"), "A second team of rocketeers");
        assert_eq!(normalize("social\\network"), "social network");
    }

    #[test]
    fn escaped_dollar() {
        assert_eq!(normalize("Mills Grabs \\$1B Portfolio"), "Mills Grabs $1B Portfolio");
    }

    #[test]
    fn entities_that_lost_their_ampersand() {
        assert_eq!(normalize("Eriksson doesn #39;t feel"), "Eriksson doesn't feel");
        assert_eq!(
            normalize("competing for the  #36;10 million Ansari X Prize"),
            "competing for the $10 million Ansari X Prize"
        );
        assert_eq!(normalize("In  quot;helping themselves, quot; he said"), "In \"helping themselves,\" he said");
    }

    #[test]
    fn intact_entities() {
        assert_eq!(normalize("Texas Instruments Inc. &lt;TXN.N&gt;"), "Texas Instruments Inc. <TXN.N>");
        assert_eq!(normalize("AT&amp;T"), "AT&T");
        assert_eq!(normalize("it&#39;s"), "it's");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert_eq!(normalize("R&D spending #1 in quotas; quot"), "R&D spending #1 in quotas; quot");
        assert_eq!(normalize("Ünïcode — fine"), "Ünïcode — fine");
    }

    #[test]
    fn combined_quirks_and_whitespace() {
        assert_eq!(normalize("\\\\\"Sven Jaschan  said"), "\"Sven Jaschan said");
        assert_eq!(normalize("  Turner   Newall  "), "Turner Newall");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn quirks_are_detected() {
        let q = Quirks::of(" A second\\team, \\$5,  doesn #39;t &lt;X&gt; \"q\"");
        assert!(q.flags().iter().all(|&f| f), "{q:?}");
        let clean = Quirks::of("Plain text, nothing odd.");
        assert!(clean.flags().iter().all(|&f| !f), "{clean:?}");
        assert!(!Quirks::of("it&#39;s").lost_ampersand_entity);
    }
}
