//! JWTs: the access tokens the emulator mints (HS256 with a per-process key, so no other
//! process's token passes, and one from an earlier run neither), and the client assertions it
//! reads (parsed, never verified: their signature is not checked).

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Caller;

/// base64url without padding on output, with or without it on input.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How long a minted token lives (what Entra's `expires_in` says of its tokens).
pub(super) const LIFETIME_SECS: i64 = 3599;

/// The claims of a minted access token: those of Entra's v1 app tokens that clients and ARM
/// look at, plus `xms_grant` (how it was obtained), which is the emulator's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Claims {
    pub aud: String,
    pub iss: String,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    pub appid: String,
    /// `app` for applications; a managed identity is an application too in Entra's tokens.
    pub idtyp: String,
    /// `client_secret`, `client_assertion` or `managed_identity`.
    pub xms_grant: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// A unique token id.
    pub uti: String,
    pub ver: String,
}

const MANAGED_IDENTITY_GRANT: &str = "managed_identity";

impl Claims {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn service_principal(
        audience: &str,
        tenant: &str,
        client: &str,
        object_id: &str,
        grant: &str,
        now: i64,
        exp: i64,
    ) -> Self {
        Self {
            aud: audience.to_string(),
            iss: format!("https://sts.windows.net/{tenant}/"),
            tid: tenant.to_string(),
            oid: object_id.to_string(),
            sub: object_id.to_string(),
            appid: client.to_string(),
            idtyp: "app".to_string(),
            xms_grant: grant.to_string(),
            iat: now,
            nbf: now,
            exp,
            uti: uuid::Uuid::new_v4().simple().to_string(),
            ver: "1.0".to_string(),
        }
    }

    pub(super) fn managed_identity(
        audience: &str,
        tenant: &str,
        client: &str,
        principal_id: &str,
        now: i64,
    ) -> Self {
        let exp = now + LIFETIME_SECS;
        let grant = MANAGED_IDENTITY_GRANT;
        Self::service_principal(audience, tenant, client, principal_id, grant, now, exp)
    }

    pub(super) fn caller(&self) -> Caller {
        let kind = if self.xms_grant == MANAGED_IDENTITY_GRANT {
            "managedIdentity"
        } else {
            "servicePrincipal"
        };
        Caller {
            client_id: self.appid.clone(),
            object_id: self.oid.clone(),
            tenant_id: self.tid.clone(),
            kind: kind.to_string(),
            grant: self.xms_grant.clone(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum TokenProblem {
    Malformed,
    BadSignature,
}

/// Mints and reads the emulator's access tokens.
pub(super) struct Signer {
    key: hmac::Key,
}

impl Signer {
    /// A fresh random key.
    ///
    /// # Panics
    /// If the system RNG fails.
    pub(super) fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system RNG works");
        Self { key }
    }

    pub(super) fn mint(&self, claims: &Claims) -> String {
        let header = BASE64URL.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
        let payload = BASE64URL.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{header}.{payload}");
        let signature = BASE64URL.encode(hmac::sign(&self.key, signed.as_bytes()).as_ref());
        format!("{signed}.{signature}")
    }

    /// The claims of a token this signer minted (expired or not).
    pub(super) fn read(&self, token: &str) -> Result<Claims, TokenProblem> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenProblem::Malformed)?;
        let (_, payload) = signed.split_once('.').ok_or(TokenProblem::Malformed)?;
        let signature = BASE64URL
            .decode(signature)
            .map_err(|_| TokenProblem::Malformed)?;
        hmac::verify(&self.key, signed.as_bytes(), &signature)
            .map_err(|_| TokenProblem::BadSignature)?;
        let payload = BASE64URL
            .decode(payload)
            .map_err(|_| TokenProblem::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| TokenProblem::Malformed)
    }
}

/// The claims of a JWT read without checking its signature: three base64url parts, the first
/// two JSON objects. `None` when it is not such a JWT.
pub(super) fn unverified_claims(jwt: &str) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return None;
    };
    let object = |part: &str| match serde_json::from_slice(&BASE64URL.decode(part).ok()?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    object(header)?;
    BASE64URL.decode(signature).ok()?;
    object(claims)
}

/// An unsigned JWT with these claims (for tests, which play the federated token issuer).
#[cfg(test)]
pub(super) fn unsigned(claims: &Value) -> String {
    let header = BASE64URL.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
    let claims = BASE64URL.encode(serde_json::to_vec(claims).unwrap_or_default());
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims::service_principal("aud", "t", "c", "o", "client_secret", 1, 3600)
    }

    #[test]
    fn a_minted_token_reads_back_and_a_tampered_one_does_not() {
        let signer = Signer::generate();
        let minted = claims();
        let token = signer.mint(&minted);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(signer.read(&token), Ok(minted));
        let (signed, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", BASE64URL.encode(b"forged"));
        assert_eq!(signer.read(&forged), Err(TokenProblem::BadSignature));
        assert_eq!(signer.read("test-token"), Err(TokenProblem::Malformed));
        assert_eq!(
            Signer::generate().read(&token),
            Err(TokenProblem::BadSignature)
        );
    }

    #[test]
    fn assertions_must_be_three_parts_of_json() {
        let jwt = unsigned(&serde_json::json!({"sub": "s"}));
        assert_eq!(unverified_claims(&jwt).unwrap()["sub"], "s");
        assert!(unverified_claims("a.b").is_none());
        assert!(unverified_claims("not.a.jwt").is_none());
        let not_json = format!("{}.{}.", BASE64URL.encode("{}"), BASE64URL.encode("[1]"));
        assert!(unverified_claims(&not_json).is_none());
    }

    #[test]
    fn the_grant_says_what_kind_of_caller_it_was() {
        let managed = Claims::managed_identity("aud", "t", "mi-client", "mi-principal", 1);
        let caller = managed.caller();
        assert_eq!(caller.kind, "managedIdentity");
        assert_eq!(caller.grant, "managed_identity");
        assert_eq!(caller.object_id, "mi-principal");
        assert_eq!(claims().caller().kind, "servicePrincipal");
    }
}
