//! Reads `benches/targets.txt`: which criterion result is compared with which.
//!
//! One comparison per line, `operation | ours_id | peer_id | target`, `#` starts
//! a comment. Lines that share operation, ours and target are one comparison
//! against several peers: the table reports the best (fastest) of them.

use std::fmt;

/// One row of the benchmark table: our benchmark against one or more peers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    /// What is measured, in words.
    pub(crate) operation: String,
    /// Criterion id of our benchmark (`group/function[/parameter]`).
    pub(crate) ours: String,
    /// Criterion ids of the peers, in file order, without duplicates.
    pub(crate) peers: Vec<String>,
    /// Least `peer_time / ours_time` that meets the goal.
    pub(crate) target: f64,
}

/// A line of `targets.txt` that does not follow the format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetsError {
    /// 1-based line number.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl fmt::Display for TargetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "benches/targets.txt line {}: {}",
            self.line, self.message
        )
    }
}

impl std::error::Error for TargetsError {}

/// Parses the whole file into comparisons, in the order they first appear.
pub(crate) fn parse(text: &str) -> Result<Vec<Comparison>, TargetsError> {
    let mut comparisons: Vec<Comparison> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let error = |message: String| TargetsError { line, message };
        let fields: Vec<&str> = content.split('|').map(str::trim).collect();
        let [operation, ours, peer, target] = fields[..] else {
            return Err(error(format!(
                "expected `operation | ours_id | peer_id | target`, found {} field(s)",
                fields.len()
            )));
        };
        if operation.is_empty() {
            return Err(error("the operation is empty".into()));
        }
        for (name, id) in [("ours", ours), ("peer", peer)] {
            if id.is_empty() || id.contains(char::is_whitespace) {
                return Err(error(format!(
                    "the {name} id {id:?} must be a criterion id without spaces"
                )));
            }
        }
        let target: f64 = match target.parse() {
            Ok(t) if f64::is_finite(t) && t > 0.0 => t,
            _ => {
                return Err(error(format!(
                    "the target {target:?} is not a positive number"
                )));
            }
        };
        let same_row = comparisons.iter_mut().find(|c| {
            c.operation == operation && c.ours == ours && c.target.to_bits() == target.to_bits()
        });
        match same_row {
            Some(row) if !row.peers.iter().any(|p| p == peer) => row.peers.push(peer.into()),
            Some(_) => {}
            None => comparisons.push(Comparison {
                operation: operation.into(),
                ours: ours.into(),
                peers: vec![peer.into()],
                target,
            }),
        }
    }
    Ok(comparisons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_blank_lines() {
        let text =
            "# header | with | pipes | 1\n\n  get_u32 | seq/ours | seq/std | 0.95 # trailing\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![Comparison {
                operation: "get_u32".into(),
                ours: "seq/ours".into(),
                peers: vec!["seq/std".into()],
                target: 0.95,
            }]
        );
    }

    #[test]
    fn merges_rows_with_the_same_operation_ours_and_target_into_several_peers() {
        let text = "\
copy 256 MiB | copy/ours | copy/io_copy | 0.9
get | get/ours | get/lru | 2
copy 256 MiB | copy/ours | copy/pread_loop | 0.9
copy 256 MiB | copy/ours | copy/io_copy | 0.9
";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].peers, ["copy/io_copy", "copy/pread_loop"]);
        assert_eq!(rows[1].operation, "get");
    }

    #[test]
    fn keeps_rows_with_different_targets_apart() {
        let text = "op | a/ours | a/p | 1\nop | a/ours | a/q | 2\n";
        assert_eq!(parse(text).unwrap().len(), 2);
    }

    #[test]
    fn reports_the_line_of_a_malformed_row() {
        let cases = [
            ("op | a | b\n", "3 field(s)"),
            ("# ok\nop | a b | c | 1\n", "without spaces"),
            (" | a | b | 1\n", "operation is empty"),
            ("op | a | b | fast\n", "not a positive number"),
            ("op | a | b | -1\n", "not a positive number"),
            ("op | a | b | inf\n", "not a positive number"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, text.lines().count(), "{text:?}");
            assert!(err.message.contains(expected), "{text:?}: {err}");
        }
    }
}
