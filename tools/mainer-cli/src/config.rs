//! Where to connect, as whom, and to which canisters: the flags, else dfx's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candid::Principal;
use ic_agent::Identity;
use serde_json::Value;

use crate::cli::Global;
use crate::error::CliError;

pub const LOCAL_URL: &str = "http://127.0.0.1:4943";
pub const IC_URL: &str = "https://icp-api.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// `local`, `ic`, or the URL given.
    pub name: String,
    pub url: String,
    /// Only for a local replica: mainnet's root key is built into the agent.
    pub fetch_root_key: bool,
}

/// The nearest directory at or above `start` with a dfx.json.
pub fn find_project(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|d| d.join("dfx.json").is_file()).map(Path::to_path_buf)
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

pub fn network(name: &str, project: Option<&Path>) -> Result<Network, CliError> {
    match name {
        "local" => {
            // dfx.json may move the local replica: networks.local.bind = "127.0.0.1:PORT".
            let bind = project
                .and_then(|p| read_json(&p.join("dfx.json")))
                .and_then(|v| v.pointer("/networks/local/bind").and_then(Value::as_str).map(str::to_string));
            let url = bind.map_or(LOCAL_URL.to_string(), |b| format!("http://{b}"));
            Ok(Network { name: "local".into(), url, fetch_root_key: true })
        }
        "ic" => Ok(Network { name: "ic".into(), url: IC_URL.into(), fetch_root_key: false }),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            let mainnet = ["icp-api.io", "ic0.app", "icp0.io"].iter().any(|h| url.contains(h));
            Ok(Network { name: url.into(), url: url.into(), fetch_root_key: !mainnet })
        }
        other => Err(CliError::Usage(format!("unknown network `{other}`: use local, ic or a URL"))),
    }
}

/// A canister id from dfx's files: `.dfx/local/canister_ids.json` for a
/// local replica, `canister_ids.json` for mainnet.
pub fn canister_id_from_files(project: &Path, network: &str, canister: &str) -> Option<Principal> {
    let files: Vec<PathBuf> = match network {
        "ic" => vec![project.join("canister_ids.json")],
        "local" => vec![project.join(".dfx/local/canister_ids.json")],
        _ => vec![],
    };
    files.iter().find_map(|f| {
        let v = read_json(f)?;
        let text = v.get(canister)?.get(network)?.as_str()?;
        Principal::from_text(text).ok()
    })
}

/// A canister id given on the command line.
pub fn parse_principal(text: &str, what: &str) -> Result<Principal, CliError> {
    Principal::from_text(text.trim()).map_err(|e| CliError::Usage(format!("{what}: `{text}` is not a principal ({e})")))
}

pub struct Ids {
    pub creator: Option<Principal>,
    pub game_state: Option<Principal>,
}

pub fn canister_ids(g: &Global, network: &Network, project: Option<&Path>) -> Result<Ids, CliError> {
    let resolve = |flag: &Option<String>, name: &str| -> Result<Option<Principal>, CliError> {
        match flag {
            Some(text) => parse_principal(text, &format!("--{}", name.replace('_', "-"))).map(Some),
            None => Ok(project.and_then(|p| canister_id_from_files(p, &network.name, name))),
        }
    };
    Ok(Ids { creator: resolve(&g.creator, "mainer_creator")?, game_state: resolve(&g.game_state, "game_state")? })
}

/// The identity of `--pem`, `--identity`, or the anonymous one.
pub fn identity(g: &Global) -> Result<Arc<dyn Identity>, CliError> {
    if let Some(pem) = &g.pem {
        return crate::agent::identity_from_pem(pem);
    }
    let Some(name) = &g.identity else {
        return Ok(crate::agent::anonymous());
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| CliError::Usage("HOME is not set: pass --pem FILE".into()))?;
    let dfx = std::env::var_os("MAINER_DFX").unwrap_or_else(|| "dfx".into());
    dfx_identity(name, &home, Path::new(&dfx))
}

