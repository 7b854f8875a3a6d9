//! Storing Candid values in stable structures (feature `stable`, for the
//! canisters; the CLI and tests do not need it).

use std::borrow::Cow;

use candid::CandidType;
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use serde::de::DeserializeOwned;

/// A Candid-encoded value in stable memory. Candid lets a record gain `opt`
/// fields later; for values rewritten on hot paths a fixed layout is cheaper.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored<T>(pub T);

impl<T: CandidType + DeserializeOwned> Storable for Stored<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(candid::encode_one(&self.0).expect("a stored value encodes"))
    }

    fn into_bytes(self) -> Vec<u8> {
        candid::encode_one(&self.0).expect("a stored value encodes")
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Stored(candid::decode_one(&bytes).expect("a stored value decodes"))
    }

    const BOUND: Bound = Bound::Unbounded;
}
