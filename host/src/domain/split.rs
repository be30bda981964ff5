//! A/B splits: which variant of a split step a lead is put in. The choice is a pure function
//! of the lead's id and the step's name (SHA-256, not Rust's per-process seeded hasher), so it
//! is the same on every replica, every attempt and every run of `funnel simulate`, and spreads
//! leads over the variants in proportion to their weights.

use sha2::{Digest, Sha256};

/// Most variants one split may have.
pub const MAX_VARIANTS: usize = 32;
/// The longest variant name, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// The largest weight of one variant.
pub const MAX_WEIGHT: u32 = 10_000;

/// One variant and its share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub weight: u32,
}

/// What is wrong with a list of variants, if anything.
pub fn variants_problem(variants: &[Variant]) -> Option<String> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        return Some(format!("a split needs 1 to {MAX_VARIANTS} variants (got {})", variants.len()));
    }
    for (i, v) in variants.iter().enumerate() {
        let chars = v.name.chars().count();
        if v.name.trim().is_empty() || chars > MAX_NAME_CHARS || v.name.chars().any(char::is_control) {
            return Some(format!("variant {i}: a name is 1 to {MAX_NAME_CHARS} characters, no control characters"));
        }
        if v.weight > MAX_WEIGHT {
            return Some(format!("variant {:?}: weight {} is over {MAX_WEIGHT}", v.name, v.weight));
        }
        if variants[..i].iter().any(|w| w.name == v.name) {
            return Some(format!("variant {:?} is named twice", v.name));
        }
    }
    if variants.iter().all(|v| v.weight == 0) {
        return Some("the weights add up to 0: give at least one variant a positive weight".into());
    }
    None
}

/// The variant lead `lead_id` gets at split `step`: the first 8 bytes of
/// SHA-256(`lead_id` NUL `step`) as a number, modulo the weights' sum, walked over the
/// variants' cumulative weights (a weight of 0 is never chosen). `None` only for a list
/// [`variants_problem`] refuses.
pub fn choose<'a>(lead_id: &str, step: &str, variants: &'a [Variant]) -> Option<&'a Variant> {
    if variants_problem(variants).is_some() {
        return None;
    }
    let total: u64 = variants.iter().map(|v| u64::from(v.weight)).sum();
    let mut hasher = Sha256::new();
    hasher.update(lead_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(step.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // total ≤ 32 × 10,000: the modulo's bias is below 2^-45.
    let mut point = u64::from_be_bytes(first) % total;
    for v in variants {
        let w = u64::from(v.weight);
        if point < w {
            return Some(v);
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, weight: u32) -> Variant {
        Variant { name: name.into(), weight }
    }

    #[test]
    fn the_choice_is_stable_and_follows_the_weights() {
        let variants = [v("short", 50), v("long", 50)];
        let first = choose("lead-1", "split", &variants).expect("chosen");
        for _ in 0..10 {
            assert_eq!(choose("lead-1", "split", &variants), Some(first));
        }
        let only = [v("a", 0), v("b", 7)];
        for i in 0..200 {
            assert_eq!(choose(&format!("l{i}"), "s", &only).map(|v| v.name.as_str()), Some("b"));
        }
        // The step is part of the hash: a lead is not in "the first variant" of every split.
        let differs = (0..200).any(|i| {
            let lead = format!("l{i}");
            choose(&lead, "s1", &variants) != choose(&lead, "s2", &variants)
        });
        assert!(differs);
    }

    #[test]
    fn unusable_lists_are_refused() {
        assert!(variants_problem(&[]).is_some());
        assert!(variants_problem(&[v("a", 0), v("b", 0)]).is_some());
        assert!(variants_problem(&[v("a", 1), v("a", 1)]).is_some());
        assert!(variants_problem(&[v("a", 10_001)]).is_some());
        assert!(variants_problem(&[v(&"x".repeat(41), 1)]).is_some());
        assert!(variants_problem(&[v("", 1)]).is_some());
        assert!(variants_problem(&[v("a", 1)]).is_none());
        assert!(choose("l", "s", &[]).is_none());
    }
}
