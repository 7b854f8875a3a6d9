//! Instruments a wasm module the way the Internet Computer meters canisters:
//! every straight-line run of operators adds its weighted cost (the IC's
//! instruction cost table: scalar float arithmetic 20, calls 10, branches 2,
//! SIMD and most others 1, block markers 0) to an exported i64 global
//! `ic_instructions`. With `--profile`, also one counter per function
//! (`prof_N`, names in OUT.wasm.names).
//! Usage: ic_meter IN.wasm OUT.wasm [--profile]

use wasm_encoder::reencode::{Error, Reencode};
use wasmparser::Operator as O;

fn cost(op: &O) -> i64 {
    match op {
        O::Block { .. } | O::Else | O::End | O::Loop { .. } => 0,
        O::I32DivS | O::I32DivU | O::I32RemS | O::I32RemU | O::I64DivS | O::I64DivU | O::I64RemS | O::I64RemU => 10,
        O::F32Add
        | O::F32Sub
        | O::F32Mul
        | O::F32Div
        | O::F32Min
        | O::F32Max
        | O::F32Ceil
        | O::F32Floor
        | O::F32Trunc
        | O::F32Nearest
        | O::F32Sqrt
        | O::F64Add
        | O::F64Sub
        | O::F64Mul
        | O::F64Div
        | O::F64Min
        | O::F64Max
        | O::F64Ceil
        | O::F64Floor
        | O::F64Trunc
        | O::F64Nearest
        | O::F64Sqrt => 20,
        O::F32Abs | O::F32Neg | O::F32Copysign | O::F64Abs | O::F64Neg | O::F64Copysign => 2,
        O::F32Eq
        | O::F32Ne
        | O::F32Lt
        | O::F32Gt
        | O::F32Le
        | O::F32Ge
        | O::F64Eq
        | O::F64Ne
        | O::F64Lt
        | O::F64Gt
        | O::F64Le
        | O::F64Ge => 3,
        O::F32ConvertI32S | O::F64ConvertI64S | O::F32ConvertI64S | O::F64ConvertI32S => 3,
        O::F64ConvertI32U | O::F32ConvertI64U | O::F32ConvertI32U | O::F64ConvertI64U => 16,
        O::I64TruncSatF32S
        | O::I64TruncSatF32U
        | O::I64TruncSatF64S
        | O::I64TruncSatF64U
        | O::I32TruncSatF32S
        | O::I32TruncSatF32U
        | O::I32TruncSatF64S
        | O::I32TruncSatF64U => 20,
        O::I32TruncF32S
        | O::I32TruncF32U
        | O::I32TruncF64S
        | O::I32TruncF64U
        | O::I64TruncF32S
        | O::I64TruncF32U
        | O::I64TruncF64S
        | O::I64TruncF64U => 20,
        O::GlobalGet { .. } | O::GlobalSet { .. } => 2,
        O::MemoryGrow { .. } => 300,
        O::MemorySize { .. } => 20,
        O::MemoryFill { .. } | O::MemoryCopy { .. } => 100,
        O::Call { .. } | O::CallIndirect { .. } | O::ReturnCall { .. } | O::ReturnCallIndirect { .. } => 10,
        O::If { .. } | O::Br { .. } | O::BrIf { .. } | O::BrTable { .. } => 2,
        _ => 1,
    }
}

/// Operators after which a new straight-line run starts.
fn ends_run(op: &O) -> bool {
    matches!(
        op,
        O::Block { .. }
            | O::Loop { .. }
            | O::If { .. }
            | O::Else
            | O::End
            | O::Br { .. }
            | O::BrIf { .. }
            | O::BrTable { .. }
            | O::Return
            | O::Unreachable
            | O::Call { .. }
            | O::CallIndirect { .. }
    )
}

struct Meter {
    counter: u32,
    /// With profiling, one more counter per defined function (in order).
    profile: bool,
    functions: u32,
    next_function: u32,
}

impl Reencode for Meter {
    type Error = std::convert::Infallible;

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        self.counter = section.count();
        for g in section {
            self.parse_global(globals, g?)?;
        }
        let extra = if self.profile { 1 + self.functions } else { 1 };
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
        exports.export("ic_instructions", wasm_encoder::ExportKind::Global, self.counter);
        if self.profile {
            for f in 0..self.functions {
                exports.export(&format!("prof_{f}"), wasm_encoder::ExportKind::Global, self.counter + 1 + f);
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
        let mut i = 0;
        while i < ops.len() {
            let mut j = i;
            let mut total = 0;
            loop {
                total += cost(&ops[j]);
                j += 1;
                if ends_run(&ops[j - 1]) || j == ops.len() {
                    break;
                }
            }
            // The charge goes before the run (after a block/loop/if marker is fine too:
            // the marker itself costs 0 except `if`, counted in the run it ends).
            if total > 0 {
                let mut counters = vec![self.counter];
                if self.profile {
                    counters.push(self.counter + 1 + self.next_function);
                }
                for c in counters {
                    f.instruction(&wasm_encoder::Instruction::GlobalGet(c));
                    f.instruction(&wasm_encoder::Instruction::I64Const(total));
                    f.instruction(&wasm_encoder::Instruction::I64Add);
                    f.instruction(&wasm_encoder::Instruction::GlobalSet(c));
                }
            }
            for op in &ops[i..j] {
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
    // Count defined functions and print their names (for the profile).
    let mut functions = 0;
    let mut imported = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&input) {
        match payload.expect("parse") {
            wasmparser::Payload::FunctionSection(r) => functions = r.count(),
            wasmparser::Payload::ImportSection(r) => {
                for imp in r {
                    if matches!(imp.expect("import").ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            wasmparser::Payload::CustomSection(c) if profile => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    let mut out = String::new();
                    for n in names {
                        if let wasmparser::Name::Function(map) = n.expect("names") {
                            for naming in map {
                                let naming = naming.expect("naming");
                                if naming.index >= imported {
                                    out.push_str(&format!("{} {}\n", naming.index - imported, naming.name));
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
    let mut module = wasm_encoder::Module::new();
    Meter { counter: 0, profile, functions, next_function: 0 }
        .parse_core_module(&mut module, wasmparser::Parser::new(0), &input)
        .expect("reencode");
    std::fs::write(&args[2], module.finish()).expect("write output");
}
