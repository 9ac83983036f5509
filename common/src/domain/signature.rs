//! Webhook signatures: seed 000's `X-Webhook-Signature` and the Standard Webhooks `webhook-signature`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";

/// Seed 000: lowercase hex HMAC-SHA256 of the exact body, keyed with the secret string exactly as
/// the API returned it (UTF-8 bytes, `whsec_` prefix included), as a seed-era receiver computes it.
pub fn seed_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(mac(secret.as_bytes(), &[body]))
}

/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the bytes the
/// base64 after `whsec_` decodes to. `None` if the secret is not in that form.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = secret_key_bytes(secret)?;
    let timestamp = timestamp.to_string();
    let tag = mac(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    Some(format!("v1,{}", STANDARD.encode(tag)))
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn secret_key_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Receiver side, for our tests and for users' Rust receivers: checks a seed signature in
/// constant time.
pub fn verify_seed_signature(secret: &str, body: &[u8], signature_hex: &str) -> bool {
    let Ok(expected) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Receiver side: checks a `webhook-signature` header (space-separated `v1,<sig>` entries; any
/// one valid entry passes) in constant time per entry.
pub fn verify_standard_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let Some(key) = secret_key_bytes(secret) else {
        return false;
    };
    let timestamp = timestamp.to_string();
    header.split(' ').any(|entry| {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            return false;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
            return false;
        };
        for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
            mac.update(part);
        }
        mac.verify_slice(&expected).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn standard_webhooks_known_answer() {
        assert_eq!(
            standard_signature(SECRET, ID, TIMESTAMP, BODY).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn seed_signature_known_answer() {
        // Python: hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
        assert_eq!(
            seed_signature(SECRET, BODY),
            "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"
        );
    }

    #[test]
    fn verification_accepts_ours_and_refuses_tampering() {
        let signature = seed_signature(SECRET, BODY);
        assert!(verify_seed_signature(SECRET, BODY, &signature));
        assert!(!verify_seed_signature(SECRET, b"{\"test\": 1}", &signature));
        assert!(!verify_seed_signature("whsec_other", BODY, &signature));
        assert!(!verify_seed_signature(SECRET, BODY, "zz"));

        let header = standard_signature(SECRET, ID, TIMESTAMP, BODY).unwrap();
        assert!(verify_standard_signature(
            SECRET, ID, TIMESTAMP, BODY, &header
        ));
        assert!(!verify_standard_signature(
            SECRET,
            ID,
            TIMESTAMP + 1,
            BODY,
            &header
        ));
        assert!(!verify_standard_signature(
            SECRET,
            "msg_other",
            TIMESTAMP,
            BODY,
            &header
        ));
        assert!(!verify_standard_signature(
            SECRET, ID, TIMESTAMP, BODY, "v1,AAAA"
        ));
    }

    #[test]
    fn any_entry_of_a_rotation_header_verifies() {
        let old = "whsec_dGhlIG9sZCBzZWNyZXQgb2YgdGhpcyB3ZWJob29r";
        let header = format!(
            "{} {}",
            standard_signature(SECRET, ID, TIMESTAMP, BODY).unwrap(),
            standard_signature(old, ID, TIMESTAMP, BODY).unwrap()
        );
        assert!(verify_standard_signature(
            SECRET, ID, TIMESTAMP, BODY, &header
        ));
        assert!(verify_standard_signature(old, ID, TIMESTAMP, BODY, &header));
    }
}
