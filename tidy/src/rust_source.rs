//! A small Rust lexer, enough for import and call bans: a word in a comment, a
//! doc comment or a string literal is not a use, so those are blanked before
//! tokens are searched. Every transformation keeps newlines, so line numbers
//! stay those of the file.
//!
//! Known limits (acceptable for tidy checks): macro-generated code is not
//! seen, and a `use x as y;` rename hides later uses of `y`.

/// A token of Rust code with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// 1-based line in the file.
    pub line: usize,
    /// An identifier, keyword or number, `::`, or one punctuation character.
    pub text: String,
}

/// Code with `#[cfg(test)]` items blanked, and the out-of-line test modules
/// (`#[cfg(test)] mod name;`) it declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithoutTests {
    /// The code.
    pub code: String,
    /// Names of modules declared `#[cfg(test)] mod name;`.
    pub test_modules: Vec<String>,
}

fn blank(c: char) -> char {
    if c == '\n' { '\n' } else { ' ' }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Returns `src` with comments (line, block, doc) and the contents of string,
/// raw-string, byte-string and character literals replaced by spaces. Quotes
/// are kept, newlines are kept.
pub fn blank_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = blank_block_comment(&chars, i, &mut out);
        } else if c == '"' {
            out.push('"');
            i = blank_string(&chars, i + 1, &mut out);
        } else if let Some((quote, hashes)) = raw_string_start(&chars, i) {
            out.extend(&chars[i..=quote]);
            i = blank_raw_string(&chars, quote + 1, hashes, &mut out);
        } else if c == '\'' {
            i = blank_char_literal(&chars, i, &mut out);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn blank_block_comment(chars: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0usize;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        if chars[i] == '/' && next == Some('*') {
            depth += 1;
            out.push_str("  ");
            i += 2;
        } else if chars[i] == '*' && next == Some('/') {
            depth = depth.saturating_sub(1);
            out.push_str("  ");
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            out.push(blank(chars[i]));
            i += 1;
        }
    }
    i
}

/// Blanks a (byte) string body starting after its opening quote; returns the
/// index after the closing quote.
fn blank_string(chars: &[char], mut i: usize, out: &mut String) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                out.push(' ');
                if let Some(&escaped) = chars.get(i + 1) {
                    out.push(blank(escaped));
                }
                i += 2;
            }
            '"' => {
                out.push('"');
                return i + 1;
            }
            c => {
                out.push(blank(c));
                i += 1;
            }
        }
    }
    i
}

/// `r"`, `r#"`, `br"`, `cr#"` … at `i` (not inside an identifier): the index
/// of the opening quote and the number of `#`.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((j, hashes))
}

fn blank_raw_string(chars: &[char], mut i: usize, hashes: usize, out: &mut String) -> usize {
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            out.push('"');
            out.extend(std::iter::repeat_n('#', hashes));
            return i + 1 + hashes;
        }
        out.push(blank(chars[i]));
        i += 1;
    }
    i
}

/// A character literal (`'x'`, `'\n'`, `'\u{1F600}'`) is blanked; a lifetime
/// or label (`'a`) is kept.
fn blank_char_literal(chars: &[char], i: usize, out: &mut String) -> usize {
    out.push('\'');
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => {
            let mut j = i + 1;
            out.push(' ');
            j += 1;
            if let Some(&escaped) = chars.get(j) {
                out.push(blank(escaped));
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                out.push(' ');
                j += 1;
            }
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                j += 1;
            }
            j
        }
        (Some(&c), Some('\'')) => {
            out.push(blank(c));
            out.push('\'');
            i + 3
        }
        _ => i + 1,
    }
}

/// Blanks every item under `#[cfg(test)]` (or `#[cfg(all(test, …))]`) in
/// code already passed through [`blank_comments_and_literals`]: an inline
/// `mod tests { … }`, a test-only `fn`, `use` or `impl`, and a module that
/// says `#![cfg(test)]` of itself. Out-of-line test modules are reported so
/// that their files can be exempted too.
pub fn blank_test_items(code: &str) -> WithoutTests {
    let chars: Vec<char> = code.chars().collect();
    let mut out = chars.clone();
    let mut test_modules = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '#' && chars.get(i + 1) == Some(&'!') && chars.get(i + 2) == Some(&'[') {
            // `#![cfg(test)]`: the enclosing module (the file, at the top) is
            // test code up to its closing brace.
            let end = matching(&chars, i + 2, '[', ']');
            let attr: String = chars[i + 3..end.saturating_sub(1).max(i + 3)]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            if is_test_cfg(&attr) {
                let block_end = enclosing_block_end(&chars, end);
                for c in &mut out[i..block_end] {
                    *c = blank(*c);
                }
                i = block_end;
            } else {
                i = end;
            }
        } else if chars[i] == '#' && chars.get(i + 1) == Some(&'[') {
            let end = matching(&chars, i + 1, '[', ']');
            let attr: String = chars[i + 2..end.saturating_sub(1).max(i + 2)]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            if is_test_cfg(&attr) {
                let item_end = item_end(&chars, end);
                let item: String = chars[end..item_end].iter().collect();
                if let Some(name) = out_of_line_module(&item) {
                    test_modules.push(name);
                }
                for c in &mut out[i..item_end] {
                    *c = blank(*c);
                }
                i = item_end;
            } else {
                i = end;
            }
        } else {
            i += 1;
        }
    }
    WithoutTests {
        code: out.into_iter().collect(),
        test_modules,
    }
}

