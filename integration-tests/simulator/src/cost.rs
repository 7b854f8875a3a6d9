//! The cycles cost model and the IC's resource limits.
//!
//! Prices follow the IC's published fees for a 13-node application subnet;
//! they are a model for relative costs and "enough cycles?" checks, not a
//! reproduction of the replica's exact charging (which reserves and refunds
//! more finely and scales with subnet size).

/// Fees in cycles.
#[derive(Clone, Debug)]
pub struct CostModel {
    pub create_canister_fee: u128,
    /// Base fee of every update, callback, timer or heartbeat execution.
    pub execution_base_fee: u128,
    /// Cycles per 10 instructions executed.
    pub cycles_per_ten_instructions: u128,
    pub ingress_message_fee: u128,
    pub ingress_byte_fee: u128,
    /// Paid by the caller for each inter-canister call ...
    pub call_fee: u128,
    /// ... plus this per byte of method name and argument (and of the reply).
    pub call_byte_fee: u128,
    /// Storage: cycles per GiB per second, charged as time advances and used
    /// to compute the freezing threshold.
    pub storage_fee_per_gib_second: u128,
    pub http_request_base_fee: u128,
    pub sign_with_ecdsa_fee: u128,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            create_canister_fee: 500_000_000_000,
            execution_base_fee: 5_000_000,
            cycles_per_ten_instructions: 4,
            ingress_message_fee: 1_200_000,
            ingress_byte_fee: 2_000,
            call_fee: 260_000,
            call_byte_fee: 1_000,
            storage_fee_per_gib_second: 127_000,
            http_request_base_fee: 49_140_000,
            sign_with_ecdsa_fee: 26_153_846_153,
        }
    }
}

const GIB: u128 = 1 << 30;

impl CostModel {
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.execution_base_fee + instructions as u128 * self.cycles_per_ten_instructions / 10
    }

    pub fn ingress_cost(&self, payload_bytes: usize, method_bytes: usize) -> u128 {
        self.ingress_message_fee + (payload_bytes + method_bytes) as u128 * self.ingress_byte_fee
    }

    pub fn call_cost(&self, method_bytes: u64, payload_bytes: u64) -> u128 {
        self.call_fee + (method_bytes + payload_bytes) as u128 * self.call_byte_fee
    }

    /// Storage cost of `bytes` held for `nanos` nanoseconds.
    pub fn storage_cost(&self, bytes: u64, nanos: u64) -> u128 {
        bytes as u128 * self.storage_fee_per_gib_second * nanos as u128 / (GIB * 1_000_000_000)
    }

    /// Cycles a canister must keep to stay above its freezing threshold.
    pub fn freezing_threshold_cycles(&self, memory_bytes: u64, threshold_seconds: u64) -> u128 {
        self.storage_cost(memory_bytes, threshold_seconds.saturating_mul(1_000_000_000))
    }

    pub fn idle_cycles_per_day(&self, memory_bytes: u64) -> u128 {
        self.storage_cost(memory_bytes, 86_400 * 1_000_000_000)
    }
}

/// Limits of the IC that the simulator enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    pub instructions_per_update: u64,
    pub instructions_per_query: u64,
    pub instructions_per_install: u64,
    pub instructions_per_inspect: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_scale_as_documented() {
        let c = CostModel::default();
        assert_eq!(c.execution_cost(0), 5_000_000);
        assert_eq!(c.execution_cost(1_000), 5_000_400);
        assert_eq!(c.call_cost(3, 7), 270_000);
        // 1 GiB for one day: 127,000 * 86,400 cycles.
        assert_eq!(c.idle_cycles_per_day(1 << 30), 127_000 * 86_400);
    }
}
