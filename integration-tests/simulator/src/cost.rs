//! The cycles cost model and the IC's resource limits.
//!
//! Fees are the IC's for a 13-node application subnet (the reference size,
//! so no scaling applies): `CyclesAccountManagerConfig::application_subnet`
//! in dfinity/ic `rs/config/src/subnet_config.rs` at commit
//! 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe (the version the IC-weighted
//! meter follows), applied as `rs/cycles_account_manager` does: an execution
//! is prepaid for its instruction limit and the unused part refunded; a call
//! reserves the transmission of the largest response and the execution of the
//! longest callback, and gets back what the response did not use. The
//! scheduler limits (slices, rounds) are `SchedulerConfig::application_subnet`
//! of the same file.
//!
//! Not modelled: the storage reservation mechanism (reserved cycles when the
//! subnet's memory is above its threshold), charging storage in 10-second
//! steps (the simulator charges as time advances), the ingress envelope's
//! bytes other than the method name and argument, and the newer HTTP outcall
//! pricing of `cost_http_request_v2`.

/// Fees in cycles.
#[derive(Clone, Debug)]
pub struct CostModel {
    pub create_canister_fee: u128,
    /// `update_message_execution_fee`: the base fee of every update,
    /// callback, timer, heartbeat or install execution.
    pub execution_base_fee: u128,
    /// `ten_update_instructions_execution_fee`: cycles per 10 instructions ...
    pub cycles_per_ten_instructions: u128,
    /// ... and for a wasm64 module (`WASM64_INSTRUCTION_COST_OVERHEAD` = 2x).
    pub cycles_per_ten_instructions_wasm64: u128,
    pub ingress_message_fee: u128,
    pub ingress_byte_fee: u128,
    /// `xnet_call_fee`: paid by the caller for each inter-canister call ...
    pub call_fee: u128,
    /// ... plus `xnet_byte_transmission_fee` per byte of method name and
    /// argument, and of the response.
    pub call_byte_fee: u128,
    /// The largest inter-canister payload (`MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`,
    /// 2 MiB): its transmission is reserved when a call is made.
    pub max_response_bytes: u64,
    /// Storage: cycles per GiB per second, charged as time advances and used
    /// to compute the freezing threshold.
    pub storage_fee_per_gib_second: u128,
    /// Cycles per percent of compute allocation per second.
    pub compute_percent_per_second_fee: u128,
    /// HTTP outcalls: `(linear + quadratic * n + per_byte * request +
    /// per_response_byte * max_response) * n` for a subnet of n nodes.
    pub http_request_linear_fee: u128,
    pub http_request_quadratic_fee: u128,
    pub http_request_byte_fee: u128,
    pub http_response_byte_fee: u128,
    pub subnet_size: u128,
    /// Threshold signatures are priced by the subnet holding the key (34
    /// nodes): 10B cycles scaled from 13 to 34 nodes.
    pub sign_with_ecdsa_fee: u128,
    /// Instructions the management canister charges for `upload_chunk`
    /// (`DEFAULT_UPLOAD_CHUNK_INSTRUCTIONS`), without the base fee.
    pub upload_chunk_instructions: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            create_canister_fee: 500_000_000_000,
            execution_base_fee: 5_000_000,
            cycles_per_ten_instructions: 10,
            cycles_per_ten_instructions_wasm64: 20,
            ingress_message_fee: 1_200_000,
            ingress_byte_fee: 2_000,
            call_fee: 260_000,
            call_byte_fee: 1_000,
            max_response_bytes: 2 * 1024 * 1024,
            storage_fee_per_gib_second: 127_000,
            compute_percent_per_second_fee: 10_000_000,
            http_request_linear_fee: 3_000_000,
            http_request_quadratic_fee: 60_000,
            http_request_byte_fee: 400,
            http_response_byte_fee: 800,
            subnet_size: 13,
            sign_with_ecdsa_fee: 26_153_846_153,
            upload_chunk_instructions: 200_000_000,
        }
    }
}

const GIB: u128 = 1 << 30;
const NANOS_PER_SECOND: u128 = 1_000_000_000;