/// The index after the bracket that closes the one at `open`.
fn matching(chars: &[char], open: usize, left: char, right: char) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        if chars[i] == left {
            depth += 1;
        } else if chars[i] == right {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    chars.len()
}

/// The index of the `}` closing the block that `start` is in (the end of the
/// code at the top level).
fn enclosing_block_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in chars.iter().enumerate().skip(start) {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    chars.len()
}

fn is_test_cfg(attr: &str) -> bool {
    let Some(predicate) = attr
        .strip_prefix("cfg(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return false;
    };
    if predicate == "test" {
        return true;
    }
    predicate
        .strip_prefix("all(")
        .and_then(|rest| rest.strip_suffix(')'))
        .is_some_and(|list| list.split(',').any(|p| p == "test"))
}

/// The end of the item starting at `start`: after its `{ … }` body, or after
/// its `;`, whichever comes first outside parentheses and brackets.
fn item_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '#' if depth == 0 && chars.get(i + 1) == Some(&'[') => {
                i = matching(chars, i + 1, '[', ']');
                continue;
            }
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '{' if depth == 0 => return matching(chars, i, '{', '}'),
            ';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

fn out_of_line_module(item: &str) -> Option<String> {
    let words: Vec<&str> = item
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    if !item.trim_end().ends_with(';') {
        return None;
    }
    let at = words.iter().position(|w| *w == "mod")?;
    words.get(at + 1).map(|name| (*name).to_owned())
}

/// The tokens of code already passed through [`blank_comments_and_literals`].
pub fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            out.push(Token {
                line,
                text: chars[start..i].iter().collect(),
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token {
                line,
                text: "::".to_owned(),
            });
            i += 2;
        } else {
            out.push(Token {
                line,
                text: c.to_string(),
            });
            i += 1;
        }
    }
    out
}

/// Lines where the token sequence `pattern` occurs (e.g. `["Instant", "::",
/// "now"]`), each with the pattern joined as found.
pub fn find(tokens: &[Token], pattern: &[&str]) -> Vec<usize> {
    if pattern.is_empty() || tokens.len() < pattern.len() {
        return Vec::new();
    }
    tokens
        .windows(pattern.len())
        .filter(|w| w.iter().zip(pattern).all(|(t, p)| t.text == *p))
        .map(|w| w[0].line)
        .collect()
}

/// Lines where an identifier satisfying `banned` occurs, with the identifier.
pub fn find_identifiers(tokens: &[Token], banned: impl Fn(&str) -> bool) -> Vec<(usize, String)> {
    tokens
        .iter()
        .filter(|t| banned(&t.text))
        .map(|t| (t.line, t.text.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_tokens(src: &str) -> Vec<String> {
        tokens(&blank_comments_and_literals(src))
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn comments_and_literals_are_not_code() {
        let src = "//! uses tokio\n/* diesel /* nested */ hyper */ let a = \"tokio::spawn\";\n\
                   let b = r#\"diesel \" still\"#; let c = '\"'; let d = b\"hyper\\\"\"; 'l: loop {}\n";
        let blanked = blank_comments_and_literals(src);
        assert_eq!(blanked.lines().count(), src.lines().count());
        for word in ["tokio", "diesel", "hyper", "still"] {
            assert!(!blanked.contains(word), "{word} in {blanked:?}");
        }
        let toks = code_tokens(src);
        assert!(toks.contains(&"l".to_owned()), "the label stays: {toks:?}");
        assert!(toks.contains(&"d".to_owned()));
    }

    #[test]
    fn char_literals_do_not_open_strings() {
        let src = "let q = '\\''; let s = '\"'; let u = '\\u{1F600}'; tokio::spawn();";
        assert_eq!(
            find(&tokens(&blank_comments_and_literals(src)), &["tokio", "::"]),
            vec![1]
        );
    }

    #[test]
    fn test_items_are_blanked_and_line_numbers_kept() {
        let src = "use a::b;\n#[cfg(test)]\nmod tests {\n    fn f() { diesel::x(); }\n}\n\
                   #[cfg(all(test, unix))]\nuse diesel::y;\n#[cfg(not(test))]\nfn g() { diesel::z(); }\n\
                   #[cfg(test)]\nmod more;\n";
        let stripped = blank_test_items(&blank_comments_and_literals(src));
        assert_eq!(stripped.test_modules, vec!["more".to_owned()]);
        assert_eq!(find(&tokens(&stripped.code), &["diesel"]), vec![9]);
    }

    #[test]
    fn inner_test_cfg_covers_its_module() {
        let src = "mod a {\n    #![cfg(test)]\n    use diesel::x;\n}\nuse diesel::y;\n";
        let stripped = blank_test_items(&blank_comments_and_literals(src));
        assert_eq!(find(&tokens(&stripped.code), &["diesel"]), vec![5]);
        let file = "//! Tests only.\n#![cfg(test)]\nuse diesel::z;\n";
        let stripped = blank_test_items(&blank_comments_and_literals(file));
        assert!(find(&tokens(&stripped.code), &["diesel"]).is_empty());
    }

    #[test]
    fn sequences_match_across_whitespace() {
        let toks = tokens("let t = Instant ::\n now();");
        assert_eq!(find(&toks, &["Instant", "::", "now"]), vec![1]);
        assert!(find(&toks, &["Instant", "::", "nowhere"]).is_empty());
    }
}
