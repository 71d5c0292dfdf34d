//! Segments that refer to segments: refusing a cycle, and deciding in an order where each
//! segment comes after those it refers to.

use std::collections::{BTreeMap, BTreeSet};

use herald_domain::SegmentId;

/// The references of every segment of a workspace.
pub type References = BTreeMap<SegmentId, BTreeSet<SegmentId>>;

/// A cycle `segment`'s references would close, as the path `segment → … → segment`, given
/// the references of the other segments (`segment`'s own entry in `others` is ignored).
pub fn cycle(segment: SegmentId, refers_to: &BTreeSet<SegmentId>, others: &References) -> Option<Vec<SegmentId>> {
    // Depth-first from each reference, looking for a way back to `segment`.
    fn search(
        at: SegmentId,
        target: SegmentId,
        others: &References,
        path: &mut Vec<SegmentId>,
        seen: &mut BTreeSet<SegmentId>,
    ) -> bool {
        if at == target {
            return true;
        }
        if !seen.insert(at) {
            return false;
        }
        path.push(at);
        for next in others.get(&at).into_iter().flatten() {
            if search(*next, target, others, path, seen) {
                return true;
            }
        }
        path.pop();
        false
    }
    let mut seen = BTreeSet::new();
    for first in refers_to {
        let mut path = vec![segment];
        if search(*first, segment, others, &mut path, &mut seen) {
            path.push(segment);
            return Some(path);
        }
    }
    None
}

/// The segments in an order where each comes after the segments it refers to (references
/// to unknown segments are ignored; a cycle, which saving refuses, is broken arbitrarily).
pub fn decision_order(references: &References) -> Vec<SegmentId> {
    fn visit(id: SegmentId, references: &References, done: &mut BTreeSet<SegmentId>, order: &mut Vec<SegmentId>) {
        if !done.insert(id) {
            return;
        }
        for next in references.get(&id).into_iter().flatten().filter(|n| references.contains_key(n)) {
            visit(*next, references, done, order);
        }
        order.push(id);
    }
    let mut done = BTreeSet::new();
    let mut order = Vec::with_capacity(references.len());
    for id in references.keys() {
        visit(*id, references, &mut done, &mut order);
    }
    order
}

/// A cycle written out for an error message: `seg_a → seg_b → seg_a`.
pub fn describe(cycle: &[SegmentId]) -> String {
    cycle.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ")
}
