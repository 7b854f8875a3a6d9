//! Prints the metadata and tensor directory of a GGUF file.
//! Usage: cargo run -p llm_engine --example gguf_dump -- FILE.gguf

use llm_engine::gguf::{Array, GgufFile, Value};

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => describe_array(a),
        other => format!("{other:?}"),
    }
}

fn describe_array(array: &Array) -> String {
    let preview = match array {
        Array::String(v) => format!("{:?}", &v[..v.len().min(8)]),
        Array::F32(v) => format!("{:?}", &v[..v.len().min(8)]),
        Array::I32(v) => format!("{:?}", &v[..v.len().min(8)]),
        _ => String::new(),
    };
    format!("[{}; {}] {preview}", array.element_type().name(), array.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: gguf_dump FILE.gguf")?;
    let bytes = std::fs::read(&path)?;
    let file = GgufFile::parse(bytes.as_slice())?;
    println!("GGUF v{}, alignment {}, data at {}", file.version, file.alignment, file.data_offset);
    for (key, value) in file.metadata() {
        println!("{key} = {}", describe(value));
    }
    for t in file.tensors() {
        println!("{:<28} {:<5} {:?} @{}", t.name, t.ty.name(), t.dims, t.offset);
    }
    println!("{} tensors, {} parameters", file.tensors().len(), file.parameter_count());
    Ok(())
}
