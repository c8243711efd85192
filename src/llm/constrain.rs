//! Constrained decoding over a fixed list of answers: at each step only tokens that continue
//! some allowed answer (as the tokenizer splits it) may be chosen, and the end token only once
//! an answer is complete. Greedy decoding then always yields one of the answers.

/// The allowed answers as token sequences, and how far decoding has come.
pub struct ChoiceConstraint {
    options: Vec<Vec<u32>>,
    generated: Vec<u32>,
}

/// What the decoder may do next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Pick the best of these tokens; `end_allowed` when the text so far is a whole answer.
    Tokens { allowed: Vec<u32>, end_allowed: bool },
    /// The text so far is a whole answer and no other answer extends it.
    Done,
}

impl ChoiceConstraint {
    pub fn new(options: Vec<Vec<u32>>) -> ChoiceConstraint {
        ChoiceConstraint { options: options.into_iter().filter(|o| !o.is_empty()).collect(), generated: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    fn live(&self) -> impl Iterator<Item = &Vec<u32>> {
        let g = &self.generated;
        self.options.iter().filter(move |o| o.len() >= g.len() && o[..g.len()] == g[..])
    }

    pub fn next(&self) -> Next {
        let t = self.generated.len();
        let mut allowed: Vec<u32> = Vec::new();
        let mut end_allowed = false;
        for o in self.live() {
            if o.len() == t {
                end_allowed = true;
            } else if !allowed.contains(&o[t]) {
                allowed.push(o[t]);
            }
        }
        if allowed.is_empty() {
            Next::Done
        } else {
            Next::Tokens { allowed, end_allowed }
        }
    }

    pub fn push(&mut self, token: u32) {
        self.generated.push(token);
    }

    /// The best allowed token by `logits` (greedy), or `None` to end.
    pub fn pick(&self, logits: &[f32], end_tokens: &[u32]) -> Option<u32> {
        match self.next() {
            Next::Done => None,
            Next::Tokens { allowed, end_allowed } => {
                let score = |t: u32| logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY);
                let best = allowed.iter().copied().max_by(|a, b| score(*a).total_cmp(&score(*b)))?;
                let end_score = end_tokens.iter().map(|t| score(*t)).fold(f32::NEG_INFINITY, f32::max);
                if end_allowed && end_score > score(best) {
                    None
                } else {
                    Some(best)
                }
            }
        }
    }
}

/// Greedy choice without constraint.
pub fn argmax(logits: &[f32]) -> u32 {
    logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_follows_the_options_and_ends_on_a_whole_one() {
        // Options: [1,2,3], [1,2], [4].
        let mut c = ChoiceConstraint::new(vec![vec![1, 2, 3], vec![1, 2], vec![4]]);
        let mut logits = vec![0.0f32; 8];
        logits[7] = 9.0; // an outside token the model likes best is never picked
        logits[4] = 1.0;
        logits[1] = 2.0;
        assert_eq!(c.pick(&logits, &[0]), Some(1));
        c.push(1);
        assert_eq!(c.next(), Next::Tokens { allowed: vec![2], end_allowed: false });
        c.push(2);
        // [1,2] is whole; the end token (0) scores below 3, so decoding goes on.
        logits[3] = 1.0;
        assert_eq!(c.pick(&logits, &[0]), Some(3));
        // With the end token scoring best, decoding stops at [1,2].
        logits[0] = 5.0;
        assert_eq!(c.pick(&logits, &[0]), None);
        c.push(3);
        assert_eq!(c.next(), Next::Done);
    }
}
