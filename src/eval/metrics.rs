//! Set and ranking metrics over code lists (principal first).

use std::collections::HashSet;

#[derive(Default)]
pub struct TrackScores {
    n: usize,
    tp: usize,
    predicted: usize,
    gold: usize,
    jaccard: f64,
    ndcg3: f64,
    principal: usize,
    ccl: f64,
}

#[derive(Clone, Debug, Default)]
pub struct TrackMetrics {
    pub n: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub jaccard: f64,
    pub ndcg3: f64,
    pub principal_accuracy: f64,
    pub ccl_score: f64,
}

pub fn dedup(codes: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    codes.iter().filter(|c| seen.insert((*c).clone())).cloned().collect()
}

/// NDCG@3 with binary relevance (a predicted code is relevant when gold has it).
pub fn ndcg_at_3(pred: &[String], gold: &HashSet<String>) -> f64 {
    let dcg: f64 = pred.iter().take(3).enumerate().filter(|(_, c)| gold.contains(*c)).map(|(i, _)| 1.0 / (i as f64 + 2.0).log2()).sum();
    let ideal: f64 = (0..gold.len().min(3)).map(|i| 1.0 / (i as f64 + 2.0).log2()).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// CCL2025: 0.5 × [principal correct] + 0.5 × recall of the other gold codes among the other
/// predicted codes (1 when the record has no other codes and none are predicted).
pub fn ccl_score(pred: &[String], gold: &[String]) -> f64 {
    let principal_ok = !pred.is_empty() && !gold.is_empty() && pred[0] == gold[0];
    let gold_other: HashSet<&String> = gold.iter().skip(1).collect();
    let pred_other: HashSet<&String> = pred.iter().skip(1).collect();
    let recall = if gold_other.is_empty() {
        if pred_other.is_empty() { 1.0 } else { 0.0 }
    } else {
        gold_other.intersection(&pred_other).count() as f64 / gold_other.len() as f64
    };
    0.5 * f64::from(u8::from(principal_ok)) + 0.5 * recall
}

impl TrackScores {
    pub fn add(&mut self, pred: &[String], gold: &[String]) {
        let pred = dedup(pred);
        let gold = dedup(gold);
        let ps: HashSet<String> = pred.iter().cloned().collect();
        let gs: HashSet<String> = gold.iter().cloned().collect();
        let tp = ps.intersection(&gs).count();
        self.n += 1;
        self.tp += tp;
        self.predicted += ps.len();
        self.gold += gs.len();
        let union = ps.union(&gs).count();
        self.jaccard += if union == 0 { 1.0 } else { tp as f64 / union as f64 };
        self.ndcg3 += ndcg_at_3(&pred, &gs);
        if !pred.is_empty() && !gold.is_empty() && pred[0] == gold[0] {
            self.principal += 1;
        }
        self.ccl += ccl_score(&pred, &gold);
    }

    pub fn finish(&self) -> TrackMetrics {
        let n = self.n.max(1) as f64;
        let p = self.tp as f64 / self.predicted.max(1) as f64;
        let r = self.tp as f64 / self.gold.max(1) as f64;
        TrackMetrics {
            n: self.n,
            precision: p,
            recall: r,
            f1: if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 },
            jaccard: self.jaccard / n,
            ndcg3: self.ndcg3 / n,
            principal_accuracy: self.principal as f64 / n,
            ccl_score: self.ccl / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scores_a_known_case() {
        let mut t = TrackScores::default();
        t.add(&v(&["A", "B", "X"]), &v(&["A", "B", "C", "D"]));
        let m = t.finish();
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.recall - 0.5).abs() < 1e-9);
        assert!((m.jaccard - 2.0 / 5.0).abs() < 1e-9);
        assert_eq!(m.principal_accuracy, 1.0);
        // other gold {B,C,D}, other predicted {B,X}: recall 1/3.
        assert!((m.ccl_score - (0.5 + 0.5 / 3.0)).abs() < 1e-9);
        let ideal = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((m.ndcg3 - (1.0 + 1.0 / 3f64.log2()) / ideal).abs() < 1e-9);
    }

    #[test]
    fn wrong_principal_costs_half() {
        assert!((ccl_score(&v(&["B", "A"]), &v(&["A", "B"])) - 0.0).abs() < 1e-9);
        assert!((ccl_score(&v(&["A"]), &v(&["A"])) - 1.0).abs() < 1e-9);
    }
}
