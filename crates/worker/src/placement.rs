//! Which partitions a node owns: rendezvous (highest-random-weight) hashing over
//! the live nodes. Every node computes the same answer from the same list, with no
//! coordination; when a node leaves only its partitions move, and when one joins
//! it takes about its fair share from the others and nothing else moves.

use jobstore::PARTITIONS;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The partitions `node` owns among `live` nodes (which should include it).
pub fn owned_partitions(live: &[String], node: &str) -> Vec<u32> {
    (0..PARTITIONS)
        .filter(|&partition| owner(live, partition) == Some(node))
        .collect()
}

/// The live node with the highest weight for `partition`; ties go to the smaller id.
fn owner(live: &[String], partition: u32) -> Option<&str> {
    live.iter()
        .map(|node| (weight(node, partition), node.as_str()))
        .max_by(|(weight_a, node_a), (weight_b, node_b)| {
            weight_a.cmp(weight_b).then_with(|| node_b.cmp(node_a))
        })
        .map(|(_, node)| node)
}

fn weight(node: &str, partition: u32) -> u64 {
    xxh3_64_with_seed(node.as_bytes(), u64::from(partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn owners(live: &[String]) -> Vec<String> {
        (0..PARTITIONS)
            .map(|partition| owner(live, partition).unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_partition_has_exactly_one_owner_and_shares_are_fair() {
        let live = nodes(&["node-1", "node-2", "node-3"]);
        let shares: Vec<Vec<u32>> = live
            .iter()
            .map(|node| owned_partitions(&live, node))
            .collect();
        let total: usize = shares.iter().map(Vec::len).sum();
        assert_eq!(total, PARTITIONS as usize);
        for share in &shares {
            // 256 / 3 ≈ 85; a fair hash stays well within a third either way.
            assert!((57..=114).contains(&share.len()), "{}", share.len());
        }
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_partitions() {
        let before = owners(&nodes(&["a", "b", "c", "d"]));
        let after = owners(&nodes(&["a", "b", "d"]));
        for (old, new) in before.iter().zip(&after) {
            if old != "c" {
                assert_eq!(old, new, "a partition not owned by the leaver moved");
            }
        }
    }

    #[test]
    fn a_joining_node_takes_only_its_share() {
        let before = owners(&nodes(&["a", "b", "c"]));
        let after = owners(&nodes(&["a", "b", "c", "e"]));
        let moved = before.iter().zip(&after).filter(|(old, new)| old != new);
        let mut count = 0;
        for (_, new) in moved {
            assert_eq!(new, "e", "partitions move only to the newcomer");
            count += 1;
        }
        assert!((32..=96).contains(&count), "{count} of 256 moved");
    }

    #[test]
    fn a_node_alone_owns_everything_and_a_stranger_nothing() {
        let live = nodes(&["solo"]);
        assert_eq!(owned_partitions(&live, "solo").len(), PARTITIONS as usize);
        assert!(owned_partitions(&live, "stranger").is_empty());
    }
}
