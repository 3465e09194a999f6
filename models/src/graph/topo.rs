//! Topological order of nodes (Kahn's algorithm), refusing cycles.

/// Order `n` nodes given, for each node, the indices of the nodes it depends on.
/// Returns the order, or the index of a node that lies on a cycle.
pub fn order(deps: &[Vec<usize>]) -> Result<Vec<usize>, usize> {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, ds) in deps.iter().enumerate() {
        for &d in ds {
            indegree[node] += 1;
            users[d].push(node);
        }
    }
    // Stable: among ready nodes, keep the file order so a writer's order is preserved.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(&i) = ready.iter().next() {
        ready.remove(&i);
        out.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if out.len() == n {
        Ok(out)
    } else {
        Err((0..n).find(|&i| indegree[i] > 0).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn orders_and_detects_cycles() {
        assert_eq!(order(&[vec![1], vec![], vec![0, 1]]), Ok(vec![1, 0, 2]));
        assert!(order(&[vec![1], vec![0]]).is_err());
        assert_eq!(order(&[]), Ok(vec![]));
    }
}
