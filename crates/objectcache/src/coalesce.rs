//! Grouping the ranges of one `get_ranges` into reads that share no chunk.

use std::ops::Range;

/// Ranges merged into one read: its span, and the indices of the ranges
/// inside it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) span: Range<u64>,
    pub(crate) members: Vec<usize>,
}

/// Groups `ranges` (in any order, overlapping or not) so that ranges less
/// than `gap` bytes apart share a group. With `gap` the chunk size of the
/// disk tier, two groups never touch the same chunk (or page), so reading
/// groups in parallel never fetches one chunk twice.
pub(crate) fn coalesce(ranges: &[Range<u64>], gap: u64) -> Vec<Group> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&index| ranges[index].start);
    let mut groups: Vec<Group> = Vec::new();
    for index in order {
        let range = &ranges[index];
        match groups.last_mut() {
            Some(group) if range.start < group.span.end.saturating_add(gap) => {
                group.span.end = group.span.end.max(range.end);
                group.members.push(index);
            }
            _ => groups.push(Group {
                span: range.clone(),
                members: vec![index],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_closer_than_the_gap_share_a_group_in_any_order() {
        let groups = coalesce(&[300..400, 0..10, 15..20, 100..150], 10);
        let spans: Vec<_> = groups.iter().map(|g| g.span.clone()).collect();
        assert_eq!(spans, [0..20, 100..150, 300..400]);
        assert_eq!(groups[0].members, [1, 2]);
        assert_eq!(groups[2].members, [0]);
    }

    #[test]
    fn overlapping_and_nested_ranges_merge() {
        let groups = coalesce(&[0..100, 10..20, 50..300], 1);
        assert_eq!(
            groups,
            [Group {
                span: 0..300,
                members: vec![0, 1, 2]
            }]
        );
    }

    #[test]
    fn groups_a_gap_apart_share_no_chunk() {
        let chunk = 64;
        for end in 1..200u64 {
            let groups = coalesce(&[0..end, end + chunk - 1..end + chunk + 5], chunk);
            assert_eq!(groups.len(), 1, "{end}");
            let groups = coalesce(&[0..end, end + chunk..end + chunk + 5], chunk);
            assert_eq!(groups.len(), 2, "{end}");
            let last_chunk_of_first = (groups[0].span.end - 1) / chunk;
            assert!(groups[1].span.start / chunk > last_chunk_of_first, "{end}");
        }
    }

    #[test]
    fn no_ranges_no_groups() {
        assert!(coalesce(&[], 10).is_empty());
    }
}