/// A dfx identity by name. A plaintext key (`dfx identity new --storage-mode
/// plaintext`) is read from its file; one in the system keyring (dfx's
/// default) or encrypted with a password is asked of dfx itself (`dfx
/// identity export NAME`, which prompts on the terminal for a password), since
/// only dfx knows how to unlock it. The key stays in memory.
pub fn dfx_identity(name: &str, home: &Path, dfx: &Path) -> Result<Arc<dyn Identity>, CliError> {
    let dir = home.join(".config/dfx/identity").join(name);
    let pem = dir.join("identity.pem");
    if pem.is_file() {
        return crate::agent::identity_from_pem(&pem);
    }
    if !dir.is_dir() {
        return Err(CliError::Usage(format!("no dfx identity `{name}` (looked in {})", dir.display())));
    }
    let storage =
        if dir.join("identity.pem.encrypted").is_file() { "is encrypted" } else { "is in the system keyring" };
    let output = std::process::Command::new(dfx)
        .args(["identity", "export", name])
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            CliError::Usage(format!(
                "the key of dfx identity `{name}` {storage} and only dfx can read it, but `{}` cannot run ({e}); \
                 export it (dfx identity export {name} > {name}.pem) and pass --pem {name}.pem",
                dfx.display()
            ))
        })?;
    if !output.status.success() {
        return Err(CliError::Usage(format!("`dfx identity export {name}` failed ({})", output.status)));
    }
    crate::agent::identity_from_pem_bytes(&output.stdout)
        .ok_or_else(|| CliError::Usage(format!("`dfx identity export {name}` printed no PEM key we can read")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_canister_ids_from_dfx_files() {
        let dir = std::env::temp_dir().join(format!("mainer-cli-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".dfx/local")).unwrap();
        std::fs::write(dir.join("dfx.json"), r#"{"networks":{"local":{"bind":"127.0.0.1:8080"}}}"#).unwrap();
        std::fs::write(
            dir.join(".dfx/local/canister_ids.json"),
            r#"{"mainer_creator":{"local":"bkyz2-fmaaa-aaaaa-qaaaq-cai"},"game_state":{"local":"bd3sg-teaaa-aaaaa-qaaba-cai"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("canister_ids.json"), r#"{"mainer_creator":{"ic":"rrkah-fqaaa-aaaaa-aaaaq-cai"}}"#)
            .unwrap();
        assert_eq!(find_project(&dir.join(".dfx/local")), Some(dir.clone()));
        let local = network("local", Some(&dir)).unwrap();
        assert_eq!((local.url.as_str(), local.fetch_root_key), ("http://127.0.0.1:8080", true));
        let ic = network("ic", Some(&dir)).unwrap();
        assert_eq!((ic.url.as_str(), ic.fetch_root_key), (IC_URL, false));
        assert!(matches!(network("mainnet", None), Err(CliError::Usage(_))));
        assert_eq!(
            canister_id_from_files(&dir, "local", "game_state").unwrap().to_text(),
            "bd3sg-teaaa-aaaaa-qaaba-cai"
        );
        assert_eq!(
            canister_id_from_files(&dir, "ic", "mainer_creator").unwrap().to_text(),
            "rrkah-fqaaa-aaaaa-aaaaq-cai"
        );
        assert_eq!(canister_id_from_files(&dir, "ic", "game_state"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A throw-away Ed25519 key made for this test with openssl.
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHlaBHi/ue8SvldqLJH/ri5RyL2taBpwRHQv3He3opSV
-----END PRIVATE KEY-----
";

    #[test]
    fn dfx_identities_in_a_file_in_the_keyring_or_encrypted() {
        use std::os::unix::fs::PermissionsExt;
        let home = std::env::temp_dir().join(format!("mainer-cli-identity-{}", std::process::id()));
        let ids = home.join(".config/dfx/identity");
        for name in ["plain", "keyring", "locked"] {
            std::fs::create_dir_all(ids.join(name)).unwrap();
        }
        std::fs::write(ids.join("plain/identity.pem"), ED25519).unwrap();
        std::fs::write(ids.join("locked/identity.pem.encrypted"), b"sealed").unwrap();
        // A stand-in for dfx: exports `keyring` and `locked`, and logs its arguments.
        let fake = home.join("dfx");
        let log = home.join("dfx.log");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\nif [ \"$3\" = missing ]; then exit 255; fi\ncat <<'EOF'\n{ED25519}EOF\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

        let expected = crate::agent::identity_from_pem_bytes(ED25519.as_bytes()).unwrap().sender().unwrap();
        for name in ["plain", "keyring", "locked"] {
            let id = dfx_identity(name, &home, &fake).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(id.sender().unwrap(), expected, "{name}");
        }
        // The file is read directly; dfx is asked only for the other two.
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "identity export keyring\nidentity export locked\n");
        assert!(
            matches!(dfx_identity("nobody", &home, &fake), Err(CliError::Usage(m)) if m.contains("no dfx identity"))
        );
        let no_dfx = dfx_identity("keyring", &home, &home.join("no-such-dfx"));
        assert!(matches!(no_dfx, Err(CliError::Usage(m)) if m.contains("dfx identity export keyring > keyring.pem")));
        std::fs::remove_dir_all(&home).unwrap();
    }
}
