//! Instruments a wasm module the way the Internet Computer meters canisters,
//! with the same cost table as the simulator (`ic_cost_table.rs`, included
//! from `integration-tests/simulator/src`): every straight-line run of
//! operators adds its IC cost to an exported i64 global `ic_instructions`,
//! the first run of a function also pays the IC's function entry (1), and
//! each bulk memory or table operation also pays its byte (element) count
//! through a helper function. System API calls are not charged here (the
//! probe makes none); the simulator charges them. With `--profile`, also
//! one counter per function (`prof_N`, names in OUT.wasm.names), without the
//! bulk bytes.
//! Usage: ic_meter IN.wasm OUT.wasm [--profile]

#[path = "../../../../../integration-tests/simulator/src/ic_cost_table.rs"]
mod ic_cost_table;

use ic_cost_table::{BULK_COST_PER_BYTE, FUNCTION_ENTRY_COST, ic_operator_cost};
use wasm_encoder::reencode::{Error, Reencode};
use wasmparser::Operator as O;

/// The operator's variant name, as the table keys it (`LocalGet { .. }` → `LocalGet`).
fn name(op: &O) -> String {
    let debug = format!("{op:?}");
    debug.split([' ', '{', '(']).next().unwrap_or_default().to_string()
}

fn cost(op: &O, wasm64: bool) -> i64 {
    ic_operator_cost(&name(op), wasm64) as i64
}

/// Operators after which the IC starts a new block of metered code.
fn ends_run(op: &O) -> bool {
    matches!(
        op,
        O::Loop { .. }
            | O::If { .. }
            | O::Else
            | O::End
            | O::Br { .. }
            | O::BrIf { .. }
            | O::BrTable { .. }
            | O::Return
            | O::Unreachable
            | O::ReturnCall { .. }
            | O::ReturnCallIndirect { .. }
    )
}

/// Whether the operator's byte count (on top of the stack) is an i64:
/// `memory.fill/copy` of a 64-bit memory. `memory.init` and the table
/// operations take an i32 count.
fn bulk_count_is_i64(op: &O, wasm64: bool) -> Option<bool> {
    match op {
        O::MemoryFill { .. } | O::MemoryCopy { .. } => Some(wasm64),
        O::MemoryInit { .. } | O::TableFill { .. } | O::TableCopy { .. } | O::TableInit { .. } => Some(false),
        _ => None,
    }
}

/// What the pre-pass learned about the module.
#[derive(Default)]
struct Shape {
    wasm64: bool,
    types: u32,
    imported_functions: u32,
    functions: u32,
    globals: u32,
}

struct Meter {
    shape: Shape,
    profile: bool,
    next_function: u32,
}

impl Meter {
    fn counter(&self) -> u32 {
        self.shape.globals
    }
    /// The helpers that charge a bulk operation's bytes: (i32)->i32 and (i64)->i64.
    fn bulk_helper(&self, i64_count: bool) -> u32 {
        self.shape.imported_functions + self.shape.functions + i64_count as u32
    }
}

