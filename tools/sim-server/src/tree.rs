//! The certified state tree: labeled values, their hash tree as the IC
//! interface spec defines it (empty, fork, labeled, leaf, pruned; domain-
//! separated SHA-256), witnesses that reveal only the requested paths (and
//! enough around an absent label to prove it absent), and the CBOR encoding.

use std::collections::BTreeMap;

use serde_cbor::Value;
use sha2::{Digest, Sha256};

/// A labeled tree of values (`/time`, `/canister/<id>/module_hash`, ...).
#[derive(Clone, Debug)]
pub enum Node {
    Leaf(Vec<u8>),
    Map(BTreeMap<Vec<u8>, Node>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashTree {
    Empty,
    Fork(Box<HashTree>, Box<HashTree>),
    Labeled(Vec<u8>, Box<HashTree>),
    Leaf(Vec<u8>),
    Pruned([u8; 32]),
}

fn domain(h: &mut Sha256, name: &str) {
    h.update([name.len() as u8]);
    h.update(name.as_bytes());
}

fn labeled_digest(label: &[u8], sub: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-labeled");
    h.update(label);
    h.update(sub);
    h.finalize().into()
}

fn fork_digest(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-fork");
    h.update(l);
    h.update(r);
    h.finalize().into()
}

impl HashTree {
    pub fn digest(&self) -> [u8; 32] {
        match self {
            HashTree::Empty => {
                let mut h = Sha256::new();
                domain(&mut h, "ic-hashtree-empty");
                h.finalize().into()
            }
            HashTree::Fork(l, r) => fork_digest(&l.digest(), &r.digest()),
            HashTree::Labeled(label, t) => labeled_digest(label, &t.digest()),
            HashTree::Leaf(v) => {
                let mut h = Sha256::new();
                domain(&mut h, "ic-hashtree-leaf");
                h.update(v);
                h.finalize().into()
            }
            HashTree::Pruned(d) => *d,
        }
    }

    /// `[0]`, `[1, l, r]`, `[2, label, t]`, `[3, value]`, `[4, hash]`.
    pub fn to_cbor(&self) -> Value {
        let tag = |n: i128| Value::Integer(n);
        match self {
            HashTree::Empty => Value::Array(vec![tag(0)]),
            HashTree::Fork(l, r) => Value::Array(vec![tag(1), l.to_cbor(), r.to_cbor()]),
            HashTree::Labeled(label, t) => Value::Array(vec![tag(2), Value::Bytes(label.clone()), t.to_cbor()]),
            HashTree::Leaf(v) => Value::Array(vec![tag(3), Value::Bytes(v.clone())]),
            HashTree::Pruned(d) => Value::Array(vec![tag(4), Value::Bytes(d.to_vec())]),
        }
    }
}

/// Balanced forks over the children in label order (any shape hashes
/// consistently; a balanced one keeps witnesses short).
fn forks(mut items: Vec<HashTree>) -> HashTree {
    match items.len() {
        0 => HashTree::Empty,
        1 => items.pop().unwrap(),
        n => {
            let right = items.split_off(n / 2);
            HashTree::Fork(Box::new(forks(items)), Box::new(forks(right)))
        }
    }
}

impl Node {
    pub fn map() -> Self {
        Node::Map(BTreeMap::new())
    }

    /// Inserts `value` at `path`, making maps on the way.
    pub fn insert(&mut self, path: &[&[u8]], value: Node) {
        let Node::Map(m) = self else { panic!("inserting under a leaf") };
        match path {
            [] => panic!("empty path"),
            [last] => {
                m.insert(last.to_vec(), value);
            }
            [first, rest @ ..] => m.entry(first.to_vec()).or_insert_with(Node::map).insert(rest, value),
        }
    }

    pub fn full(&self) -> HashTree {
        match self {
            Node::Leaf(v) => HashTree::Leaf(v.clone()),
            Node::Map(m) => forks(m.iter().map(|(l, n)| HashTree::Labeled(l.clone(), Box::new(n.full()))).collect()),
        }
    }

    pub fn digest(&self) -> [u8; 32] {
        self.full().digest()
    }

    /// The tree with everything outside `paths` pruned. Under a requested
    /// path everything is revealed; where a requested label is missing, the
    /// labels beside it stay (their subtrees pruned) so that it is provably absent.
    pub fn witness(&self, paths: &[Vec<Vec<u8>>]) -> HashTree {
        if paths.iter().any(Vec::is_empty) {
            return self.full();
        }
        let Node::Map(m) = self else { return self.full() };
        let any_absent = paths.iter().any(|p| !m.contains_key(&p[0]));
        let children = m
            .iter()
            .map(|(label, child)| {
                let sub: Vec<Vec<Vec<u8>>> = paths.iter().filter(|p| &p[0] == label).map(|p| p[1..].to_vec()).collect();
                if !sub.is_empty() {
                    HashTree::Labeled(label.clone(), Box::new(child.witness(&sub)))
                } else if any_absent {
                    HashTree::Labeled(label.clone(), Box::new(HashTree::Pruned(child.digest())))
                } else {
                    HashTree::Pruned(labeled_digest(label, &child.digest()))
                }
            })
            .collect();
        forks(children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(v: &str) -> Node {
        Node::Leaf(v.as_bytes().to_vec())
    }

    fn path(p: &[&str]) -> Vec<Vec<u8>> {
        p.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    // The example tree of the interface spec ("Example"): a → (x → "hello",
    // y → "world"), b → "good", c → (empty), d → "morning". Its root hash is
    // given there.
    #[test]
    fn the_specification_example_root_hash() {
        let tree = HashTree::Fork(
            Box::new(HashTree::Fork(
                Box::new(HashTree::Labeled(
                    b"a".to_vec(),
                    Box::new(HashTree::Fork(
                        Box::new(HashTree::Fork(
                            Box::new(HashTree::Labeled(b"x".to_vec(), Box::new(HashTree::Leaf(b"hello".to_vec())))),
                            Box::new(HashTree::Empty),
                        )),
                        Box::new(HashTree::Labeled(b"y".to_vec(), Box::new(HashTree::Leaf(b"world".to_vec())))),
                    )),
                )),
                Box::new(HashTree::Labeled(b"b".to_vec(), Box::new(HashTree::Leaf(b"good".to_vec())))),
            )),
            Box::new(HashTree::Fork(
                Box::new(HashTree::Labeled(b"c".to_vec(), Box::new(HashTree::Empty))),
                Box::new(HashTree::Labeled(b"d".to_vec(), Box::new(HashTree::Leaf(b"morning".to_vec())))),
            )),
        );
        assert_eq!(hex::encode(tree.digest()), "eb5c5b2195e62d996b84c9bcc8259d19a83786a2f59e0878cec84c811f669aa0");
    }

    #[test]
    fn witnesses_keep_the_root_hash_and_hide_the_rest() {
        let mut root = Node::map();
        root.insert(&[b"time"], leaf("t"));
        root.insert(&[b"canister", b"c1", b"module_hash"], leaf("h1"));
        root.insert(&[b"canister", b"c2", b"module_hash"], leaf("h2"));
        root.insert(&[b"request_status", b"r1", b"status"], leaf("replied"));
        let digest = root.digest();
        let w = root.witness(&[path(&["time"]), path(&["canister", "c2", "module_hash"])]);
        assert_eq!(w.digest(), digest);
        let text = format!("{w:?}");
        assert!(text.contains("104, 50") && !text.contains("104, 49"), "h2 revealed, h1 pruned: {text}");
        assert!(!text.contains("114, 101, 112, 108"), "the status stays hidden");
        // An absent request id: the labels beside it remain.
        let w = root.witness(&[path(&["request_status", "r0", "status"])]);
        assert_eq!(w.digest(), digest);
        assert!(format!("{w:?}").contains("[114, 49]"), "label r1 stays to prove r0 absent");
    }
}
