//! `upload`: a file into the creator's store, resumable and verified.
//!
//! 1. The SHA-256 is computed locally; a file the creator already stores
//!    (`artefact_info`) is skipped.
//! 2. An unfinished upload of the same kind, name, size and expected SHA-256
//!    (`list_uploads`) is resumed where `upload_status` says; otherwise
//!    `start_upload` opens one with the local hash as `expected_sha256`.
//! 3. Chunks are sent in order; calls that fail transiently are sent again
//!    with back-off (a repeated chunk is accepted by the creator).
//! 4. `finish_upload` hashes the bytes on-chain; its SHA-256 must be the
//!    local one. On a mismatch the damaged upload is cancelled (exit 4).

use std::io::IsTerminal;

use candid::CandidType;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mainer_types::PageRequest;
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::{
    ArtefactInfo, ArtefactKind, CreatorError, MAX_ARTEFACT_CHUNK_BYTES, StartUploadRequest, UploadChunkRequest,
    UploadStatus,
};
use sha2::{Digest, Sha256};

use crate::cli::{KindArg, UploadArgs};
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::{fmt, note, outln};

/// Polls of `finish_upload` while another call is still hashing.
const FINISH_POLLS: u32 = 120;

pub fn kind(k: KindArg) -> ArtefactKind {
    match k {
        KindArg::ControllerWasm => ArtefactKind::ControllerWasm,
        KindArg::LlmWasm => ArtefactKind::LlmWasm,
        KindArg::Model => ArtefactKind::Model,
    }
}

#[derive(CandidType)]
struct Outcome {
    /// "uploaded", "resumed" or "already_stored".
    status: String,
    upload_id: Option<u64>,
    /// Where a resumed upload went on.
    resumed_at: Option<u64>,
    bytes_sent: u64,
    artefact: ArtefactInfo,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn run(ctx: &mut Ctx, args: &UploadArgs) -> Result<(), CliError> {
    let path = &args.file;
    let bytes = std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if bytes.is_empty() {
        return Err(CliError::Usage(format!("{} is empty", path.display())));
    }
    if args.chunk_size == 0 || args.chunk_size > MAX_ARTEFACT_CHUNK_BYTES {
        return Err(CliError::Usage(format!("--chunk-size must be 1 to {MAX_ARTEFACT_CHUNK_BYTES}")));
    }
    let kind = kind(args.kind);
    let name = match &args.name {
        Some(n) => n.trim().to_string(),
        None => path.file_name().map_or("artefact".into(), |n| n.to_string_lossy().into_owned()),
    };
    let size = bytes.len() as u64;
    let sha = sha256_hex(&bytes);
    if let Some(expected) = &args.sha256
        && !expected.trim().eq_ignore_ascii_case(&sha)
    {
        return Err(CliError::HashMismatch(format!(
            "{} has SHA-256 {sha}, not the expected {}; nothing was uploaded",
            path.display(),
            expected.trim()
        )));
    }
    note!(ctx, "{}: {:?} `{name}`, {}, SHA-256 {sha}", path.display(), kind, fmt::bytes(size));

    if let Some(info) = stored(ctx, &sha)? {
        if info.kind != kind {
            note!(ctx, "note: these bytes are stored as a {:?} named `{}`", info.kind, info.name);
        }
        return report(
            ctx,
            Outcome {
                status: "already_stored".into(),
                upload_id: None,
                resumed_at: None,
                bytes_sent: 0,
                artefact: info,
            },
        );
    }

    let (upload_id, start) = match resumable(ctx, kind, &name, size, &sha)? {
        Some(u) => {
            let status: UploadStatus = ctx.creator_call(&creator_calls::UPLOAD_STATUS, (u.upload_id,))?;
            note!(ctx, "resuming upload {} at byte {} of {}", u.upload_id, status.received, size);
            (u.upload_id, Some(status.received))
        }
        None => {
            let req =
                StartUploadRequest { kind, name: name.clone(), total_size: size, expected_sha256: Some(sha.clone()) };
            let status: UploadStatus = ctx.creator_call(&creator_calls::START_UPLOAD, (req,))?;
            note!(ctx, "started upload {}", status.upload_id);
            (status.upload_id, None)
        }
    };

    let offset = start.unwrap_or(0);
    let sent = send_chunks(ctx, upload_id, &bytes, offset, args.chunk_size)?;
    let info = finish(ctx, upload_id, &sha)?;
    if info.sha256 != sha {
        return Err(CliError::HashMismatch(format!(
            "the creator stored SHA-256 {} but the file's is {sha}",
            info.sha256
        )));
    }
    let status = if start.is_some() { "resumed" } else { "uploaded" };
    report(
        ctx,
        Outcome {
            status: status.into(),
            upload_id: Some(upload_id),
            resumed_at: start,
            bytes_sent: sent,
            artefact: info,
        },
    )
}

/// The stored artefact with this SHA-256, if any.
fn stored(ctx: &mut Ctx, sha: &str) -> Result<Option<ArtefactInfo>, CliError> {
    let creator = ctx.creator()?;
    let r: Result<ArtefactInfo, CreatorError> = ctx.call(creator, &creator_calls::ARTEFACT_INFO, (sha.to_string(),))?;
    match r {
        Ok(info) => Ok(Some(info)),
        Err(CreatorError::NotFound(_)) => Ok(None),
        Err(e) => Err(ctx.creator_error("artefact_info", e)),
    }
}

/// An unfinished upload of this very file (the furthest along).
fn resumable(
    ctx: &mut Ctx,
    kind: ArtefactKind,
    name: &str,
    size: u64,
    sha: &str,
) -> Result<Option<UploadStatus>, CliError> {
    let uploads = ctx.all_pages(|c, page: PageRequest| {
        c.creator_call::<_, mainer_types::Page<UploadStatus>>(&creator_calls::LIST_UPLOADS, (page,))
    })?;
    Ok(uploads
        .into_iter()
        .filter(|u| u.kind == kind && u.name == name && u.total_size == size)
        .filter(|u| u.expected_sha256.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(sha)))
        .max_by_key(|u| u.received))
}

