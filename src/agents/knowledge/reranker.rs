//! The standardization reranker: logistic regression over string, lexicon and retrieval
//! features of a (mention, candidate) pair, trained on CPU from the allowed data
//! (`jointcoder train`). Default weights stand in until a model is trained.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::terminology::normalize::normalize;
use crate::terminology::Candidate;

pub const FEATURES: [&str; 11] = [
    "bias",
    "exact",
    "score_ratio",
    "reciprocal_rank",
    "bigram_dice",
    "query_chars_covered",
    "candidate_chars_covered",
    "length_gap",
    "negation_mismatch",
    "extension_code",
    "best_variant_dice",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reranker {
    pub weights: Vec<f64>,
    /// Probability above which a candidate is accepted as the standard name.
    pub threshold: f64,
    /// Probability above which further candidates of the same mention are accepted too (one
    /// mention often names several standard terms); above 1 means never.
    #[serde(default = "never")]
    pub extra_threshold: f64,
    /// `default` or what it was trained on.
    pub trained_on: String,
}

impl Default for Reranker {
    fn default() -> Reranker {
        // Hand-set: exact names win, then strong character overlap.
        Reranker {
            weights: vec![-6.0, 8.0, 1.5, 1.0, 6.0, 2.0, 1.0, -1.5, -3.0, -0.2, 2.0],
            threshold: 0.5,
            extra_threshold: never(),
            trained_on: "default".into(),
        }
    }
}

fn never() -> f64 {
    1.01
}

fn bigrams(key: &str) -> HashSet<(char, char)> {
    let c: Vec<char> = key.chars().collect();
    c.windows(2).map(|w| (w[0], w[1])).collect()
}

fn dice(a: &str, b: &str) -> f64 {
    let (x, y) = (bigrams(a), bigrams(b));
    if x.is_empty() && y.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    2.0 * x.intersection(&y).count() as f64 / (x.len() + y.len()).max(1) as f64
}

fn char_cover(a: &str, b: &str) -> f64 {
    let bs: HashSet<char> = b.chars().collect();
    let n = a.chars().count();
    if n == 0 {
        return 0.0;
    }
    a.chars().filter(|c| bs.contains(c)).count() as f64 / n as f64
}

/// Features of one candidate for a mention whose normalized key is `qkey` (and lexicon
/// rewrites `variants`), given the best retrieval score of the list.
pub fn features(qkey: &str, variants: &[String], cand: &Candidate, rank: usize, best_score: f32) -> Vec<f64> {
    let ckey = normalize(&cand.name);
    let ql = qkey.chars().count() as f64;
    let cl = ckey.chars().count() as f64;
    let negation_mismatch = ["非", "不", "无"].iter().any(|n| ckey.contains(n) && !qkey.contains(n));
    let extension = cand.code.rfind('x').is_some_and(|p| p > 4);
    let best_variant = variants.iter().map(|v| dice(v, &ckey)).fold(dice(qkey, &ckey), f64::max);
    vec![
        1.0,
        f64::from(u8::from(cand.exact)),
        if best_score > 0.0 { f64::from(cand.score / best_score).min(1.0) } else { 0.0 },
        1.0 / (rank as f64 + 1.0),
        dice(qkey, &ckey),
        char_cover(qkey, &ckey),
        char_cover(&ckey, qkey),
        (ql - cl).abs() / ql.max(cl).max(1.0),
        f64::from(u8::from(negation_mismatch)),
        f64::from(u8::from(extension)),
        best_variant,
    ]
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Reranker {
    pub fn prob(&self, f: &[f64]) -> f64 {
        sigmoid(self.weights.iter().zip(f).map(|(w, x)| w * x).sum())
    }

    /// Fits weights by full-batch gradient descent with L2 (rows are few thousand to a few
    /// hundred thousand; this takes well under a second per hundred thousand rows), then picks
    /// the acceptance threshold that maximizes F1 of "top candidate accepted" on the same data.
    pub fn fit(rows: &[(Vec<f64>, bool)], groups: &[(usize, usize, usize)], trained_on: &str) -> Reranker {
        let dim = FEATURES.len();
        let mut w = Reranker::default().weights;
        let n = rows.len().max(1) as f64;
        let pos = rows.iter().filter(|r| r.1).count().max(1) as f64;
        let neg = (rows.len() as f64 - pos).max(1.0);
        // Balance classes: candidates are mostly negatives.
        let (wp, wn) = (n / (2.0 * pos), n / (2.0 * neg));
        let lr = 0.5;
        let l2 = 1e-4;
        for _ in 0..400 {
            let mut grad = vec![0.0; dim];
            for (f, y) in rows {
                let p = sigmoid(w.iter().zip(f).map(|(a, b)| a * b).sum());
                let (t, cw) = if *y { (1.0, wp) } else { (0.0, wn) };
                for k in 0..dim {
                    grad[k] += cw * (p - t) * f[k];
                }
            }
            for k in 0..dim {
                w[k] -= lr * (grad[k] / n + l2 * w[k]);
            }
        }
        let mut model = Reranker { weights: w, threshold: 0.5, extra_threshold: never(), trained_on: trained_on.to_owned() };
        (model.threshold, model.extra_threshold) = model.best_thresholds(rows, groups);
        model
    }

    /// `groups`: (first row, row count, gold count) per mention. A mention's prediction is its
    /// best candidate when above `threshold`, plus every other candidate above `extra`; both
    /// are chosen to maximize micro F1 on the training rows.
    fn best_thresholds(&self, rows: &[(Vec<f64>, bool)], groups: &[(usize, usize, usize)]) -> (f64, f64) {
        let scored: Vec<Vec<(f64, bool)>> = groups
            .iter()
            .map(|&(s, len, _)| {
                let mut v: Vec<(f64, bool)> = rows[s..s + len].iter().map(|(f, y)| (self.prob(f), *y)).collect();
                v.sort_by(|a, b| b.0.total_cmp(&a.0));
                v
            })
            .collect();
        let gold_total: usize = groups.iter().map(|g| g.2).sum();
        let mut best = (0.0, 0.5, never());
        for step in 1..20 {
            let th = step as f64 * 0.05;
            for extra_step in (step..=20).rev() {
                let extra = if extra_step == 20 { never() } else { extra_step as f64 * 0.05 };
                let (mut predicted, mut correct) = (0usize, 0usize);
                for cands in &scored {
                    for (i, (p, y)) in cands.iter().enumerate() {
                        let accept = if i == 0 { *p >= th } else { *p >= extra };
                        if accept {
                            predicted += 1;
                            correct += usize::from(*y);
                        }
                    }
                }
                let p = correct as f64 / predicted.max(1) as f64;
                let r = correct as f64 / gold_total.max(1) as f64;
                let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
                if f1 > best.0 {
                    best = (f1, th, extra);
                }
            }
        }
        (best.1, best.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_learns_to_separate_a_clear_signal() {
        // Positives have high dice, negatives low: the trained model must rank them apart.
        let mut rows = Vec::new();
        let mut groups = Vec::new();
        for i in 0..200 {
            let start = rows.len();
            let good = 0.6 + (i % 4) as f64 * 0.1;
            rows.push((vec![1.0, 0.0, 1.0, 1.0, good, good, good, 0.1, 0.0, 0.0, good], true));
            rows.push((vec![1.0, 0.0, 0.9, 0.5, 0.2, 0.3, 0.2, 0.5, 0.0, 0.0, 0.2], false));
            groups.push((start, 2, 1));
        }
        let m = Reranker::fit(&rows, &groups, "synthetic");
        assert!(m.prob(&rows[0].0) > m.prob(&rows[1].0) + 0.3);
        assert!(m.threshold > 0.0 && m.threshold < 1.0);
    }
}
