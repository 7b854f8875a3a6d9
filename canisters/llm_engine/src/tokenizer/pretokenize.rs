//! Splitting text into words before byte-level BPE, as the GPT-2 family's
//! regular expressions do, implemented by hand (no regex engine). Each
//! function below follows one alternative of the expression, tried in order
//! at each position, with the backtracking the regex would do.
//!
//! Qwen2: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//!         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! Llama 3: the same with `\p{N}{1,3}`.
//! GPT-2:  `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

use super::letters::LETTER_RANGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    Qwen2,
    Llama3,
    Gpt2,
}

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "qwen2" => Some(PreTokenizer::Qwen2),
            "llama3" | "llama-bpe" | "llama-v3" => Some(PreTokenizer::Llama3),
            "gpt2" | "gpt-2" | "default" => Some(PreTokenizer::Gpt2),
            _ => None,
        }
    }

    /// Splits `text` into consecutive pieces that together are `text`.
    pub fn split(self, text: &str) -> Vec<&str> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let end = match self {
                PreTokenizer::Qwen2 => qwen_style_match(&chars, i, 1),
                PreTokenizer::Llama3 => qwen_style_match(&chars, i, 3),
                PreTokenizer::Gpt2 => gpt2_match(&chars, i),
            };
            let byte_end = chars.get(end).map_or(text.len(), |&(b, _)| b);
            pieces.push(&text[chars[i].0..byte_end]);
            i = end;
        }
        pieces
    }
}

pub fn is_letter(c: char) -> bool {
    let cp = c as u32;
    if cp < 0x80 {
        return c.is_ascii_alphabetic();
    }
    LETTER_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `\p{N}`: general categories Nd, Nl, No (which is what `char::is_numeric` tests).
pub fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// `\s`: the White_Space property.
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// `[^\s\p{L}\p{N}]`
fn is_other(c: char) -> bool {
    !is_space(c) && !is_letter(c) && !is_number(c)
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// End of the run of chars satisfying `class` starting at `from`.
fn run_end(chars: &[(usize, char)], from: usize, class: impl Fn(char) -> bool) -> usize {
    chars[from..].iter().position(|&(_, c)| !class(c)).map_or(chars.len(), |k| from + k)
}

fn at(chars: &[(usize, char)], i: usize) -> Option<char> {
    chars.get(i).map(|&(_, c)| c)
}

/// `'s|'t|'re|'ve|'m|'ll|'d`, ASCII-case-insensitively if asked.
fn contraction(chars: &[(usize, char)], i: usize, ignore_case: bool) -> Option<usize> {
    if at(chars, i) != Some('\'') {
        return None;
    }
    let fold = |c: Option<char>| c.map(|c| if ignore_case { c.to_ascii_lowercase() } else { c });
    match (fold(at(chars, i + 1)), fold(at(chars, i + 2))) {
        (Some('s' | 't' | 'm' | 'd'), _) => Some(i + 2),
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(i + 3),
        _ => None,
    }
}

/// Whitespace alternatives shared by all styles: `\s+(?!\S)|\s+`. When the
/// run is followed by a non-space, the lookahead version backtracks one char
/// (leaving it to prefix the next word) unless that would leave nothing.
fn trailing_space(chars: &[(usize, char)], i: usize, run: usize) -> usize {
    if run < chars.len() && run - i >= 2 { run - 1 } else { run }
}

fn qwen_style_match(chars: &[(usize, char)], i: usize, max_digits: usize) -> usize {
    if let Some(end) = contraction(chars, i, true) {
        return end;
    }
    let c = chars[i].1;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if is_letter(c) {
        return run_end(chars, i, is_letter);
    }
    if !is_newline(c) && !is_number(c) && at(chars, i + 1).is_some_and(is_letter) {
        return run_end(chars, i + 1, is_letter);
    }
    // \p{N}{1,max_digits}
    if is_number(c) {
        return run_end(chars, i, is_number).min(i + max_digits);
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    let start = if c == ' ' { i + 1 } else { i };
    if at(chars, start).is_some_and(is_other) {
        let others = run_end(chars, start, is_other);
        return run_end(chars, others, is_newline);
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last newline.
    let run = run_end(chars, i, is_space);
    if let Some(last_newline) = (i..run).rev().find(|&k| is_newline(chars[k].1)) {
        return last_newline + 1;
    }
    if run > i {
        return trailing_space(chars, i, run);
    }
    i + 1
}

fn gpt2_match(chars: &[(usize, char)], i: usize) -> usize {
    if let Some(end) = contraction(chars, i, false) {
        return end;
    }
    let c = chars[i].1;
    // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+'
    let start = if c == ' ' { i + 1 } else { i };
    if let Some(next) = at(chars, start) {
        for class in [is_letter as fn(char) -> bool, is_number, is_other] {
            if class(next) {
                return run_end(chars, start, class);
            }
        }
    }
    let run = run_end(chars, i, is_space);
    if run > i {
        return trailing_space(chars, i, run);
    }
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_table_agrees_with_known_characters() {
        for c in ['a', 'Z', 'é', 'ß', 'Ж', 'ع', '中', 'ー', 'ǅ'] {
            assert!(is_letter(c), "{c}");
        }
        // Combining marks and Nl are Alphabetic but not letters.
        for c in ['1', ' ', '_', '\u{0301}', '\u{093E}', 'Ⅻ', '😀', '。'] {
            assert!(!is_letter(c), "{c:?}");
        }
    }

    #[test]
    fn qwen2_splits_like_its_regex() {
        let split = |s| PreTokenizer::Qwen2.split(s);
        assert_eq!(split("Hello world"), ["Hello", " world"]);
        assert_eq!(split("I'm 12345 ok"), ["I", "'m", " ", "1", "2", "3", "4", "5", " ok"]);
        assert_eq!(split("WE'LL 'Re"), ["WE", "'LL", " '", "Re"]);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a \n\n  b  "), ["a", " \n\n", " ", " b", "  "]);
        assert_eq!(split("x!!\n\ny"), ["x", "!!\n\n", "y"]);
        assert_eq!(split(" ?! (ok)"), [" ?!", " (", "ok", ")"]);
        assert_eq!(split("\tfoo"), ["\tfoo"]);
        assert_eq!(split("<|im_start|>"), ["<|", "im", "_start", "|>"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn llama3_groups_three_digits() {
        assert_eq!(PreTokenizer::Llama3.split("12345"), ["123", "45"]);
    }

    #[test]
    fn gpt2_splits_like_its_regex() {
        let split = |s| PreTokenizer::Gpt2.split(s);
        assert_eq!(split("Hello world 123!?"), ["Hello", " world", " 123", "!?"]);
        assert_eq!(split("it's  'RE"), ["it", "'s", " ", " '", "RE"]);
        assert_eq!(split("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(split("end  "), ["end", "  "]);
    }
}
