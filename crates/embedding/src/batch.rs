//! Pure helpers of the inference path: batch planning and pooling.
//!
//! They hold no ONNX Runtime state, so their unit tests run without the model.

/// The limits one inference batch must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    /// The most texts in one batch.
    pub(crate) max_batch_size: usize,
    /// The most padded tokens (longest text × batch size) in one batch.
    pub(crate) token_budget: usize,
}

/// Splits texts of the given token lengths into batches.
///
/// Texts are sorted by length first so each batch pads to a similar length; every batch
/// lists indices into `lengths`, and together the batches hold every index exactly once.
/// A single text longer than the budget still gets a batch of its own.
pub(crate) fn plan_batches(lengths: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&index| lengths[index]);

    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for index in order {
        // Ascending order makes this text the longest of the batch once it joins.
        let padded_if_added = lengths[index].saturating_mul(current.len() + 1);
        let full = current.len() >= limits.max_batch_size || padded_if_added > limits.token_budget;
        if full && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
        }
        current.push(index);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Attention-masked mean pooling followed by L2 normalisation.
///
/// `hidden` is a row-major `[batch, sequence, dimensions]` tensor and `mask` a row-major
/// `[batch, sequence]` attention mask; the result has one vector per batch row.
pub(crate) fn mean_pool_normalized(
    hidden: &[f32],
    mask: &[i64],
    sequence: usize,
    dimensions: usize,
) -> Vec<Vec<f32>> {
    let batch = mask.len().checked_div(sequence).unwrap_or(0);
    (0..batch)
        .map(|row| {
            let mut pooled = vec![0.0_f32; dimensions];
            let mut count = 0.0_f32;
            for position in 0..sequence {
                if mask[row * sequence + position] == 0 {
                    continue;
                }
                count += 1.0;
                let start = (row * sequence + position) * dimensions;
                for (sum, value) in pooled.iter_mut().zip(&hidden[start..start + dimensions]) {
                    *sum += value;
                }
            }
            if count > 0.0 {
                pooled.iter_mut().for_each(|value| *value /= count);
            }
            let norm = pooled.iter().map(|value| value * value).sum::<f32>().sqrt();
            // A zero vector (no unmasked token) stays zero instead of becoming NaN.
            if norm > f32::EPSILON {
                pooled.iter_mut().for_each(|value| *value /= norm);
            }
            pooled
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_limits_and_cover_every_text() {
        let lengths = [10, 200, 12, 11, 190, 5, 300];
        let limits = BatchLimits { max_batch_size: 3, token_budget: 400 };
        let batches = plan_batches(&lengths, limits);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &batches {
            assert!(batch.len() <= 3);
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(longest * batch.len() <= 400, "{batch:?}");
        }
        assert_eq!(batches[0], vec![5, 0, 3]);
    }

    #[test]
    fn a_text_over_budget_gets_its_own_batch() {
        let limits = BatchLimits { max_batch_size: 8, token_budget: 100 };
        assert_eq!(plan_batches(&[150, 3], limits), vec![vec![1], vec![0]]);
        assert!(plan_batches(&[], limits).is_empty());
    }

    #[test]
    fn pooling_ignores_masked_positions_and_normalises() {
        // One row, three positions of two dimensions; the last position is padding.
        let hidden = [4.0, 0.0, 4.0, 6.0, 100.0, 100.0];
        let mask = [1, 1, 0];
        let pooled = mean_pool_normalized(&hidden, &mask, 3, 2);
        assert_eq!(pooled.len(), 1);
        let expected = [0.8_f32, 0.6];
        for (got, want) in pooled[0].iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} != {want}");
        }
    }
}
