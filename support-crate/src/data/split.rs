//! Seeded, stratified splits and samples.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Example;

/// Positions of the examples of each class, each list shuffled with `seed`.
fn shuffled_by_class(examples: &[Example], num_classes: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); num_classes];
    for (i, e) in examples.iter().enumerate() {
        by_class[e.label].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for class in &mut by_class {
        class.shuffle(&mut rng);
    }
    by_class
}

/// How many of `n` items each class gets, proportional to `counts`
/// (largest-remainder rounding, so the total is exactly `n`).
fn allocate(counts: &[usize], n: usize) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let n = n.min(total);
    let exact: Vec<f64> = counts.iter().map(|&c| c as f64 * n as f64 / total as f64).collect();
    let mut take: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut missing = n - take.iter().sum::<usize>();
    for &c in order.iter().cycle() {
        if missing == 0 {
            break;
        }
        if take[c] < counts[c] {
            take[c] += 1;
            missing -= 1;
        }
    }
    take
}

/// Split `examples` into (kept, held out) with `fraction` of every class held out.
/// Both halves keep the original order of `examples`.
pub fn stratified_split(
    examples: Vec<Example>,
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    let by_class = shuffled_by_class(&examples, num_classes, seed);
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let n_held = (examples.len() as f64 * fraction).round() as usize;
    let mut held = vec![false; examples.len()];
    for (class, take) in by_class.iter().zip(allocate(&counts, n_held)) {
        for &i in &class[..take] {
            held[i] = true;
        }
    }
    let (mut kept, mut out) = (Vec::new(), Vec::new());
    for (e, h) in examples.into_iter().zip(held) {
        if h {
            out.push(e)
        } else {
            kept.push(e)
        }
    }
    (kept, out)
}

/// A seeded sample of `n` examples with the class proportions of `examples`,
/// in their original order.
pub fn stratified_sample(examples: Vec<Example>, num_classes: usize, n: usize, seed: u64) -> Vec<Example> {
    if n >= examples.len() {
        return examples;
    }
    let fraction = n as f64 / examples.len() as f64;
    stratified_split(examples, num_classes, fraction, seed).1
}

/// A seeded sample of `n` of `examples` that are not in `labelled` (by
/// index), in their original order: the unlabelled texts a team with
/// `labelled` also holds. Its labels are for scoring only.
///
/// One seed orders all examples once and the pool is the first `n` of them
/// not labelled, so the pools of one seed's budgets share all but the few
/// items a larger budget labels: a teacher whose answers do not depend on
/// the budget (the zero-shot LLM) answers each text once, from its cache.
pub fn unlabelled_pool(examples: &[Example], labelled: &[Example], n: usize, seed: u64) -> Vec<Example> {
    let taken: std::collections::HashSet<usize> = labelled.iter().map(|e| e.index).collect();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    // Another stream than the budgets' draw with the same seed.
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x706f_6f6c));
    let mut pool: Vec<usize> = order.into_iter().filter(|&i| !taken.contains(&examples[i].index)).take(n).collect();
    pool.sort_unstable();
    pool.into_iter().map(|i| examples[i].clone()).collect()
}

