//! Candid values as JSON for `--json`: the value is encoded with its Candid
//! type and read back as an `IDLValue`, so field names are kept.
//!
//! records → objects, variants → `"Tag"` (no payload) or `{"Tag": payload}`,
//! `opt` → the value or `null`, blobs → hex, principals → text, `nat`/`int`
//! beyond 64 bits → decimal strings.

use candid::CandidType;
use candid::types::Label;
use candid::types::value::{IDLField, IDLValue};
use serde_json::{Map, Value, json};

pub fn to_json<T: CandidType>(value: &T) -> Value {
    match IDLValue::try_from_candid_type(value) {
        Ok(v) => idl_to_json(&v),
        Err(e) => json!({ "error": format!("cannot convert to JSON: {e}") }),
    }
}

fn label(l: &Label) -> String {
    match l {
        Label::Named(n) => n.clone(),
        Label::Id(n) | Label::Unnamed(n) => n.to_string(),
    }
}

fn number_or_text(text: String) -> Value {
    if let Ok(n) = text.parse::<u64>() {
        return json!(n);
    }
    if let Ok(n) = text.parse::<i64>() {
        return json!(n);
    }
    Value::String(text)
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn record(fields: &[IDLField]) -> Value {
    if !fields.is_empty() && fields.iter().all(|f| matches!(f.id, Label::Unnamed(_))) {
        return Value::Array(fields.iter().map(|f| idl_to_json(&f.val)).collect());
    }
    let mut map = Map::new();
    for f in fields {
        map.insert(label(&f.id), idl_to_json(&f.val));
    }
    Value::Object(map)
}

pub fn idl_to_json(v: &IDLValue) -> Value {
    match v {
        IDLValue::Bool(b) => json!(b),
        IDLValue::Null | IDLValue::None | IDLValue::Reserved => Value::Null,
        IDLValue::Text(s) => json!(s),
        IDLValue::Number(s) => number_or_text(s.clone()),
        IDLValue::Float64(f) => float(*f),
        // Through the shortest decimal text, so 0.7f32 shows as 0.7.
        IDLValue::Float32(f) => f.to_string().parse::<f64>().map_or(Value::Null, float),
        IDLValue::Opt(inner) => idl_to_json(inner),
        IDLValue::Vec(items) => Value::Array(items.iter().map(idl_to_json).collect()),
        IDLValue::Record(fields) => record(fields),
        IDLValue::Variant(variant) => {
            let field = &variant.0;
            match field.val {
                IDLValue::Null => json!(label(&field.id)),
                _ => {
                    let mut map = Map::new();
                    map.insert(label(&field.id), idl_to_json(&field.val));
                    Value::Object(map)
                }
            }
        }
        IDLValue::Blob(bytes) => json!(hex::encode(bytes)),
        IDLValue::Principal(p) | IDLValue::Service(p) => json!(p.to_text()),
        IDLValue::Func(p, m) => json!(format!("{}.{m}", p.to_text())),
        IDLValue::Int(i) => number_or_text(i.to_string()),
        IDLValue::Nat(n) => number_or_text(n.0.to_string()),
        IDLValue::Nat8(n) => json!(n),
        IDLValue::Nat16(n) => json!(n),
        IDLValue::Nat32(n) => json!(n),
        IDLValue::Nat64(n) => json!(n),
        IDLValue::Int8(n) => json!(n),
        IDLValue::Int16(n) => json!(n),
        IDLValue::Int32(n) => json!(n),
        IDLValue::Int64(n) => json!(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mainer_types::creator::{JobStatus, SlotView};
    use mainer_types::game::GenerationSettings;

    #[test]
    fn records_variants_and_options_read_naturally() {
        let slot = SlotView {
            label: "LLM 1".into(),
            canister: Some(candid::Principal::anonymous()),
            step: mainer_types::creator::Step::UploadModel,
            bytes_copied: 5,
            bytes_total: 10,
        };
        assert_eq!(
            to_json(&slot),
            json!({"label": "LLM 1", "canister": "2vxsx-fae", "step": "UploadModel", "bytes_copied": 5, "bytes_total": 10})
        );
        assert_eq!(to_json(&JobStatus::Done), json!("Done"));
        assert_eq!(to_json(&JobStatus::Failed { reason: "x".into() }), json!({"Failed": {"reason": "x"}}));
        let s = GenerationSettings { temperature: 0.7, top_k: None, ..Default::default() };
        assert_eq!(
            to_json(&s),
            json!({"max_tokens": 64, "temperature": 0.7, "seed": 42, "top_k": null, "top_p": null})
        );
        assert_eq!(to_json(&(u128::MAX)), json!(u128::MAX.to_string()));
        assert_eq!(to_json(&vec![1u8, 2]), json!("0102"));
        assert_eq!(to_json(&vec![1u32, 2]), json!([1, 2]));
    }
}