impl CostModel {
    /// Cycles for `instructions` alone (the variable part of an execution).
    pub fn instructions_cost(&self, instructions: u64, wasm64: bool) -> u128 {
        let per_ten = if wasm64 { self.cycles_per_ten_instructions_wasm64 } else { self.cycles_per_ten_instructions };
        instructions as u128 * per_ten / 10
    }

    /// The cost of one execution of `instructions`: base fee plus instructions.
    pub fn execution_cost(&self, instructions: u64, wasm64: bool) -> u128 {
        self.execution_base_fee + self.instructions_cost(instructions, wasm64)
    }

    pub fn ingress_cost(&self, payload_bytes: usize, method_bytes: usize) -> u128 {
        self.ingress_message_fee + (payload_bytes + method_bytes) as u128 * self.ingress_byte_fee
    }

    /// Transmission of a request: the call fee and its bytes.
    pub fn request_cost(&self, method_bytes: u64, payload_bytes: u64) -> u128 {
        self.call_fee + (method_bytes + payload_bytes) as u128 * self.call_byte_fee
    }

    /// Reserved when a call is made for the largest response's transmission.
    pub fn response_transmission_reserve(&self) -> u128 {
        self.max_response_bytes as u128 * self.call_byte_fee
    }

    /// What a response of `bytes` leaves of the transmission reserve.
    pub fn response_transmission_refund(&self, bytes: u64) -> u128 {
        let used = bytes.min(self.max_response_bytes) as u128 * self.call_byte_fee;
        self.response_transmission_reserve() - used
    }

    /// `ic0.cost_call`: what `call_perform` takes from the balance (and must
    /// find above the freezing threshold): the request, the reserve for the
    /// largest response, and the prepaid execution of the longest callback
    /// (`callback_instructions`, the message instruction limit).
    pub fn call_cost(&self, method_bytes: u64, payload_bytes: u64, callback_instructions: u64, wasm64: bool) -> u128 {
        self.request_cost(method_bytes, payload_bytes)
            + self.response_transmission_reserve()
            + self.execution_cost(callback_instructions, wasm64)
    }

    /// `ic0.cost_http_request` on this subnet.
    pub fn http_request_cost(&self, request_bytes: u64, max_response_bytes: u64) -> u128 {
        let n = self.subnet_size;
        (self.http_request_linear_fee
            + self.http_request_quadratic_fee * n
            + self.http_request_byte_fee * request_bytes as u128
            + self.http_response_byte_fee * max_response_bytes as u128)
            * n
    }

    /// The cost of `upload_chunk`, paid by the canister whose store it is.
    pub fn upload_chunk_cost(&self) -> u128 {
        self.instructions_cost(self.upload_chunk_instructions, false)
    }

    /// Storage cost of `bytes` held for `nanos` nanoseconds.
    pub fn storage_cost(&self, bytes: u64, nanos: u64) -> u128 {
        bytes as u128 * self.storage_fee_per_gib_second * nanos as u128 / (GIB * NANOS_PER_SECOND)
    }

    /// Compute allocation of `percent` held for `nanos` nanoseconds.
    pub fn compute_allocation_cost(&self, percent: u64, nanos: u64) -> u128 {
        percent as u128 * self.compute_percent_per_second_fee * nanos as u128 / NANOS_PER_SECOND
    }

    /// What holding `bytes` and `compute_percent` costs for `nanos`.
    pub fn idle_cost(&self, bytes: u64, compute_percent: u64, nanos: u64) -> u128 {
        self.storage_cost(bytes, nanos) + self.compute_allocation_cost(compute_percent, nanos)
    }

    /// Cycles a canister must keep to stay above its freezing threshold.
    pub fn freezing_threshold_cycles(&self, memory_bytes: u64, compute_percent: u64, threshold_seconds: u64) -> u128 {
        self.idle_cost(memory_bytes, compute_percent, threshold_seconds.saturating_mul(1_000_000_000))
    }

    pub fn idle_cycles_per_day(&self, memory_bytes: u64, compute_percent: u64) -> u128 {
        self.idle_cost(memory_bytes, compute_percent, 86_400 * 1_000_000_000)
    }
}

