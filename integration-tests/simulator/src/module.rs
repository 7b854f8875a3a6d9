//! Canister wasm: decompression, validation against the system API, and the
//! rewrite that lets the simulator reach what the IC's own instrumentation
//! reaches: the function table, the mutable globals, the memory (exported under
//! an internal name, since other toolchains need not export it) and the start
//! function (taken out of the start section, so that the simulator calls it
//! itself once the memory and the canister's stable memory are in place).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, ExternType, Module};

use crate::system_api;

/// Name under which the rewritten module exports its function table.
pub(crate) const TABLE_EXPORT: &str = "__ic_sim_table";
/// Prefix of the names under which the rewritten module exports mutable globals.
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "__ic_sim_global_";
/// Name under which the rewritten module exports memory 0.
pub(crate) const MEMORY_EXPORT: &str = "__ic_sim_memory";
/// Name under which the rewritten module exports the function of its start
/// section (which the rewrite removes).
pub(crate) const START_EXPORT: &str = "__ic_sim_start";
/// The custom section by which a module declares enhanced orthogonal
/// persistence (the IC reads it as private or public metadata).
const EOP_SECTION: &str = "enhanced-orthogonal-persistence";

/// Largest wasm module the IC accepts once decompressed.
pub const MAX_WASM_MODULE_BYTES: usize = 100 * 1024 * 1024;

/// A module ready to be instantiated, with what the simulator learned about it.
pub(crate) struct CompiledModule {
    pub module: Module,
    pub wasm64: bool,
    /// Export names of the mutable globals (after the rewrite), in index order.
    pub mutable_globals: Vec<String>,
    pub has_table: bool,
    /// Whether the module has a start function (exported as [`START_EXPORT`]).
    pub has_start: bool,
    /// Whether the module declares enhanced orthogonal persistence.
    pub eop: bool,
    /// Active data segments of memory 0 with constant offsets, kept only for
    /// EOP modules: an upgrade that keeps the heap writes them over it, as the
    /// IC does.
    pub data_segments: Vec<(u64, Vec<u8>)>,
    /// Size of the module as installed (compressed if it was), which the cost
    /// model counts as memory.
    pub installed_size: usize,
}

/// Compiles modules once per wasm hash, in memory and on disk.
pub(crate) struct ModuleCache {
    /// The wasm32 and the wasm64 engine (their fuel tables differ).
    engines: [Engine; 2],
    compiled: HashMap<[u8; 32], Arc<CompiledModule>>,
    disk_dir: Option<PathBuf>,
}

impl ModuleCache {
    pub fn new(engines: [Engine; 2], disk_dir: Option<PathBuf>) -> Self {
        if let Some(dir) = &disk_dir {
            let _ = std::fs::create_dir_all(dir);
        }
        ModuleCache { engines, compiled: HashMap::new(), disk_dir }
    }

    /// Validates and compiles `wasm` (possibly gzipped). Errors are the
    /// messages the IC would give for an invalid module.
    pub fn get(&mut self, wasm: &[u8]) -> Result<Arc<CompiledModule>, String> {
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(m) = self.compiled.get(&hash) {
            return Ok(m.clone());
        }
        let raw = decompress(wasm)?;
        let rewrite = rewrite_exports(&raw)?;
        let wasm64 = declares_memory64(&rewrite.wasm);
        let module = self.compile(&hash, &rewrite.wasm, wasm64)?;
        let mut described = describe(module, rewrite, wasm.len())?;
        // The memory's type, exported or not, picked the engine.
        described.wasm64 = wasm64;
        let compiled = Arc::new(described);
        self.compiled.insert(hash, compiled.clone());
        Ok(compiled)
    }

    fn compile(&self, hash: &[u8; 32], wasm: &[u8], wasm64: bool) -> Result<Module, String> {
        let engine = &self.engines[wasm64 as usize];
        let cached_file = self
            .disk_dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}.cwasm", hex::encode(hash), env!("CARGO_PKG_VERSION"))));
        if let Some(path) = &cached_file
            && path.exists()
        {
            // SAFETY: the file was written by `Module::serialize` of this
            // same engine configuration; wasmtime checks its version and
            // configuration header and refuses anything else.
            if let Ok(m) = unsafe { Module::deserialize_file(engine, path) } {
                return Ok(m);
            }
        }
        let module = Module::new(engine, wasm).map_err(|e| format!("Wasm module of canister is invalid: {e:#}"))?;
        if let (Some(path), Ok(bytes)) = (&cached_file, module.serialize()) {
            // Write then rename so a concurrent test process never reads half a file.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        Ok(module)
    }
}

