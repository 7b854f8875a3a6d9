//! The game's prompts and how LLM output is read back, without I/O: a
//! challenger's prompt from a topic and the question it generated, a judge's
//! prompt from a question and an answer and the score in its output. Used by
//! the game roles; kept here so that what a prompt was (its SHA-256 is the
//! evidence) and how output is parsed can be checked anywhere.

/// A challenger's prompt; `{topic}` is replaced by the topic's text.
pub const CHALLENGER_TEMPLATE: &str =
    "Write one short question about {topic} that can be answered in a few sentences. Reply with the question only.";

/// A judge's prompt; `{question}`, `{answer}`, `{min}` and `{max}` are replaced.
pub const JUDGE_TEMPLATE: &str = "You judge answers. Question: {question}\nAnswer: {answer}\nHow good is the answer, from {min} (worst) to {max} (best)? Reply with the number only.\nScore:";

/// Longest generated question kept, in bytes (the game state's limit).
pub const MAX_QUESTION_BYTES: usize = 4 * 1024;

/// `template` with each `{key}` replaced by its value, in one pass (a value
/// that contains `{answer}` is not replaced again).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = after.find('}').and_then(|close| {
            let key = &after[..close];
            values.iter().find(|(k, _)| *k == key).map(|(_, v)| (close, *v))
        });
        match hit {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn judge_prompt(template: &str, question: &str, answer: &str, min: u32, max: u32) -> String {
    let (min, max) = (min.to_string(), max.to_string());
    render(template, &[("question", question), ("answer", answer), ("min", &min), ("max", &max)])
}

pub fn challenger_prompt(template: &str, topic: &str) -> String {
    render(template, &[("topic", topic)])
}

/// The score in a judge's output: its first whole number, if that is in
/// `min..=max` ("4", " 4.", "Score: 4/5", "**4** out of 5"); anything else
/// (no number, a number out of range, a fraction such as "4.5", a negative
/// one) is no score.
pub fn parse_score(output: &str, min: u32, max: u32) -> Option<u32> {
    let bytes = output.as_bytes();
    let start = bytes.iter().position(u8::is_ascii_digit)?;
    let end = bytes[start..].iter().position(|b| !b.is_ascii_digit()).map_or(bytes.len(), |n| start + n);
    if start > 0 && bytes[start - 1] == b'-' {
        return None;
    }
    // "4.5" is not a whole number; "4." ending a sentence is.
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = output[start..end].parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

/// The question in a challenger's output: its first non-blank line, without
/// a leading "Question:" or list marker and surrounding quotes, at most
/// [`MAX_QUESTION_BYTES`] (cut at a character boundary); none if blank.
pub fn clean_question(output: &str) -> Option<String> {
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut q = line;
    for prefix in ["Question:", "question:", "Q:", "- ", "* ", "1. "] {
        q = q.strip_prefix(prefix).unwrap_or(q).trim();
    }
    let q = q.trim_matches(|c| c == '"' || c == '\'' || c == '“' || c == '”').trim();
    if q.is_empty() {
        return None;
    }
    let mut end = q.len().min(MAX_QUESTION_BYTES);
    while !q.is_char_boundary(end) {
        end -= 1;
    }
    Some(q[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_once_and_unknown_braces_stay() {
        let p = judge_prompt(JUDGE_TEMPLATE, "Why {x}?", "Because {question}.", 1, 5);
        assert!(p.contains("Question: Why {x}?\nAnswer: Because {question}.\n"), "{p}");
        assert!(p.contains("from 1 (worst) to 5 (best)"));
        assert_eq!(render("{a}{b}{", &[("a", "1")]), "1{b}{");
        assert_eq!(challenger_prompt("about {topic}.", "the sea"), "about the sea.");
    }

    #[test]
    fn scores_are_read_robustly_and_only_in_range() {
        for (output, score) in [
            ("4", Some(4)),
            (" 4.", Some(4)),
            ("Score: 4/5", Some(4)),
            ("**5** out of 5", Some(5)),
            ("I would give it a 3, because", Some(3)),
            ("1\n2\n3", Some(1)),
            ("10", None),
            ("0", None),
            ("4.5", None),
            ("-3", None),
            ("great answer", None),
            ("", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_score(output, 1, 5), score, "{output:?}");
        }
        assert_eq!(parse_score("10", 0, 10), Some(10));
    }

    #[test]
    fn questions_are_cleaned_from_the_output() {
        assert_eq!(
            clean_question("\n  Question: \"Why is the sea salty?\"\nmore").as_deref(),
            Some("Why is the sea salty?")
        );
        assert_eq!(clean_question("- What is a star?").as_deref(), Some("What is a star?"));
        assert_eq!(clean_question(" \n \"\" "), None);
        assert_eq!(clean_question(""), None);
        let long = "é".repeat(MAX_QUESTION_BYTES);
        let q = clean_question(&long).unwrap();
        assert!(q.len() <= MAX_QUESTION_BYTES && q.chars().all(|c| c == 'é'));
    }
}