/// The first `per_class` examples of every class in the order `seed`
/// shuffles them (all of a smaller class), in their original order. Budgets
/// with one seed are nested: a larger budget holds every example of a smaller one.
pub fn per_class_subset(examples: &[Example], num_classes: usize, per_class: usize, seed: u64) -> Vec<Example> {
    let by_class = shuffled_by_class(examples, num_classes, seed);
    let mut kept = vec![false; examples.len()];
    for class in &by_class {
        for &i in class.iter().take(per_class) {
            kept[i] = true;
        }
    }
    examples.iter().zip(kept).filter(|(_, k)| *k).map(|(e, _)| e.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unlabelled_pool_avoids_the_labelled_items_and_is_seeded() {
        let all = examples(&[50, 50]);
        let labelled = per_class_subset(&all, 2, 5, 42);
        let pool = unlabelled_pool(&all, &labelled, 30, 42);
        assert_eq!(pool.len(), 30);
        assert!(pool.iter().all(|p| !labelled.iter().any(|l| l.index == p.index)));
        assert!(pool.windows(2).all(|w| w[0].index < w[1].index), "in file order");
        assert_eq!(pool, unlabelled_pool(&all, &labelled, 30, 42));
        assert_ne!(pool, unlabelled_pool(&all, &labelled, 30, 43));
        assert_eq!(unlabelled_pool(&all, &labelled, 500, 42).len(), 90, "all there are");
    }

    #[test]
    fn one_seeds_pools_differ_only_by_what_a_larger_budget_labels() {
        let all = examples(&[200, 200]);
        let (small, large) = (per_class_subset(&all, 2, 4, 7), per_class_subset(&all, 2, 16, 7));
        let indices = |pool: Vec<Example>| pool.into_iter().map(|e| e.index).collect::<std::collections::HashSet<_>>();
        let (a, b) = (indices(unlabelled_pool(&all, &small, 100, 7)), indices(unlabelled_pool(&all, &large, 100, 7)));
        // The large pool loses at most the 24 items the larger budget adds, replaced by the next in the order.
        assert!(a.intersection(&b).count() >= 100 - 24, "shared: {}", a.intersection(&b).count());
    }

    fn examples(per_class: &[usize]) -> Vec<Example> {
        let mut out = Vec::new();
        for (label, &n) in per_class.iter().enumerate() {
            for _ in 0..n {
                let index = out.len();
                out.push(Example::new(index, label, String::new(), format!("text {index}")));
            }
        }
        out
    }

    fn class_counts(examples: &[Example], k: usize) -> Vec<usize> {
        let mut c = vec![0; k];
        for e in examples {
            c[e.label] += 1;
        }
        c
    }

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let (kept, held) = stratified_split(examples(&[100, 100, 40, 60]), 4, 0.1, 7);
        assert_eq!(class_counts(&held, 4), vec![10, 10, 4, 6]);
        assert_eq!(kept.len() + held.len(), 300);
        let mut all: Vec<usize> = kept.iter().chain(&held).map(|e| e.index).collect();
        all.sort();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
        assert!(kept.windows(2).all(|w| w[0].index < w[1].index), "order kept");
    }

    #[test]
    fn split_is_seeded() {
        let ids = |seed| {
            let (_, held) = stratified_split(examples(&[50, 50]), 2, 0.2, seed);
            held.iter().map(|e| e.index).collect::<Vec<_>>()
        };
        assert_eq!(ids(1), ids(1));
        assert_ne!(ids(1), ids(2));
    }

    #[test]
    fn sample_has_exact_size_and_proportions() {
        let s = stratified_sample(examples(&[500, 300, 200]), 3, 101, 3);
        assert_eq!(s.len(), 101);
        assert_eq!(class_counts(&s, 3), vec![51, 30, 20]);
        assert_eq!(stratified_sample(examples(&[3, 3]), 2, 100, 3).len(), 6);
    }

    #[test]
    fn allocation_rounds_to_the_total() {
        assert_eq!(allocate(&[1, 1, 1], 2).iter().sum::<usize>(), 2);
        assert_eq!(allocate(&[0, 5], 3), vec![0, 3]);
        assert_eq!(allocate(&[], 3), Vec::<usize>::new());
    }

    #[test]
    fn per_class_subsets_are_balanced_nested_and_seeded() {
        let all = examples(&[50, 50, 3, 50]);
        let small = per_class_subset(&all, 4, 8, 1);
        let large = per_class_subset(&all, 4, 32, 1);
        assert_eq!(class_counts(&small, 4), vec![8, 8, 3, 8]);
        assert_eq!(class_counts(&large, 4), vec![32, 32, 3, 32]);
        let in_large: std::collections::HashSet<usize> = large.iter().map(|e| e.index).collect();
        assert!(small.iter().all(|e| in_large.contains(&e.index)), "nested");
        assert_eq!(per_class_subset(&all, 4, 8, 1), small, "seeded");
        assert_ne!(per_class_subset(&all, 4, 8, 2), small, "another seed, another subset");
        assert!(small.windows(2).all(|w| w[0].index < w[1].index), "order kept");
    }
}