/// Whether the module's first memory (defined or imported) is 64-bit, which
/// decides the engine and so the cost of loads and stores.
fn declares_memory64(wasm: &[u8]) -> bool {
    use wasmparser::{Parser, Payload, TypeRef};
    for payload in Parser::new(0).parse_all(wasm).flatten() {
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    if let TypeRef::Memory(m) = import.ty {
                        return m.memory64;
                    }
                }
            }
            Payload::MemorySection(reader) => return reader.into_iter().flatten().next().is_some_and(|m| m.memory64),
            _ => {}
        }
    }
    false
}

/// Installed modules may be gzipped, as on the IC.
pub(crate) fn decompress(wasm: &[u8]) -> Result<Vec<u8>, String> {
    if wasm.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(wasm)
            .take(MAX_WASM_MODULE_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("Failed to decompress the gzipped wasm module: {e}"))?;
        if out.len() > MAX_WASM_MODULE_BYTES {
            return Err(format!(
                "Wasm module is too large: the decompressed module exceeds {MAX_WASM_MODULE_BYTES} bytes"
            ));
        }
        Ok(out)
    } else if wasm.starts_with(b"\0asm") {
        Ok(wasm.to_vec())
    } else {
        Err("Wasm module is invalid: it starts with neither the wasm magic bytes nor gzip's".into())
    }
}

struct Rewrite {
    wasm: Vec<u8>,
    mutable_globals: Vec<String>,
    has_table: bool,
    has_start: bool,
    wasm64: bool,
    eop: bool,
    data_segments: Vec<(u64, Vec<u8>)>,
}

