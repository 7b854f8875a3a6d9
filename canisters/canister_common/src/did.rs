//! The one shape of every canister's `.did` test: the committed file must
//! describe the same service as `candid::export_service!()` collects from
//! the endpoints. `UPDATE_DID=1 cargo test -p <canister>` rewrites the file
//! from the code first (comments are lost then: prefer editing by hand).

use std::path::Path;

use candid_parser::utils::{CandidSource, service_equal};

/// Panics with both interfaces when the `.did` file at `path` and the
/// `exported` interface differ.
pub fn assert_did_matches(path: &Path, exported: &str) {
    if std::env::var("UPDATE_DID").is_ok_and(|v| v == "1") {
        std::fs::write(path, exported).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    let did = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if let Err(e) = service_equal(CandidSource::Text(&did), CandidSource::Text(exported)) {
        panic!(
            "{} differs from the Rust interface: {e}\n\nthe Rust interface:\n{exported}\n\
             (edit the file, or rewrite it with UPDATE_DID=1)",
            path.display()
        );
    }
}

/// Declares the `.did` test of the calling crate; `file` is relative to its
/// manifest directory. Put it after `candid::export_service!()`, under
/// `#[cfg(test)]` (this crate is a dev-dependency with feature `did-test`).
#[macro_export]
macro_rules! did_test {
    ($file:literal) => {
        mod did_test {
            #[test]
            fn the_did_file_matches_the_rust_interface() {
                $crate::did::assert_did_matches(
                    ::std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file)),
                    &super::__export_service(),
                );
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "service : { get : () -> (nat) query }";

    fn temp_did(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("canister_common-{}-{name}.did", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_equal_interface_passes_whatever_its_layout() {
        let path = temp_did("equal", "// a comment\nservice : {\n  get : () -> (nat) query;\n}\n");
        assert_did_matches(&path, SERVICE);
    }

    #[test]
    #[should_panic(expected = "differs from the Rust interface")]
    fn a_different_interface_fails() {
        let path = temp_did("different", "service : { get : () -> (int) query }");
        assert_did_matches(&path, SERVICE);
    }
}
