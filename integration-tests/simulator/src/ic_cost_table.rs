//! The Internet Computer's instruction cost of each wasm operator, by the
//! operator's name (wasmparser's `Operator` variant name, e.g. `I32Add`).
//!
//! Facts taken from dfinity/ic `rs/embedders/src/wasm_utils/instrumentation.rs`
//! (`instruction_to_cost`) at commit 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe;
//! the code is written here. The file has no dependencies so that
//! `canisters/llm_engine/tools/ic_meter` includes it too (`#[path]`): one
//! table for both meters.
//!
//! Besides this static cost, the IC charges 1 per function entered, and the
//! bulk operations (`memory.fill/copy/init`, `table.fill/copy/init`) also
//! cost 1 per byte (element) they move; see [`FUNCTION_ENTRY_COST`] and
//! [`BULK_COST_PER_BYTE`].

/// Every function call enters a re-entrant block that costs 1 before its body
/// (ic_meter adds it; wasmtime's fuel charges it by itself).
#[allow(dead_code)]
pub const FUNCTION_ENTRY_COST: u64 = 1;
/// Dynamic part of the bulk memory and table operators, per byte or element.
pub const BULK_COST_PER_BYTE: u64 = 1;

/// The IC's static cost of the operator named `op`. Loads and stores cost
/// double in a module whose memory is 64-bit.
pub fn ic_operator_cost(op: &str, wasm64: bool) -> u16 {
    let memory_access = if wasm64 { 2 } else { 1 };
    match op {
        // Block markers are free.
        "Block" | "Else" | "End" | "Loop" => 0,

        "I32DivS" | "I32DivU" | "I32RemS" | "I32RemU" | "I64DivS" | "I64DivU" | "I64RemS" | "I64RemU" => 10,

        "F32Add" | "F32Sub" | "F32Mul" | "F32Ceil" | "F32Floor" | "F32Trunc" | "F32Nearest" | "F64Add" | "F64Sub"
        | "F64Mul" | "F64Ceil" | "F64Floor" | "F64Trunc" | "F64Nearest" => 2,
        "F32Div" => 3,
        "F64Div" => 5,
        "F32Min" | "F32Max" | "F64Min" | "F64Max" => 18,
        "F32Copysign" => 2,
        "F64Copysign" => 3,
        "F32Sqrt" => 5,
        "F64Sqrt" => 8,
        "F32Eq" | "F32Ne" | "F32Lt" | "F32Gt" | "F32Le" | "F32Ge" | "F64Eq" | "F64Ne" | "F64Lt" | "F64Gt" | "F64Le"
        | "F64Ge" => 3,
        "F32ConvertI32S" | "F64ConvertI64S" | "F32ConvertI64S" | "F64ConvertI32S" => 3,
        "F64ConvertI32U" | "F32ConvertI64U" | "F32ConvertI32U" | "F64ConvertI64U" => 16,
        "I64TruncSatF32S" | "I64TruncSatF32U" | "I64TruncSatF64S" | "I64TruncSatF64U" | "I32TruncSatF32S"
        | "I32TruncSatF32U" | "I32TruncSatF64S" | "I32TruncSatF64U" => 20,
        "I32TruncF32S" | "I32TruncF32U" | "I32TruncF64S" | "I32TruncF64U" | "I64TruncF32S" | "I64TruncF32U"
        | "I64TruncF64S" | "I64TruncF64U" => 20,

        "I32Load" | "I64Load" | "F32Load" | "F64Load" | "I32Load8S" | "I32Load8U" | "I32Load16S" | "I32Load16U"
        | "I64Load8S" | "I64Load8U" | "I64Load16S" | "I64Load16U" | "I64Load32S" | "I64Load32U" | "I32Store"
        | "I64Store" | "F32Store" | "F64Store" | "I32Store8" | "I32Store16" | "I64Store8" | "I64Store16"
        | "I64Store32" => memory_access,

        "GlobalGet" | "GlobalSet" => 2,
        "TableGet" | "TableSet" => 5,
        "TableGrow" | "MemoryGrow" => 300,
        "MemorySize" => 20,
        "TableSize" => 100,
        "MemoryFill" | "MemoryCopy" | "TableFill" | "TableCopy" | "MemoryInit" | "TableInit" => 100,
        "DataDrop" | "ElemDrop" => 300,
        "Call" => 5,
        "CallIndirect" => 10,
        "ReturnCall" => 3,
        "ReturnCallIndirect" => 60,
        "If" | "Br" | "BrIf" | "BrTable" => 2,
        "RefIsNull" => 5,
        "RefFunc" => 130,

        // SIMD
        "V128Load" | "V128Load8x8S" | "V128Load8x8U" | "V128Load16x4S" | "V128Load16x4U" | "V128Load32x2S"
        | "V128Load32x2U" | "V128Load8Splat" | "V128Load16Splat" | "V128Load32Splat" | "V128Load64Splat"
        | "V128Load32Zero" | "V128Load64Zero" | "V128Store" | "V128Load8Lane" | "V128Load16Lane" | "V128Load32Lane"
        | "V128Load64Lane" | "V128Store8Lane" | "V128Store16Lane" | "V128Store32Lane" | "V128Store64Lane" => {
            memory_access
        }
        "I8x16Shuffle" => 3,
        "I8x16LtU" | "I8x16GtU" | "I16x8LtU" | "I16x8GtU" | "I32x4LtU" | "I32x4GtU" => 2,
        "I8x16Popcnt" | "I8x16Shl" | "I8x16ShrS" => 3,
        "I8x16ShrU" => 2,
        "I16x8ExtAddPairwiseI8x16U" => 2,
        "I16x8Shl" | "I16x8ShrS" | "I16x8ShrU" => 2,
        "I16x8ExtMulHighI8x16S" | "I16x8ExtMulHighI8x16U" => 2,
        "I32x4ExtAddPairwiseI16x8U" => 3,
        "I32x4Shl" | "I32x4ShrS" | "I32x4ShrU" | "I32x4Mul" => 2,
        "I32x4ExtMulLowI16x8S" | "I32x4ExtMulHighI16x8S" | "I32x4ExtMulLowI16x8U" | "I32x4ExtMulHighI16x8U" => 2,
        "I64x2Shl" | "I64x2ShrU" => 2,
        "I64x2ShrS" => 3,
        "I64x2Mul" => 4,
        "F32x4Ceil" | "F32x4Floor" | "F32x4Trunc" | "F32x4Nearest" | "F32x4Abs" | "F32x4Neg" => 2,
        "F32x4Sqrt" => 5,
        "F32x4Add" | "F32x4Sub" | "F32x4Mul" => 2,
        "F32x4Div" => 10,
        "F32x4Min" | "F32x4Max" => 4,
        "F64x2Ceil" | "F64x2Floor" | "F64x2Trunc" | "F64x2Nearest" | "F64x2Abs" | "F64x2Neg" => 2,
        "F64x2Sqrt" => 14,
        "F64x2Add" | "F64x2Sub" | "F64x2Mul" => 2,
        "F64x2Div" => 12,
        "F64x2Min" => 4,
        "F64x2Max" => 5,
        "I32x4TruncSatF32x4S" => 2,
        "I32x4TruncSatF32x4U" => 4,
        "F32x4ConvertI32x4U" => 4,
        "I32x4TruncSatF64x2SZero" => 2,
        "I32x4TruncSatF64x2UZero" => 3,

        // Everything else costs 1: constants, integer arithmetic and
        // comparisons, locals, select, drop, nop, return, unreachable, the
        // other SIMD operators, and operators the IC's table does not list.
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_entries_as_the_ic_lists_them() {
        assert_eq!(ic_operator_cost("F32Add", false), 2);
        assert_eq!(ic_operator_cost("F32x4Mul", false), 2);
        assert_eq!(ic_operator_cost("I8x16Shuffle", false), 3);
        assert_eq!(ic_operator_cost("Call", false), 5);
        assert_eq!(ic_operator_cost("MemoryCopy", false), 100);
        assert_eq!(ic_operator_cost("I32Load", false), 1);
        assert_eq!(ic_operator_cost("I32Load", true), 2);
        assert_eq!(ic_operator_cost("V128Store", true), 2);
        assert_eq!(ic_operator_cost("End", true), 0);
        assert_eq!(ic_operator_cost("Drop", false), 1);
        assert_eq!(ic_operator_cost("I32x4DotI16x8S", false), 1);
    }
}
