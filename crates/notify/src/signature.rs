//! The signature of a webhook body: `sha256=` and the hex HMAC-SHA256 of
//! the exact bytes sent, keyed with the target's secret (the scheme GitHub
//! uses, so receivers' existing verifiers work).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the `X-Baton-Signature` value starts with: the algorithm.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// The `X-Baton-Signature` value of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{SIGNATURE_PREFIX}{hex}")
}

/// Whether `header` is the signature of `body` under `key`. The comparison
/// is the MAC library's, in constant time.
pub fn verify(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(expected) = header.strip_prefix(SIGNATURE_PREFIX).and_then(decode_hex) else {
        return false;
    };
    let mut mac = mac(key);
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this
    // cannot fail; the fallback only satisfies the type.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2: a key shorter than the block size.
    const KEY: &[u8] = b"Jefe";
    const DATA: &[u8] = b"what do ya want for nothing?";
    const MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn signs_with_hmac_sha256_as_rfc_4231_says() {
        assert_eq!(sign(KEY, DATA), format!("sha256={MAC}"));
    }

    #[test]
    fn rfc_4231_case_6_a_key_longer_than_the_block() {
        let key = [0xaa_u8; 131];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            sign(&key, data),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn verifies_its_own_signature_and_nothing_else() {
        let header = sign(KEY, DATA);
        assert!(verify(KEY, DATA, &header));
        assert!(verify(
            KEY,
            DATA,
            &header.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify(b"other", DATA, &header));
        assert!(!verify(KEY, b"what do ya want for nothing!", &header));
        assert!(!verify(KEY, DATA, MAC), "the prefix is required");
        assert!(!verify(KEY, DATA, "sha256=zz"));
        assert!(!verify(KEY, DATA, "sha256=5bd"));
        assert!(!verify(KEY, DATA, "sha256="));
    }
}