/// Copies every section unchanged except two: the export section, to which
/// table 0, memory 0, the start function and every mutable global are added,
/// and the start section, which is dropped.
fn rewrite_exports(wasm: &[u8]) -> Result<Rewrite, String> {
    use wasmparser::{Parser, Payload, TypeRef};
    let invalid = |e: wasmparser::BinaryReaderError| format!("Wasm module is invalid: {e}");

    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut exports: Vec<(String, wasmparser::ExternalKind, u32)> = Vec::new();
    let mut mutable_global_indices = Vec::new();
    let mut global_count = 0u32;
    let mut table_count = 0u32;
    let mut memory64 = None;
    let mut start = None;
    let mut eop = false;
    let mut data_segments = Vec::new();
    let mut export_section_at = None;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    match import.map_err(invalid)?.ty {
                        TypeRef::Global(g) => {
                            if g.mutable {
                                mutable_global_indices.push(global_count);
                            }
                            global_count += 1;
                        }
                        TypeRef::Table(_) => table_count += 1,
                        _ => {}
                    }
                }
            }
            Payload::TableSection(reader) => table_count += reader.count(),
            Payload::MemorySection(reader) => {
                if let Some(first) = reader.clone().into_iter().next() {
                    memory64.get_or_insert(first.map_err(invalid)?.memory64);
                }
            }
            Payload::StartSection { func, .. } => start = Some(*func),
            Payload::CustomSection(reader) => {
                let name = reader.name();
                let declared = name.strip_prefix("icp:private ").or_else(|| name.strip_prefix("icp:public "));
                eop |= declared == Some(EOP_SECTION);
            }
            Payload::DataSection(reader) => {
                for data in reader.clone() {
                    let data = data.map_err(invalid)?;
                    if let wasmparser::DataKind::Active { memory_index: 0, offset_expr } = data.kind {
                        match offset_expr.get_operators_reader().read().map_err(invalid)? {
                            wasmparser::Operator::I32Const { value } => {
                                data_segments.push((value as u32 as u64, data.data.to_vec()))
                            }
                            wasmparser::Operator::I64Const { value } => {
                                data_segments.push((value as u64, data.data.to_vec()))
                            }
                            _ => {}
                        }
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader.clone() {
                    if global.map_err(invalid)?.ty.mutable {
                        mutable_global_indices.push(global_count);
                    }
                    global_count += 1;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let e = export.map_err(invalid)?;
                    exports.push((e.name.to_string(), e.kind, e.index));
                }
                export_section_at = Some(sections.len());
            }
            Payload::Version { encoding: wasmparser::Encoding::Component, .. } => {
                return Err("Wasm module is invalid: components are not canister modules".into());
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }

    let mut export_section = wasm_encoder::ExportSection::new();
    for (name, kind, index) in &exports {
        export_section.export(name, encoder_kind(*kind), *index);
    }
    let has_table = table_count > 0;
    if has_table {
        export_section.export(TABLE_EXPORT, wasm_encoder::ExportKind::Table, 0);
    }
    if memory64.is_some() {
        export_section.export(MEMORY_EXPORT, wasm_encoder::ExportKind::Memory, 0);
    }
    if let Some(func) = start {
        export_section.export(START_EXPORT, wasm_encoder::ExportKind::Func, func);
    }
    let mut mutable_globals = Vec::new();
    for index in mutable_global_indices {
        let name = format!("{GLOBAL_EXPORT_PREFIX}{index}");
        export_section.export(&name, wasm_encoder::ExportKind::Global, index);
        mutable_globals.push(name);
    }

    // Sections must stay in their canonical order: the export section goes
    // where it was, or (if the module had none) before the first section that
    // must follow it (start 8, element 9, data count 12, code 10, data 11).
    let follows_exports = |id: u8| matches!(id, 8..=12);
    let insert_at = export_section_at
        .unwrap_or_else(|| sections.iter().position(|(id, _)| follows_exports(*id)).unwrap_or(sections.len()));
    let mut module = wasm_encoder::Module::new();
    for (i, (id, range)) in sections.iter().enumerate() {
        if i == insert_at {
            module.section(&export_section);
        }
        // The start section (8) goes: the simulator calls the start function.
        if export_section_at == Some(i) || *id == 8 {
            continue;
        }
        module.section(&wasm_encoder::RawSection { id: *id, data: &wasm[range.clone()] });
    }
    if insert_at == sections.len() {
        module.section(&export_section);
    }
    if !eop {
        data_segments.clear();
    }
    Ok(Rewrite {
        wasm: module.finish(),
        mutable_globals,
        has_table,
        has_start: start.is_some(),
        wasm64: memory64.unwrap_or(false),
        eop,
        data_segments,
    })
}

fn encoder_kind(kind: wasmparser::ExternalKind) -> wasm_encoder::ExportKind {
    use wasm_encoder::ExportKind as E;
    use wasmparser::ExternalKind as K;
    match kind {
        K::Func | K::FuncExact => E::Func,
        K::Table => E::Table,
        K::Memory => E::Memory,
        K::Global => E::Global,
        K::Tag => E::Tag,
    }
}

/// Checks the imports against the system API and records the module's shape.
fn describe(module: Module, rewrite: Rewrite, installed_size: usize) -> Result<CompiledModule, String> {
    for import in module.imports() {
        let (module_name, name) = (import.module(), import.name());
        let known = module_name == "ic0" && system_api::is_known(name);
        if !known || !matches!(import.ty(), ExternType::Func(_)) {
            return Err(format!(
                "Wasm module has an invalid import section. Module imports function '{name}' from '{module_name}' that is not exported by the runtime."
            ));
        }
    }
    for export in module.exports() {
        let name = export.name();
        if let Some(method) = name.strip_prefix("canister_update ").or_else(|| name.strip_prefix("canister_query "))
            && method.is_empty()
        {
            return Err(format!("Wasm module has an invalid export section: '{name}' names no method."));
        }
    }
    Ok(CompiledModule {
        module,
        wasm64: rewrite.wasm64,
        mutable_globals: rewrite.mutable_globals,
        has_table: rewrite.has_table,
        has_start: rewrite.has_start,
        eop: rewrite.eop,
        data_segments: rewrite.data_segments,
        installed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_exports_table_and_mutable_globals_and_keeps_module_valid() {
        let wasm = wat::parse_str(
            r#"(module
                 (global $sp (mut i32) (i32.const 1024))
                 (global $k i32 (i32.const 7))
                 (table 2 funcref)
                 (memory 1)
                 (func $f)
                 (export "canister_update f" (func $f))
                 (data (i32.const 0) "hi"))"#,
        )
        .unwrap();
        let r = rewrite_exports(&wasm).unwrap();
        assert!(r.has_table);
        assert_eq!(r.mutable_globals, vec![format!("{GLOBAL_EXPORT_PREFIX}0")]);
        let engine = Engine::default();
        let m = Module::new(&engine, &r.wasm).unwrap();
        let names: Vec<_> = m.exports().map(|e| e.name().to_string()).collect();
        assert!(names.contains(&"canister_update f".to_string()));
        assert!(names.contains(&TABLE_EXPORT.to_string()));
    }

    #[test]
    fn rewrite_adds_an_export_section_where_there_was_none() {
        let wasm =
            wat::parse_str(r#"(module (global (mut i64) (i64.const 0)) (table 1 funcref) (func) (start 0))"#).unwrap();
        let r = rewrite_exports(&wasm).unwrap();
        assert!(r.has_start);
        let m = Module::new(&Engine::default(), &r.wasm).unwrap();
        let names: Vec<_> = m.exports().map(|e| e.name().to_string()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&START_EXPORT.to_string()));
    }

    #[test]
    fn gzip_and_garbage() {
        use std::io::Write;
        let wasm = wat::parse_str("(module)").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&wasm).unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), wasm);
        assert!(decompress(b"not wasm").unwrap_err().contains("magic"));
    }
}