impl Reencode for Meter {
    type Error = std::convert::Infallible;

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_type_section(self, types, section)?;
        use wasm_encoder::ValType::{I32, I64};
        types.ty().function([I32], [I32]);
        types.ty().function([I64], [I64]);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.shape.types);
        functions.function(self.shape.types + 1);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_code_section(self, code, section)?;
        use wasm_encoder::Instruction as I;
        for i64_count in [false, true] {
            let mut f = wasm_encoder::Function::new([]);
            f.instruction(&I::GlobalGet(self.counter()));
            f.instruction(&I::LocalGet(0));
            if !i64_count {
                f.instruction(&I::I64ExtendI32U);
            }
            if BULK_COST_PER_BYTE != 1 {
                f.instruction(&I::I64Const(BULK_COST_PER_BYTE as i64));
                f.instruction(&I::I64Mul);
            }
            f.instruction(&I::I64Add);
            f.instruction(&I::GlobalSet(self.counter()));
            f.instruction(&I::LocalGet(0));
            f.instruction(&I::End);
            code.function(&f);
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        for g in section {
            self.parse_global(globals, g?)?;
        }
        let extra = if self.profile { 1 + self.shape.functions } else { 1 };
        for _ in 0..extra {
            globals.global(
                wasm_encoder::GlobalType { val_type: wasm_encoder::ValType::I64, mutable: true, shared: false },
                &wasm_encoder::ConstExpr::i64_const(0),
            );
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        for e in section {
            self.parse_export(exports, e?)?;
        }
        exports.export("ic_instructions", wasm_encoder::ExportKind::Global, self.counter());
        if self.profile {
            for f in 0..self.shape.functions {
                exports.export(&format!("prof_{f}"), wasm_encoder::ExportKind::Global, self.counter() + 1 + f);
            }
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), Error<Self::Error>> {
        let mut f = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        let mut ops = Vec::new();
        while !reader.eof() {
            ops.push(reader.read()?);
        }
        let wasm64 = self.shape.wasm64;
        let mut counters = vec![self.counter()];
        if self.profile {
            counters.push(self.counter() + 1 + self.next_function);
        }
        let add = |f: &mut wasm_encoder::Function, total: i64| {
            for &c in &counters {
                f.instruction(&wasm_encoder::Instruction::GlobalGet(c));
                f.instruction(&wasm_encoder::Instruction::I64Const(total));
                f.instruction(&wasm_encoder::Instruction::I64Add);
                f.instruction(&wasm_encoder::Instruction::GlobalSet(c));
            }
        };
        let mut i = 0;
        while i < ops.len() {
            let mut j = i;
            let mut total = if i == 0 { FUNCTION_ENTRY_COST as i64 } else { 0 };
            loop {
                total += cost(&ops[j], wasm64);
                j += 1;
                if ends_run(&ops[j - 1]) || j == ops.len() {
                    break;
                }
            }
            // The run's cost is charged before it, as the IC charges a block
            // on entry (after the `loop`/`if`/... that starts it).
            if total > 0 {
                add(&mut f, total);
            }
            for op in &ops[i..j] {
                if let Some(i64_count) = bulk_count_is_i64(op, wasm64) {
                    f.instruction(&wasm_encoder::Instruction::Call(self.bulk_helper(i64_count)));
                }
                f.instruction(&self.instruction(op.clone())?);
            }
            i = j;
        }
        code.function(&f);
        self.next_function += 1;
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let input = std::fs::read(&args[1]).expect("read input");
    let profile = args.get(3).is_some_and(|a| a == "--profile");
    let mut shape = Shape::default();
    let mut imported_globals = 0;
    let mut defined_globals = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&input) {
        match payload.expect("parse") {
            wasmparser::Payload::TypeSection(r) => {
                for group in r {
                    shape.types += group.expect("types").types().len() as u32;
                }
            }
            wasmparser::Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    match imp.expect("import").ty {
                        wasmparser::TypeRef::Func(_) => shape.imported_functions += 1,
                        wasmparser::TypeRef::Global(_) => imported_globals += 1,
                        wasmparser::TypeRef::Memory(m) => shape.wasm64 |= m.memory64,
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::MemorySection(r) => {
                for m in r {
                    shape.wasm64 |= m.expect("memory").memory64;
                }
            }
            wasmparser::Payload::FunctionSection(r) => shape.functions = r.count(),
            wasmparser::Payload::GlobalSection(r) => defined_globals = r.count(),
            wasmparser::Payload::CustomSection(c) if profile => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    let mut out = String::new();
                    for n in names {
                        if let wasmparser::Name::Function(map) = n.expect("names") {
                            for naming in map {
                                let naming = naming.expect("naming");
                                if naming.index >= shape.imported_functions {
                                    out.push_str(&format!(
                                        "{} {}\n",
                                        naming.index - shape.imported_functions,
                                        naming.name
                                    ));
                                }
                            }
                        }
                    }
                    std::fs::write(format!("{}.names", &args[2]), out).expect("write names");
                }
            }
            _ => {}
        }
    }
    assert!(defined_globals > 0, "the module defines no global (the counter goes after them)");
    shape.globals = imported_globals + defined_globals;
    let mut module = wasm_encoder::Module::new();
    Meter { shape, profile, next_function: 0 }
        .parse_core_module(&mut module, wasmparser::Parser::new(0), &input)
        .expect("reencode");
    std::fs::write(&args[2], module.finish()).expect("write output");
}