fn progress_bar(ctx: &Ctx, total: u64, offset: u64) -> ProgressBar {
    if !ctx.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    let style =
        ProgressStyle::with_template("{spinner} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
            .expect("template")
            .progress_chars("=> ");
    pb.set_style(style);
    // Record the resumed offset unseen, then restart the estimate: the rate counts new bytes only.
    pb.set_position(offset);
    pb.tick();
    pb.reset_eta();
    pb.set_draw_target(ProgressDrawTarget::stderr());
    pb
}

/// Sends the file from `offset` on; returns the bytes sent.
fn send_chunks(ctx: &mut Ctx, upload_id: u64, bytes: &[u8], mut offset: u64, chunk: u64) -> Result<u64, CliError> {
    let total = bytes.len() as u64;
    let creator = ctx.creator()?;
    let pb = progress_bar(ctx, total, offset);
    let mut sent = 0;
    while offset < total {
        let end = (offset + chunk).min(total);
        let req = UploadChunkRequest { upload_id, offset, bytes: bytes[offset as usize..end as usize].to_vec() };
        let r: Result<UploadStatus, CreatorError> = match ctx.call(creator, &creator_calls::UPLOAD_CHUNK, (req,)) {
            Ok(r) => r,
            Err(e) => {
                pb.abandon();
                return Err(e.context(format!(
                    "upload {upload_id} stopped at byte {offset} of {total}; run the same command again to resume"
                )));
            }
        };
        match r {
            Ok(status) => {
                sent += end - offset;
                offset = status.received;
            }
            // The creator has less (or more) than we thought: go on from where it is.
            Err(CreatorError::UploadGap { received, .. }) => offset = received,
            Err(CreatorError::UploadOverlap { received, offset: at }) => {
                pb.abandon();
                cancel(ctx, upload_id);
                return Err(CliError::HashMismatch(format!(
                    "the creator's bytes of upload {upload_id} differ from the file at {at} (received {received}): \
                     the file changed; the upload was cancelled, run the command again"
                )));
            }
            Err(e) => {
                pb.abandon();
                return Err(ctx.creator_error("upload_chunk", e));
            }
        }
        pb.set_position(offset);
    }
    pb.finish_and_clear();
    Ok(sent)
}

fn cancel(ctx: &mut Ctx, upload_id: u64) {
    match ctx.creator_call(&creator_calls::CANCEL_UPLOAD, (upload_id,)) {
        Ok(()) => note!(ctx, "cancelled upload {upload_id}"),
        Err(e) => note!(ctx, "could not cancel upload {upload_id}: {e}"),
    }
}

/// `finish_upload`, waiting out a finish already under way.
fn finish(ctx: &mut Ctx, upload_id: u64, sha: &str) -> Result<ArtefactInfo, CliError> {
    let creator = ctx.creator()?;
    note!(ctx, "finishing upload {upload_id}: the creator hashes the bytes");
    for _ in 0..FINISH_POLLS {
        let r: Result<ArtefactInfo, CreatorError> = ctx.call(creator, &creator_calls::FINISH_UPLOAD, (upload_id,))?;
        match r {
            Ok(info) => return Ok(info),
            Err(CreatorError::HashMismatch { expected, actual }) => {
                cancel(ctx, upload_id);
                return Err(CliError::HashMismatch(format!(
                    "the creator computed SHA-256 {actual} for upload {upload_id}, but the file's is {expected}: \
                     bytes were damaged on the way; the upload was cancelled, run the command again"
                )));
            }
            Err(CreatorError::InvalidInput(m)) if m.contains("already running") || m.contains("interrupted") => {
                ctx.client.sleep(ctx.poll);
            }
            // An earlier call finished it and its answer was lost.
            Err(CreatorError::NotFound(m)) => {
                return stored(ctx, sha)?.ok_or_else(|| CliError::Canister(format!("finish_upload: not found: {m}")));
            }
            Err(e) => return Err(ctx.creator_error("finish_upload", e)),
        }
    }
    Err(CliError::Transport(format!(
        "finish_upload of upload {upload_id} is still running; run the command again later"
    )))
}

fn report(ctx: &mut Ctx, o: Outcome) -> Result<(), CliError> {
    if ctx.json {
        ctx.print_json(&o);
        return Ok(());
    }
    let a = &o.artefact;
    match o.status.as_str() {
        "already_stored" => {
            outln!(ctx, "already stored: {:?} `{}` ({}), SHA-256 {}", a.kind, a.name, fmt::bytes(a.size), a.sha256)
        }
        _ => outln!(
            ctx,
            "{} {:?} `{}` ({}): SHA-256 {} verified on-chain",
            o.status,
            a.kind,
            a.name,
            fmt::bytes(a.size),
            a.sha256
        ),
    }
    Ok(())
}
