//! Markdown links and heading anchors, enough to check that relative links
//! resolve.
//!
//! Links: inline `[text](target "title")`, images, and reference definitions
//! `[label]: target`, outside fenced code blocks and inline code spans.
//! Anchors: ATX and setext headings slugged the way GitHub does (lower case,
//! punctuation dropped, spaces to `-`, `-1`, `-2` … for repeats), mdBook's
//! explicit `{#id}`, and HTML `id="…"`/`name="…"` attributes.
//! Known approximation: emphasis written with `_` (`_word_`) keeps its
//! underscores in the slug, where GitHub drops them.

/// A link found in a Markdown file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// 1-based line of the link's target.
    pub line: usize,
    /// The target as written, without `<>` and title.
    pub target: String,
}

/// Lines outside fenced code blocks, with their 1-based numbers.
fn prose_lines(md: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<(char, usize)> = None;
    let mut out = Vec::new();
    for (index, line) in md.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => fence = Some((m, run)),
            (Some((m, n)), Some(c)) if c == m && run >= n && trimmed[run..].trim().is_empty() => {
                fence = None;
            }
            (None, _) => out.push((index + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` with the contents of inline code spans replaced by spaces.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let body = i + run;
        let mut j = body;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|c| **c == '`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                for c in &mut out[body..end] {
                    *c = ' ';
                }
                i = end + run;
            }
            None => i = body,
        }
    }
    out.into_iter().collect()
}

/// Every link target in `md`.
pub fn links(md: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line_no, line) in prose_lines(md) {
        let line = without_code_spans(line);
        if let Some(target) = reference_definition(&line) {
            out.push(Link {
                line: line_no,
                target,
            });
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let (target, consumed) = inline_target(after);
            if !target.is_empty() {
                out.push(Link {
                    line: line_no,
                    target,
                });
            }
            rest = &after[consumed..];
        }
    }
    out
}

/// `[label]: target` at the start of a line (up to three spaces in).
fn reference_definition(line: &str) -> Option<String> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line[indent..].strip_prefix('[').filter(|_| indent <= 3)?;
    let close = rest.find("]:")?;
    if close == 0 || rest[..close].contains('[') {
        return None;
    }
    let target = rest[close + 2..].split_whitespace().next()?;
    Some(
        target
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
    )
}

/// The target of an inline link whose `(` was just consumed, and how many
/// bytes of `after` it took.
fn inline_target(after: &str) -> (String, usize) {
    let skipped = after.len() - after.trim_start().len();
    let body = &after[skipped..];
    if let Some(angle) = body.strip_prefix('<') {
        let end = angle.find('>').unwrap_or(angle.len());
        return (angle[..end].to_owned(), skipped + 1 + end);
    }
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return (body[..i].to_owned(), skipped + i),
            ')' => depth -= 1,
            c if c.is_whitespace() => return (body[..i].to_owned(), skipped + i),
            _ => {}
        }
    }
    (body.to_owned(), after.len())
}

/// Whether `target` leaves the repository (`https:`, `mailto:` … any URL
/// scheme), so that the checker skips it.
pub fn is_external(target: &str) -> bool {
    let Some(colon) = target.find(':') else {
        return false;
    };
    let scheme = &target[..colon];
    !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The GitHub slug of a heading's text: links reduced to their text, lower
/// case, everything but letters, digits, `-`, `_` and spaces dropped, spaces
/// turned into `-`.
pub fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` → `text`.
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a link into `md` may name.
pub fn anchors(md: &str) -> Vec<String> {
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    let mut out = Vec::new();
    let mut previous: Option<&str> = None;
    let mut push_heading = |text: &str, out: &mut Vec<String>| {
        let text = text.trim();
        if let Some(id) = text
            .rfind("{#")
            .filter(|_| text.ends_with('}'))
            .map(|at| &text[at + 2..text.len() - 1])
        {
            out.push(id.to_owned());
            return;
        }
        let base = slug(&without_code_spans_keep_text(text));
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    };
    for (_, line) in prose_lines(md) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if indent <= 3
            && (1..=6).contains(&hashes)
            && trimmed[hashes..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
        {
            let text = trimmed[hashes..].trim();
            let text = text.trim_end_matches('#').trim_end();
            push_heading(text, &mut out);
            previous = None;
            continue;
        }
        let underline = line.trim();
        let is_setext = !underline.is_empty()
            && (underline.chars().all(|c| c == '=') || underline.chars().all(|c| c == '-'));
        if let (true, Some(prev)) = (is_setext, previous) {
            push_heading(prev, &mut out);
            previous = None;
            continue;
        }
        for attr in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attr) {
                let value = &rest[at + attr.len()..];
                let end = value.find('"').unwrap_or(value.len());
                out.push(value[..end].to_owned());
                rest = &value[end..];
            }
        }
        previous = (!line.trim().is_empty()).then_some(line);
    }
    out
}

/// Code spans keep their text in a heading's slug; only the backticks go.
fn without_code_spans_keep_text(text: &str) -> String {
    text.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_slugs() {
        assert_eq!(slug("The embedded default"), "the-embedded-default");
        assert_eq!(slug("`[database]`"), "database");
        assert_eq!(slug("Bird's eye view"), "birds-eye-view");
        assert_eq!(
            slug("The walk of one `finalize`"),
            "the-walk-of-one-finalize"
        );
        assert_eq!(slug("See [ipc](ipc.md) now"), "see-ipc-now");
        assert_eq!(slug("A -- b"), "a----b");
    }

    #[test]
    fn anchors_repeat_and_explicit() {
        let md = "# Top\n## Top\n```\n# not a heading\n```\nSetext\n------\n### Custom {#my-id}\n<a id=\"raw\"></a>\n";
        assert_eq!(anchors(md), vec!["top", "top-1", "setext", "my-id", "raw"]);
    }

    #[test]
    fn links_outside_code() {
        let md = "See [a](a.md#x) and ![i](<img b.png> \"t\") and `[c](c.md)`.\n\
                  ```\n[d](d.md)\n```\n[ref]: ref.md\n[e](https://example.org/(x))\n";
        let targets: Vec<String> = links(md).into_iter().map(|l| l.target).collect();
        assert_eq!(
            targets,
            vec!["a.md#x", "img b.png", "ref.md", "https://example.org/(x)"]
        );
    }

    #[test]
    fn externals() {
        assert!(is_external("https://x"));
        assert!(is_external("mailto:a@b"));
        assert!(!is_external("docs/a.md#b:c"));
        assert!(!is_external("#anchor"));
    }
}
