//! Three-way merge of text: edits that touch different parts of a string are combined,
//! edits that overlap are reported as a conflict (never silently dropped).
//!
//! Texts are split into tokens (words, whitespace runs, single punctuation marks), diffed
//! against the base with Myers' algorithm (the `similar` crate, linear space), and merged chunk
//! by chunk as diff3 does.

/// Two edits touched the same part of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap;

/// Above this many tokens in the two texts of a diff, the merge reports an overlap instead
/// of diffing: Myers' time grows with length times distance, and a person can merge a text
/// that long better than a word diff.
const MAX_TOKENS: usize = 20_000;

/// Merges `local` and `server`, both edited from `base`.
pub fn merge_text(base: &str, local: &str, server: &str) -> Result<String, Overlap> {
    if local == server || server == base {
        return Ok(local.to_owned());
    }
    if local == base {
        return Ok(server.to_owned());
    }
    let (b, l, s) = (tokenize(base), tokenize(local), tokenize(server));
    let to_local = matches(&b, &l).ok_or(Overlap)?;
    let to_server = matches(&b, &s).ok_or(Overlap)?;
    let mut out = String::with_capacity(local.len().max(server.len()));
    let (mut ib, mut il, mut is) = (0, 0, 0);
    loop {
        let stable = (ib..b.len()).find(|&j| to_local[j].is_some() && to_server[j].is_some());
        let (jb, jl, js) = match stable {
            Some(j) => (j, to_local[j].unwrap_or(0), to_server[j].unwrap_or(0)),
            None => (b.len(), l.len(), s.len()),
        };
        let (cb, cl, cs) = (&b[ib..jb], &l[il..jl], &s[is..js]);
        let chosen = if cl == cb {
            cs
        } else if cs == cb || cl == cs {
            cl
        } else {
            return Err(Overlap);
        };
        chosen.iter().for_each(|t| out.push_str(t));
        if stable.is_none() {
            return Ok(out);
        }
        out.push_str(b[jb]);
        (ib, il, is) = (jb + 1, jl + 1, js + 1);
    }
}

fn class(c: char) -> u8 {
    if c.is_alphanumeric() {
        0
    } else if c.is_whitespace() {
        1
    } else {
        2
    }
}

/// Splits text into words, whitespace runs and single other characters.
fn tokenize(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut prev: Option<u8> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if let Some(p) = prev {
            if p != k || k == 2 {
                tokens.push(&text[start..i]);
                start = i;
            }
        }
        prev = Some(k);
    }
    if start < text.len() {
        tokens.push(&text[start..]);
    }
    tokens
}

/// For each token of `a`, the index of the token of `b` it is matched with in a shortest
/// edit script, or `None` when the texts are too long to diff here (the merge then reports
/// an overlap for a person). `similar`'s Myers runs in linear space, so memory stays
/// proportional to the texts however different they are.
fn matches(a: &[&str], b: &[&str]) -> Option<Vec<Option<usize>>> {
    if a.len().saturating_add(b.len()) > MAX_TOKENS {
        return None;
    }
    let mut result = vec![None; a.len()];
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, a, b) {
        if let similar::DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = op
        {
            for i in 0..len {
                result[old_index + i] = Some(new_index + i);
            }
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_edits_in_different_places() {
        let base = "Buy milk and eggs. Call Anna tomorrow.";
        let local = "Buy oat milk and eggs. Call Anna tomorrow.";
        let server = "Buy milk and eggs. Call Anna on Friday.";
        assert_eq!(
            merge_text(base, local, server).unwrap(),
            "Buy oat milk and eggs. Call Anna on Friday."
        );
    }

    #[test]
    fn reports_overlapping_edits() {
        assert_eq!(
            merge_text("the red car", "the blue car", "the green car"),
            Err(Overlap)
        );
    }

    #[test]
    fn identical_edits_merge_to_one() {
        assert_eq!(merge_text("a b", "a c", "a c").unwrap(), "a c");
    }

    #[test]
    fn merges_multiline_notes() {
        let base = "line one\nline two\nline three\n";
        let local = "line one, edited\nline two\nline three\n";
        let server = "line one\nline two\nline three\nline four\n";
        assert_eq!(
            merge_text(base, local, server).unwrap(),
            "line one, edited\nline two\nline three\nline four\n"
        );
    }

    #[test]
    fn a_long_replacement_against_a_one_word_edit_stays_small() {
        // 2,000 words replaced on one side, one word edited on the other: the quadratic
        // diff this replaces allocated about 512 MB here.
        let base: String = (0..2_000).map(|i| format!("w{i} ")).collect();
        let server: String = (0..2_000).map(|i| format!("x{i} ")).collect();
        let local = base.replacen("w7 ", "seven ", 1);
        let a = tokenize(&base);
        let b = tokenize(&server);
        let m = matches(&a, &b).expect("diffed");
        assert!(m.iter().filter(|j| j.is_some()).count() <= a.len());
        // Both sides touched the start of the text: a person decides.
        assert_eq!(merge_text(&base, &local, &server), Err(Overlap));
    }

    #[test]
    fn texts_beyond_the_token_bound_are_left_to_a_person() {
        let base = "a ".repeat(MAX_TOKENS);
        let local = format!("b {base}");
        let server = format!("{base}c");
        assert_eq!(merge_text(&base, &local, &server), Err(Overlap));
    }

    #[test]
    fn diff_matches_are_a_common_subsequence() {
        let a = tokenize("x a b c y");
        let b = tokenize("a b z c");
        let m = matches(&a, &b).unwrap();
        let mut last = None;
        for (i, j) in m.iter().enumerate().filter_map(|(i, j)| j.map(|j| (i, j))) {
            assert_eq!(a[i], b[j]);
            assert!(last.is_none_or(|l| j > l));
            last = Some(j);
        }
    }
}
