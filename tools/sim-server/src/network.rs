//! The network: one thread owns the simulator, follows the wall clock (so
//! timers fire and certificates carry the current time), runs rounds while
//! there is work, and runs the jobs the HTTP threads send it in between.
//! It keeps the status of every ingress message and builds the certified
//! state tree from the simulator's canisters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use candid::Principal;
use ic_sim::{MessageId, Reject, Simulator, canister_id_from_index};
use serde_cbor::Value;

use crate::envelope::MAX_INGRESS_EXPIRY_NS;
use crate::hash::leb128;
use crate::keys::Keys;
use crate::tree::Node;

/// Canister ids the network hosts: every id of the IC's scheme (one subnet
/// for everything, as a local replica), so that agents accept its answers
/// about any canister, including "not found".
pub fn canister_range() -> (Principal, Principal) {
    (canister_id_from_index(0), canister_id_from_index(u64::MAX))
}

pub fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Clone, Debug)]
pub enum State {
    Processing(MessageId),
    Replied(Vec<u8>),
    Rejected(Reject),
}

pub struct Status {
    pub sender: Principal,
    pub state: State,
    /// When the status may be forgotten (after its ingress expiry, counted
    /// from completion).
    pub forget_at: u64,
}

/// What became of a submitted call.
pub enum Submitted {
    /// Refused before it entered the network (no certified status).
    Refused(Reject),
    /// In the network (or known already): wait on the receiver for completion.
    Accepted(mpsc::Receiver<()>),
}

pub struct Network {
    pub keys: Arc<Keys>,
    pub sim: Simulator,
    statuses: BTreeMap<[u8; 32], Status>,
    pending: HashMap<MessageId, [u8; 32]>,
    waiters: HashMap<[u8; 32], Vec<mpsc::Sender<()>>>,
}

impl Network {
    fn new(keys: Arc<Keys>, sim: Simulator) -> Self {
        let mut n = Network { keys, sim, statuses: BTreeMap::new(), pending: HashMap::new(), waiters: HashMap::new() };
        n.sync_clock();
        n
    }

    pub fn now(&self) -> u64 {
        self.sim.time()
    }

    /// The simulator's clock follows the wall clock (never backwards).
    fn sync_clock(&mut self) {
        self.sim.set_time(wall_clock_ns());
    }

    /// Submits an ingress call. A call with a request id already seen is not
    /// run again. `certify_refusal`: record a refusal as a certified
    /// rejection (for the asynchronous endpoint, whose callers poll for it).
    pub fn submit(
        &mut self,
        request_id: [u8; 32],
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
        certify_refusal: bool,
    ) -> Submitted {
        let (tx, rx) = mpsc::channel();
        if let Some(status) = self.statuses.get(&request_id) {
            if matches!(status.state, State::Processing(_)) {
                self.waiters.entry(request_id).or_default().push(tx);
            } else {
                let _ = tx.send(());
            }
            return Submitted::Accepted(rx);
        }
        match self.sim.submit_update(sender, canister, method, arg) {
            Ok(id) => {
                self.pending.insert(id, request_id);
                self.statuses.insert(request_id, Status { sender, state: State::Processing(id), forget_at: u64::MAX });
                self.waiters.entry(request_id).or_default().push(tx);
                Submitted::Accepted(rx)
            }
            Err(reject) if certify_refusal => {
                let forget_at = self.now() + MAX_INGRESS_EXPIRY_NS;
                self.statuses.insert(request_id, Status { sender, state: State::Rejected(reject), forget_at });
                let _ = tx.send(());
                Submitted::Accepted(rx)
            }
            Err(reject) => Submitted::Refused(reject),
        }
    }

    pub fn status(&self, request_id: &[u8; 32]) -> Option<&Status> {
        self.statuses.get(request_id)
    }

    /// Records the results of finished messages and wakes their waiters.
    fn collect(&mut self) {
        let done: Vec<(MessageId, [u8; 32])> = self
            .pending
            .iter()
            .filter(|(id, _)| self.sim.ingress_result(**id).is_some())
            .map(|(id, rid)| (*id, *rid))
            .collect();
        let forget_at = self.now() + MAX_INGRESS_EXPIRY_NS;
        for (id, rid) in done {
            self.pending.remove(&id);
            let result = self.sim.ingress_result(id).cloned().expect("finished");
            if let Some(s) = self.statuses.get_mut(&rid) {
                s.state = match result {
                    Ok(reply) => State::Replied(reply),
                    Err(reject) => State::Rejected(reject),
                };
                s.forget_at = forget_at;
            }
            for w in self.waiters.remove(&rid).unwrap_or_default() {
                let _ = w.send(());
            }
        }
        let now = self.now();
        self.statuses.retain(|_, s| s.forget_at > now);
    }

