//! The IC's representation-independent hash of structured values (request
//! ids, delegations, signed query responses), over CBOR values as they
//! arrive, so that a field this server does not know still counts.

use std::collections::BTreeMap;

use serde_cbor::Value;
use sha2::{Digest, Sha256};

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn leb128(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    leb128::write::unsigned(&mut out, n).expect("writing to a Vec cannot fail");
    out
}

/// The hash of one value: blobs and text by their bytes, naturals by their
/// LEB128 encoding, arrays by the concatenated hashes of their elements,
/// maps as [`hash_of_map`]. Other CBOR values have no hash in the spec.
pub fn hash_value(v: &Value) -> Result<[u8; 32], String> {
    match v {
        Value::Bytes(b) => Ok(sha256(b)),
        Value::Text(t) => Ok(sha256(t.as_bytes())),
        Value::Integer(i) => {
            let n = u64::try_from(*i).map_err(|_| format!("{i} is not a natural number"))?;
            Ok(sha256(&leb128(n)))
        }
        Value::Array(items) => {
            let mut h = Sha256::new();
            for item in items {
                h.update(hash_value(item)?);
            }
            Ok(h.finalize().into())
        }
        Value::Map(m) => hash_of_map(m),
        Value::Tag(_, inner) => hash_value(inner),
        other => Err(format!("a {other:?} has no representation-independent hash")),
    }
}

/// Sorted concatenation of `sha256(key) · hash(value)` for every field, hashed.
pub fn hash_of_map(m: &BTreeMap<Value, Value>) -> Result<[u8; 32], String> {
    let mut fields = Vec::with_capacity(m.len());
    for (k, v) in m {
        let Value::Text(key) = k else { return Err(format!("map key {k:?} is not text")) };
        let mut field = sha256(key.as_bytes()).to_vec();
        field.extend_from_slice(&hash_value(v)?);
        fields.push(field);
    }
    fields.sort();
    Ok(sha256(&fields.concat()))
}

/// A CBOR map from text keys (for building hashed records).
pub fn map<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Map(fields.into_iter().map(|(k, v)| (Value::Text(k.to_string()), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example request of the IC interface specification ("Request ids"):
    // a call of `hello` on canister 00000000000004D2 with argument "DIDL\0\xFD*".
    #[test]
    fn the_specification_example_request_id() {
        let content = map([
            ("request_type", Value::Text("call".into())),
            ("sender", Value::Bytes(vec![0x04])),
            ("ingress_expiry", Value::Integer(1_685_570_400_000_000_000)),
            ("canister_id", Value::Bytes(hex::decode("00000000000004D2").unwrap())),
            ("method_name", Value::Text("hello".into())),
            ("arg", Value::Bytes(b"DIDL\x00\xFD*".to_vec())),
        ]);
        assert_eq!(
            hex::encode(hash_value(&content).unwrap()),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }

    #[test]
    fn arrays_nest_and_unhashable_values_are_refused() {
        let paths = Value::Array(vec![Value::Array(vec![Value::Bytes(b"time".to_vec())])]);
        let inner = sha256(&sha256(b"time"));
        assert_eq!(hash_value(&paths).unwrap(), sha256(&inner));
        assert!(hash_value(&Value::Bool(true)).is_err());
        assert!(hash_value(&Value::Integer(-1)).is_err());
    }
}