/// Limits of the IC that the simulator enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    pub instructions_per_update: u64,
    pub instructions_per_query: u64,
    pub instructions_per_install: u64,
    pub instructions_per_inspect: u64,
    /// Deterministic time slicing: an execution longer than this runs one
    /// slice per round (`max_instructions_per_slice`) ...
    pub instructions_per_slice: u64,
    /// ... and install_code's (`max_instructions_per_install_code_slice`).
    pub instructions_per_install_slice: u64,
    /// How fast simulated time runs while canisters execute: a round lasts
    /// as long as its largest slice takes at this rate (the IC's assumption
    /// of 1 instruction per CPU cycle at 2 GHz: one 2B slice ~ one second);
    /// a round that executes nothing lasts 1 ns.
    pub instructions_per_second: u64,
    /// Largest ingress argument and largest inter-canister request or reply.
    pub max_message_bytes: usize,
    pub max_chunk_bytes: usize,
    pub max_chunks_in_store: usize,
    /// wasm32 heap limit.
    pub max_wasm32_heap_bytes: u64,
    pub max_wasm64_heap_bytes: u64,
    pub default_freezing_threshold_seconds: u64,
    pub max_certified_data_bytes: usize,
    pub max_canister_log_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            instructions_per_update: 40_000_000_000,
            instructions_per_query: 5_000_000_000,
            instructions_per_install: 300_000_000_000,
            instructions_per_inspect: 200_000_000,
            instructions_per_slice: 2_000_000_000,
            instructions_per_install_slice: 2_000_000_000,
            instructions_per_second: 2_000_000_000,
            max_message_bytes: 2 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            max_chunks_in_store: 100,
            max_wasm32_heap_bytes: 4 * 1024 * 1024 * 1024,
            max_wasm64_heap_bytes: 6 * 1024 * 1024 * 1024,
            default_freezing_threshold_seconds: 30 * 86_400,
            max_certified_data_bytes: 32,
            max_canister_log_records: 100_000,
        }
    }
}

impl Limits {
    /// Rounds an execution of `instructions` spans with slices of `slice`.
    pub fn rounds(instructions: u64, slice: u64) -> u64 {
        instructions.div_ceil(slice.max(1)).max(1)
    }

    /// How long a round whose largest slice was `instructions` lasts, in ns.
    pub fn round_nanos(&self, instructions: u64) -> u64 {
        let nanos = instructions as u128 * NANOS_PER_SECOND / self.instructions_per_second.max(1) as u128;
        (nanos as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_follow_the_13_node_schedule() {
        let c = CostModel::default();
        assert_eq!(c.execution_cost(0, false), 5_000_000);
        assert_eq!(c.execution_cost(1_000, false), 5_001_000, "1 cycle per instruction");
        assert_eq!(c.execution_cost(1_000, true), 5_002_000, "wasm64 pays double");
        assert_eq!(c.request_cost(3, 7), 270_000);
        assert_eq!(c.response_transmission_reserve(), 2_097_152_000);
        assert_eq!(c.response_transmission_refund(152), 2_097_000_000);
        assert_eq!(c.call_cost(3, 7, 40_000_000_000, false), 270_000 + 2_097_152_000 + 40_005_000_000);
        assert_eq!(c.http_request_cost(0, 0), 49_140_000);
        assert_eq!(c.http_request_cost(1, 1), 49_140_000 + 13 * 1_200);
        // 1 GiB for one day: 127,000 * 86,400 cycles; 1% compute: 10M per second.
        assert_eq!(c.idle_cycles_per_day(1 << 30, 0), 127_000 * 86_400);
        assert_eq!(c.idle_cycles_per_day(0, 1), 10_000_000 * 86_400);
        assert_eq!(c.upload_chunk_cost(), 200_000_000);
    }

    #[test]
    fn slices_and_rounds() {
        let l = Limits::default();
        assert_eq!(Limits::rounds(36_000_000_000, l.instructions_per_slice), 18);
        assert_eq!(Limits::rounds(36_000_000_001, l.instructions_per_slice), 19);
        assert_eq!(Limits::rounds(0, l.instructions_per_slice), 1);
        assert_eq!(l.round_nanos(2_000_000_000), 1_000_000_000);
        assert_eq!(l.round_nanos(0), 1);
    }
}