    /// The state tree: `/time`, `/request_status`, `/canister/<id>/{module_hash,
    /// controllers}` and `/subnet/<id>/{public_key, canister_ranges, type,
    /// node/<id>/public_key}`.
    pub fn state_tree(&self) -> Node {
        let mut root = Node::map();
        root.insert(&[b"time"], Node::Leaf(leb128(self.now())));
        let subnet = self.keys.subnet_id();
        let s = subnet.as_slice();
        root.insert(&[b"subnet", s, b"public_key"], Node::Leaf(self.keys.root_key_der().to_vec()));
        let (lo, hi) = canister_range();
        let ranges = Value::Array(vec![Value::Array(vec![
            Value::Bytes(lo.as_slice().to_vec()),
            Value::Bytes(hi.as_slice().to_vec()),
        ])]);
        root.insert(&[b"subnet", s, b"canister_ranges"], Node::Leaf(cbor(&ranges)));
        // A subnet where users create canisters through the management
        // canister directly (icp-cli does so on such a subnet; see api.rs).
        root.insert(&[b"subnet", s, b"type"], Node::Leaf(b"cloud_engine".to_vec()));
        let node = self.keys.node_id();
        root.insert(
            &[b"subnet", s, b"node", node.as_slice(), b"public_key"],
            Node::Leaf(self.keys.node_key_der().to_vec()),
        );
        root.insert(&[b"canister"], Node::map());
        for id in self.sim.canister_ids() {
            let controllers =
                Value::Array(self.sim.controllers(id).iter().map(|p| Value::Bytes(p.as_slice().to_vec())).collect());
            root.insert(&[b"canister", id.as_slice(), b"controllers"], Node::Leaf(cbor(&controllers)));
            if let Some(hash) = self.sim.module_hash(id) {
                root.insert(&[b"canister", id.as_slice(), b"module_hash"], Node::Leaf(hash.to_vec()));
            }
        }
        root.insert(&[b"request_status"], Node::map());
        for (rid, status) in &self.statuses {
            let path = |leaf: &'static [u8]| [b"request_status".as_slice(), rid.as_slice(), leaf];
            let text = |t: &str| Node::Leaf(t.as_bytes().to_vec());
            match &status.state {
                State::Processing(_) => root.insert(&path(b"status"), text("processing")),
                State::Replied(reply) => {
                    root.insert(&path(b"status"), text("replied"));
                    root.insert(&path(b"reply"), Node::Leaf(reply.clone()));
                }
                State::Rejected(r) => {
                    root.insert(&path(b"status"), text("rejected"));
                    root.insert(&path(b"reject_code"), Node::Leaf(leb128(r.code as u64)));
                    root.insert(&path(b"reject_message"), text(&r.message));
                    if let Some(code) = r.error_code {
                        root.insert(&path(b"error_code"), text(code));
                    }
                }
            }
        }
        root
    }

    /// A certificate (CBOR) revealing `paths` and `/time`.
    pub fn certificate(&self, paths: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut paths = paths.to_vec();
        paths.push(vec![b"time".to_vec()]);
        let tree = self.state_tree().witness(&paths);
        let signature = self.keys.sign_state_root(&tree.digest());
        cbor(&crate::hash::map([("tree", tree.to_cbor()), ("signature", Value::Bytes(signature))]))
    }
}

/// CBOR with the self-describing tag, as the IC sends it.
pub fn cbor(v: &Value) -> Vec<u8> {
    serde_cbor::to_vec(&Value::Tag(55799, Box::new(v.clone()))).expect("CBOR values encode")
}

type Job = Box<dyn FnOnce(&mut Network) + Send>;

/// The HTTP threads' door to the network thread.
#[derive(Clone)]
pub struct Handle {
    jobs: mpsc::Sender<Job>,
    pub keys: Arc<Keys>,
}

impl Handle {
    /// Starts the network thread; `make` builds the simulator there.
    pub fn start(keys: Arc<Keys>, make: impl FnOnce() -> Simulator + Send + 'static) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let k = keys.clone();
        std::thread::Builder::new()
            .name("sim-network".into())
            .spawn(move || run(Network::new(k, make()), rx))
            .expect("spawning the network thread");
        Handle { jobs, keys }
    }

    /// Runs `f` on the network thread between two rounds and returns its result.
    pub fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut Network) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move |n: &mut Network| {
                let _ = tx.send(f(n));
            }))
            .expect("the network thread is running");
        rx.recv().expect("the network thread answers")
    }
}

fn run(mut n: Network, jobs: mpsc::Receiver<Job>) {
    loop {
        loop {
            match jobs.try_recv() {
                Ok(job) => {
                    n.sync_clock();
                    job(&mut n);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        n.sync_clock();
        if n.sim.is_idle() {
            // Nothing to run: wait for a request or the next look at the timers.
            match jobs.recv_timeout(Duration::from_millis(20)) {
                Ok(job) => {
                    n.sync_clock();
                    job(&mut n);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        n.sim.tick();
        n.collect();
    }
}
