//! The network's keys: a BLS12-381 root key that signs certificates (the
//! IC's scheme: the message hashed to G1 with the IC's domain separator,
//! signature in G1, public key in G2, DER-wrapped as the interface spec
//! says), and one node's Ed25519 key that signs query responses.

use candid::Principal;
use ed25519_dalek::Signer;
use ic_verify_bls_signature::PrivateKey;

/// DER `SubjectPublicKeyInfo` prefix of the IC's BLS12-381 G2 keys (algorithm
/// OID 1.3.6.1.4.1.44668.5.3.1.2.1, curve OID 1.3.6.1.4.1.44668.5.3.2.1).
pub const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03, 0x01, 0x02,
    0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03, 0x02, 0x01, 0x03, 0x61, 0x00,
];
/// DER prefix of an Ed25519 public key (OID 1.3.101.112).
pub const ED25519_DER_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Domain separators of the interface spec (a length byte, then the name).
pub const STATE_ROOT_DOMAIN: &[u8] = b"\x0dic-state-root";
pub const RESPONSE_DOMAIN: &[u8] = b"\x0bic-response";

pub struct Keys {
    root: PrivateKey,
    root_der: Vec<u8>,
    node: ed25519_dalek::SigningKey,
    node_der: Vec<u8>,
}

/// Random bytes from the operating system (keys live only as long as the server).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("reading /dev/urandom");
    buf
}

impl Keys {
    pub fn generate() -> Self {
        let root = loop {
            // Big-endian scalar; most 32-byte strings are below the group order.
            if let Ok(k) = PrivateKey::deserialize(&random_bytes::<32>()) {
                break k;
            }
        };
        let mut root_der = BLS_DER_PREFIX.to_vec();
        root_der.extend_from_slice(&root.public_key().serialize());
        let node = ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>());
        let mut node_der = ED25519_DER_PREFIX.to_vec();
        node_der.extend_from_slice(node.verifying_key().as_bytes());
        Keys { root, root_der, node, node_der }
    }

    /// The root public key, DER-encoded: what `/api/v2/status` hands out.
    pub fn root_key_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Without delegations the root key is the subnet's key, and the subnet
    /// id is the self-authenticating principal of it (as agents assume).
    pub fn subnet_id(&self) -> Principal {
        Principal::self_authenticating(&self.root_der)
    }

    pub fn node_key_der(&self) -> &[u8] {
        &self.node_der
    }

    pub fn node_id(&self) -> Principal {
        Principal::self_authenticating(&self.node_der)
    }

    /// The certificate signature over a state tree's root hash.
    pub fn sign_state_root(&self, root_hash: &[u8; 32]) -> Vec<u8> {
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(root_hash);
        self.root.sign(&msg).serialize().to_vec()
    }

    /// The node's signature over a query response's hash.
    pub fn sign_response(&self, response_hash: &[u8; 32]) -> Vec<u8> {
        let mut msg = RESPONSE_DOMAIN.to_vec();
        msg.extend_from_slice(response_hash);
        self.node.sign(&msg).to_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_verify_under_the_der_root_key() {
        let keys = Keys::generate();
        let root = [9u8; 32];
        let sig = keys.sign_state_root(&root);
        assert_eq!(sig.len(), 48, "a compressed G1 point");
        let der = keys.root_key_der();
        assert_eq!((der.len(), &der[..37]), (133, &BLS_DER_PREFIX[..]));
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(&root);
        assert!(ic_verify_bls_signature::verify_bls_signature(&sig, &msg, &der[37..]).is_ok());
        msg[20] ^= 1;
        assert!(ic_verify_bls_signature::verify_bls_signature(&sig, &msg, &der[37..]).is_err());
        assert_ne!(Keys::generate().root_key_der(), der, "a new key each time");
        assert_eq!(keys.node_key_der().len(), 44);
    }
}
