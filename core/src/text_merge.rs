//! Three-way merge of text: edits that touch different parts of a string are combined,
//! edits that overlap are reported as a conflict (never silently dropped).
//!
//! Texts are split into tokens (words, whitespace runs, single punctuation marks), diffed
//! against the base with Myers' algorithm, and merged chunk by chunk as diff3 does.

/// Two edits touched the same part of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap;

/// Above this many edit steps the diff gives up and the merge reports an overlap.
const MAX_EDIT_DISTANCE: usize = 20_000;

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
/// edit script (Myers), or `None` where the diff would take too long.
fn matches(a: &[&str], b: &[&str]) -> Option<Vec<Option<usize>>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = ((n + m) as usize).min(MAX_EDIT_DISTANCE) as isize;
    let offset = max + 1;
    let mut v = vec![0isize; 2 * offset as usize + 1];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = false;
    'outer: for d in 0..=max {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let idx = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[idx - 1] < v[idx + 1]) {
                v[idx + 1]
            } else {
                v[idx - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[idx] = x;
            if x >= n && y >= m {
                found = true;
                break 'outer;
            }
            k += 2;
        }
    }
    if !found {
        return None;
    }
    let mut result = vec![None; a.len()];
    let (mut x, mut y) = (n, m);
    for d in (0..trace.len() as isize).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let prev_k =
            if k == -d || (k != d && v[(k - 1 + offset) as usize] < v[(k + 1 + offset) as usize]) {
                k + 1
            } else {
                k - 1
            };
        let prev_x = if d == 0 {
            0
        } else {
            v[(prev_k + offset) as usize]
        };
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            result[x as usize] = Some(y as usize);
        }
        if d == 0 {
            break;
        }
        (x, y) = (prev_x, prev_y);
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
