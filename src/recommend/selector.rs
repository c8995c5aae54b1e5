//! PromQL series selectors: the label matchers of `--match` read and checked before they
//! reach Prometheus (so a typo is named here, not as a parse error in a generated query),
//! and label values written into queries safely. Pure functions of their text.

/// Label matchers, each `label op "value"` with `op` one of `=`, `!=`, `=~`, `!~`, ready to
/// go inside a selector's braces (`name=~"shop-.*",instance="host:9417"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers {
    matchers: Vec<String>,
}

impl Matchers {
    /// Reads each `--match` (all must hold): matchers separated by commas, with or without
    /// the braces of a selector (`{job="stevedore"}` or `job="stevedore"`).
    pub fn parse(flags: &[String]) -> Result<Matchers, String> {
        let mut matchers = Vec::new();
        for flag in flags {
            let text = flag.trim();
            let inner = match text.strip_prefix('{') {
                Some(rest) => rest.strip_suffix('}').ok_or_else(|| {
                    format!("--match={flag:?}: a selector's `{{` is closed by `}}`")
                })?,
                None => text,
            };
            for matcher in
                split_outside_quotes(inner).map_err(|why| format!("--match={flag:?}: {why}"))?
            {
                let matcher = matcher.trim();
                if matcher.is_empty() {
                    continue;
                }
                matchers
                    .push(read_matcher(matcher).map_err(|why| format!("--match={flag:?}: {why}"))?);
            }
        }
        Ok(Matchers { matchers })
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// The matchers, comma-separated, as they go inside braces.
    pub fn inner(&self) -> String {
        self.matchers.join(",")
    }

    /// `{...}` for messages.
    pub fn describe(&self) -> String {
        format!("{{{}}}", self.inner())
    }
}

/// Splits on commas that are not inside a quoted value.
fn split_outside_quotes(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(open) if c == '\\' && open != '`' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if c == ',' => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            None => {}
        }
    }
    if quote.is_some() {
        return Err("a quoted value is not closed".to_owned());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// One `label op value`, written back in one form (`label op "value"`).
fn read_matcher(text: &str) -> Result<String, String> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`{text}` does not start with a label name (letters, digits and _)"
        ));
    }
    let rest = text[name_end..].trim_start();
    let Some(operator) = ["=~", "!~", "!=", "="]
        .into_iter()
        .find(|operator| rest.starts_with(operator))
    else {
        return Err(format!(
            "`{text}`: a matcher is label=\"value\", label!=\"value\", label=~\"regex\" or label!~\"regex\""
        ));
    };
    let value = rest[operator.len()..].trim();
    let unquoted = unquote(value)
        .ok_or_else(|| format!("`{text}`: the value is quoted, e.g. {name}{operator}\"value\""))?;
    Ok(format!("{name}{operator}{}", string(&unquoted)))
}

/// The text of a PromQL string literal: `"..."` or `'...'` with backslash escapes, or
/// `` `...` `` taken as it is. `None` when `value` is not one whole literal.
fn unquote(value: &str) -> Option<String> {
    let open = value.chars().next()?;
    if !matches!(open, '"' | '\'' | '`') || value.len() < 2 || !value.ends_with(open) {
        return None;
    }
    let body = &value[1..value.len() - 1];
    if open == '`' {
        return (!body.contains('`')).then(|| body.to_owned());
    }
    let mut text = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                other => text.push(other),
            },
            c if c == open => return None,
            c => text.push(c),
        }
    }
    Some(text)
}

/// A PromQL double-quoted string holding `text` exactly.
pub fn string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A regular expression (RE2, fully anchored by Prometheus) matching exactly these values.
pub fn any_of(values: &[String]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|value| {
            let mut text = String::new();
            for c in value.chars() {
                if "\\.+*?()|[]{}^$".contains(c) {
                    text.push('\\');
                }
                text.push(c);
            }
            text
        })
        .collect();
    escaped.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(flags: &[&str]) -> Result<String, String> {
        let flags: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
        Matchers::parse(&flags).map(|matchers| matchers.inner())
    }

    #[test]
    fn matchers_with_or_without_braces_and_from_several_flags() {
        assert_eq!(
            parse(&["{job=\"stevedore\"}", "name =~ 'shop-.*' , instance!=`a,b`"]).unwrap(),
            "job=\"stevedore\",name=~\"shop-.*\",instance!=\"a,b\""
        );
        assert_eq!(
            parse(&["label=\"a \\\"quoted\\\" word\""]).unwrap(),
            "label=\"a \\\"quoted\\\" word\""
        );
        assert_eq!(parse(&["{}", ""]).unwrap(), "");
        assert_eq!(parse(&["a=\"x\","]).unwrap(), "a=\"x\"");
    }

    #[test]
    fn mistakes_are_named_before_prometheus_sees_them() {
        for (flag, why) in [
            ("{job=\"x\"", "closed by `}`"),
            ("job=x", "the value is quoted"),
            ("job==\"x\"", "the value is quoted"),
            ("job\"x\"", "a matcher is"),
            ("1job=\"x\"", "label name"),
            ("job=\"x", "not closed"),
            ("=\"x\"", "label name"),
        ] {
            let error = parse(&[flag]).unwrap_err();
            assert!(error.contains(why), "{flag}: {error}");
        }
    }

    #[test]
    fn values_and_regexes_are_escaped() {
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            any_of(&["stevedore".to_owned(), "node.exporter (a)".to_owned()]),
            "stevedore|node\\.exporter \\(a\\)"
        );
    }

    /// Any text of up to 40 characters.
    const SHORT_TEXT: &str = "\\PC{0,40}";

    proptest! {
        #[test]
        fn a_refusal_names_the_flag_and_an_acceptance_is_matchers(text in SHORT_TEXT) {
            match parse(&[&text]) {
                Err(why) => assert!(why.starts_with("--match="), "{}", why),
                // No matchers at all (blank text, commas, braces) is accepted as none.
                Ok(inner) if inner.is_empty() => assert!(
                    text.chars().all(|c| c.is_whitespace() || ",{}".contains(c)),
                    "{:?}",
                    text
                ),
                Ok(inner) => {
                    for matcher in split_outside_quotes(&inner).unwrap() {
                        assert!(
                            ["=", "!=", "=~", "!~"].iter().any(|op| matcher.contains(op)),
                            "{}",
                            matcher
                        );
                    }
                }
            }
        }

        #[test]
        fn any_value_survives_quoting(value in SHORT_TEXT) {
            let quoted = string(&value);
            assert_eq!(unquote(&quoted), Some(value.clone()));
            let matcher = format!("label={quoted}");
            assert_eq!(parse(&[&matcher]).unwrap(), matcher);
        }
    }
}
