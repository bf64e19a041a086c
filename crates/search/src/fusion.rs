//! Weighted reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009).
//!
//! Each list contributes `weight / (k + rank)` for every item it ranks (rank from 1). Items
//! found by several lists add up. Ranks, not scores, are fused, so BM25 and cosine need no
//! calibration against each other; `k` (60 in the paper) damps the head of each list.

use std::collections::HashMap;
use std::hash::Hash;

/// One ranked list and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedList<T> {
    /// Items, best first.
    pub items: Vec<T>,
    /// How much this list counts; 0 ignores it.
    pub weight: f32,
}

/// Fuses `lists` and returns every item with its fused score, best first. Ties keep the
/// order in which items were first seen, so the result is deterministic.
#[must_use]
#[allow(clippy::cast_precision_loss)] // Ranks are small.
pub fn fuse<T: Copy + Eq + Hash>(lists: &[RankedList<T>], k: f32) -> Vec<(T, f32)> {
    let mut scores: HashMap<T, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for list in lists {
        for (index, item) in list.items.iter().enumerate() {
            let contribution = list.weight / (k + (index + 1) as f32);
            let entry = scores.entry(*item).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += contribution;
        }
    }
    let mut fused: Vec<(T, f32, usize)> =
        scores.into_iter().map(|(item, (score, first))| (item, score, first)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(item, score, _)| (item, score)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[u32], weight: f32) -> RankedList<u32> {
        RankedList { items: items.to_vec(), weight }
    }

    #[test]
    fn items_in_both_lists_rise() {
        let fused = fuse(&[list(&[1, 2, 3], 1.0), list(&[3, 4, 1], 1.0)], 60.0);
        let order: Vec<u32> = fused.iter().map(|(i, _)| *i).collect();
        assert_eq!(order[..2], [1, 3], "found by both lists");
        assert_eq!(order.len(), 4);
        let expected = 1.0 / 61.0 + 1.0 / 63.0;
        assert!((fused[0].1 - expected).abs() < 1e-6);
    }

    #[test]
    fn weights_shift_the_balance() {
        let keyword = list(&[1, 2], 1.0);
        let semantic = list(&[2, 1], 3.0);
        let fused = fuse(&[keyword, semantic], 60.0);
        assert_eq!(fused[0].0, 2);
        let zero = fuse(&[list(&[1, 2], 1.0), list(&[2, 1], 0.0)], 60.0);
        assert_eq!(zero[0].0, 1, "a zero weight ignores the list");
    }

    #[test]
    fn ties_are_deterministic_and_empty_is_empty() {
        let fused = fuse(&[list(&[7], 1.0), list(&[9], 1.0)], 60.0);
        assert_eq!(fused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [7, 9]);
        assert!(fuse::<u32>(&[], 60.0).is_empty());
    }
}
