//! Reads `benches/targets.txt`: which criterion result is compared with which.
//!
//! One comparison per line, `operation | ours_id | peer_id | target`; lines
//! starting with `#` are comments. Lines that share operation, ours and
//! target are one comparison against several peers: the table reports the
//! best (fastest) of them.

use serde::Deserialize;

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

/// One line of the file, as csv reads it.
#[derive(Deserialize)]
struct Line {
    operation: String,
    ours: String,
    peer: String,
    target: f64,
}

/// Parses the whole file into comparisons, in the order they first appear.
pub(crate) fn parse(text: &str) -> Result<Vec<Comparison>, String> {
    // Every line ends with a newline, so that csv's position after a record
    // is the line after it.
    let text = format!("{}\n", text.trim_end_matches('\n'));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'|')
        .comment(Some(b'#'))
        .has_headers(false)
        .flexible(true)
        .quoting(false)
        .from_reader(text.as_bytes());
    let mut comparisons: Vec<Comparison> = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|err| format!("benches/targets.txt: {err}"))?
    {
        // A record's own position is where csv began reading, before the
        // comments above it; where the next one begins is exact.
        let line_number = reader.position().line() - 1;
        record.trim();
        let error = |message: String| format!("benches/targets.txt line {line_number}: {message}");
        if record.len() != 4 {
            return Err(error(format!(
                "expected `operation | ours_id | peer_id | target`, found {} field(s)",
                record.len()
            )));
        }
        let line: Line = record
            .deserialize(None)
            .map_err(|_| error(format!("the target {:?} is not a number", &record[3])))?;
        if line.operation.is_empty() {
            return Err(error("the operation is empty".into()));
        }
        for id in [&line.ours, &line.peer] {
            if id.is_empty() || id.contains(char::is_whitespace) {
                return Err(error(format!(
                    "{id:?} must be a criterion id without spaces"
                )));
            }
        }
        if !(line.target.is_finite() && line.target > 0.0) {
            return Err(error(format!("the target {} is not positive", line.target)));
        }
        let same_row = comparisons.iter_mut().find(|c| {
            c.operation == line.operation && c.ours == line.ours && c.target == line.target
        });
        match same_row {
            Some(row) if !row.peers.contains(&line.peer) => row.peers.push(line.peer),
            Some(_) => {}
            None => comparisons.push(Comparison {
                operation: line.operation,
                ours: line.ours,
                peers: vec![line.peer],
                target: line.target,
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
        let text = "# header | with | pipes | 1\n\n  get_u32 | seq/ours | seq/std | 0.95\n";
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
            ("op | a | b\n", "line 1: expected"),
            (
                "# ok\nop | a b | c | 1\n",
                "line 2: \"a b\" must be a criterion id",
            ),
            (
                "# ok\n\nop | a b | c | 1",
                "line 3: \"a b\" must be a criterion id",
            ),
            (" | a | b | 1\n", "operation is empty"),
            ("op | a | b | fast\n", "\"fast\" is not a number"),
            ("op | a | b | -1\n", "not positive"),
            ("op | a | b | inf\n", "not positive"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_committed_file_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/targets.txt");
        let rows = parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(rows.len() >= 10, "{} rows", rows.len());
    }
}
