//! The CLI against the embedded simulator: a [`CanisterClient`] over
//! `TestEnv`, a wrapper that injects faults, and a runner that captures output.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::time::Duration;

use candid::{Decode, Encode, Principal};
use integration_tests::deploy::{admin, run_for};
use integration_tests::factory::Factory;
use integration_tests::{Reject, TestEnv};
use mainer_cli::client::{CanisterClient, ClientError};
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::UploadChunkRequest;

/// Calls signed by `sender`; waiting moves the simulated clock.
pub struct SimClient<'a> {
    pub env: &'a dyn TestEnv,
    pub sender: Principal,
}

impl<'a> SimClient<'a> {
    pub fn admin(env: &'a dyn TestEnv) -> Self {
        SimClient { env, sender: admin() }
    }
}

fn reject(r: Reject) -> ClientError {
    ClientError::Reject { code: r.code as u32, message: r.message, error_code: r.error_code.map(str::to_string) }
}

impl CanisterClient for SimClient<'_> {
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.env.update(self.sender, canister, method, arg).map_err(reject)
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.env.query(self.sender, canister, method, arg).map_err(reject)
    }

    fn canister_cycles(&self, canister: Principal) -> Result<u128, ClientError> {
        let status = self.env.status(self.sender, canister).map_err(reject)?;
        Ok(u128::try_from(&status.cycles.0).unwrap_or(u128::MAX))
    }

    fn principal(&self) -> Principal {
        self.sender
    }

    fn now_ns(&self) -> u64 {
        self.env.time_ns()
    }

    fn sleep(&self, d: Duration) {
        run_for(self.env, d.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// Wraps a client to count upload bytes and inject faults into uploads.
pub struct Faulty<'a> {
    pub inner: SimClient<'a>,
    /// After this many accepted chunks every call fails as unreachable (a crash).
    pub crash_after_chunks: Option<u32>,
    /// This chunk (1-based) runs but its answer is lost.
    pub lose_answer_of_chunk: Option<u32>,
    /// The first finish_upload runs but its answer is lost.
    pub lose_finish_answer: bool,
    /// This chunk (1-based) has a byte flipped on the way.
    pub corrupt_chunk: Option<u32>,
    pub chunks: Cell<u32>,
    pub bytes_sent: Cell<u64>,
    pub calls: RefCell<Vec<String>>,
}

impl<'a> Faulty<'a> {
    pub fn new(inner: SimClient<'a>) -> Self {
        Faulty {
            inner,
            crash_after_chunks: None,
            lose_answer_of_chunk: None,
            lose_finish_answer: false,
            corrupt_chunk: None,
            chunks: Cell::new(0),
            bytes_sent: Cell::new(0),
            calls: RefCell::new(Vec::new()),
        }
    }

    pub fn count(&self, method: &str) -> usize {
        self.calls.borrow().iter().filter(|m| *m == method).count()
    }
}

impl CanisterClient for Faulty<'_> {
    fn update(&self, canister: Principal, method: &str, mut arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        if self.crash_after_chunks.is_some_and(|n| self.chunks.get() >= n) {
            return Err(ClientError::Unreachable("connection refused (injected crash)".into()));
        }
        self.calls.borrow_mut().push(method.to_string());
        if method == creator_calls::UPLOAD_CHUNK.name {
            let n = self.chunks.get() + 1;
            let mut req = Decode!(&arg, UploadChunkRequest).unwrap();
            self.bytes_sent.set(self.bytes_sent.get() + req.bytes.len() as u64);
            if self.corrupt_chunk == Some(n) {
                req.bytes[0] ^= 0xff;
                arg = Encode!(&req).unwrap();
            }
            let reply = self.inner.update(canister, method, arg)?;
            self.chunks.set(n);
            if self.lose_answer_of_chunk == Some(n) {
                return Err(ClientError::NoAnswer("injected: the answer was lost".into()));
            }
            return Ok(reply);
        }
        let reply = self.inner.update(canister, method, arg)?;
        if method == creator_calls::FINISH_UPLOAD.name && self.lose_finish_answer && self.count(method) == 1 {
            return Err(ClientError::NoAnswer("injected: the answer was lost".into()));
        }
        Ok(reply)
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        if self.crash_after_chunks.is_some_and(|n| self.chunks.get() >= n) {
            return Err(ClientError::Unreachable("connection refused (injected crash)".into()));
        }
        self.calls.borrow_mut().push(method.to_string());
        self.inner.query(canister, method, arg)
    }

    fn canister_cycles(&self, canister: Principal) -> Result<u128, ClientError> {
        self.inner.canister_cycles(canister)
    }

    fn principal(&self) -> Principal {
        self.inner.principal()
    }

    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }

    fn sleep(&self, d: Duration) {
        self.inner.sleep(d)
    }
}

/// What one run of the CLI printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// Runs `mainer` with the factory's canister ids and `args`. `MAINER_CLI_SHOW=1`
/// echoes the command and its output (for the README's examples).
pub fn mainer(client: &dyn CanisterClient, f: &Factory, args: &[&str]) -> Run {
    let (creator, game) = (f.creator.to_text(), f.game.to_text());
    let mut full: Vec<&str> = vec!["mainer", "--project", "/nonexistent", "--creator", &creator, "--game-state", &game];
    full.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = mainer_cli::run(full, client, &mut out, &mut err);
    let run = Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() };
    if std::env::var_os("MAINER_CLI_SHOW").is_some() {
        println!("$ mainer {}\n{}{}[exit {}]\n", args.join(" "), run.err, run.out, run.code);
    }
    run
}

/// A temporary file, removed with its directory when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes `bytes` to a fresh temporary file named `name`.
pub fn temp_file(name: &str, bytes: &[u8]) -> TempFile {
    let dir = std::env::temp_dir().join(format!("mainer-cli-{}-{}", std::process::id(), name.replace('.', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    TempFile(path)
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
