//! The signed-looking query of the operation URLs Azure was recorded handing out for an account
//! create (`…/operationResults/{id}?api-version=2017-04-18&t=…&c=…&s=…&h=…`). Azure's `t` is a
//! .NET tick count and `c`, `s`, `h` a certificate, a signature and a hash (base64url, ≈2.4 KB,
//! 342 and 43 characters). The emulator cannot sign as Azure does: it draws random base64url text
//! of the recorded lengths, so that clients carry URLs of Azure's size, and answers a URL whose
//! parameters are missing or altered with 404 (an emulator choice, docs/emulator.md).

use jiff::Timestamp;

/// The names of the signed parameters, in the order Azure writes them.
const NAMES: [&str; 4] = ["t", "c", "s", "h"];

/// Lengths of `c`, `s` and `h` in the recordings.
const LENGTHS: [usize; 3] = [2575, 342, 43];

/// .NET ticks (100 ns) from 0001-01-01 to the Unix epoch.
const TICKS_AT_UNIX_EPOCH: i128 = 621_355_968_000_000_000;

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Signature {
    /// The values of [`NAMES`], in that order.
    values: [String; 4],
}

impl Signature {
    /// A fresh signature for an operation started at `now`.
    pub(crate) fn new(now: Timestamp) -> Self {
        let ticks = now.as_nanosecond() / 100 + TICKS_AT_UNIX_EPOCH;
        let [c, s, h] = LENGTHS.map(random_base64url);
        Self {
            values: [ticks.to_string(), c, s, h],
        }
    }

    /// `t=…&c=…&s=…&h=…` (base64url needs no escaping in a query).
    pub(crate) fn query(&self) -> String {
        NAMES
            .iter()
            .zip(&self.values)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Whether `query` carries each signed parameter once, with its value. Their order and the
    /// other parameters do not matter: a client's URL library may reorder a query.
    pub(crate) fn matches(&self, query: &str) -> bool {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        NAMES.iter().zip(&self.values).all(|(name, value)| {
            let mut sent = pairs.iter().filter(|(key, _)| key == name);
            matches!((sent.next(), sent.next()), (Some((_, sent)), None) if sent == value)
        })
    }
}

fn random_base64url(length: usize) -> String {
    std::iter::repeat_with(|| char::from(BASE64URL[fastrand::usize(..BASE64URL.len())]))
        .take(length)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_count_from_year_one_as_dotnet_does() {
        // 2025-06-19T16:44:56.6474781Z, the start of the Deployment cassette's create.
        let at: Timestamp = "2025-06-19T16:44:56.6474781Z".parse().unwrap();
        let signature = Signature::new(at);
        assert!(signature.query().starts_with("t=638859482966474781&c="));
    }

    #[test]
    fn a_query_matches_in_any_order_but_not_altered_or_incomplete() {
        let signature = Signature::new(Timestamp::now());
        let query = signature.query();
        assert!(signature.matches(&format!("api-version=2017-04-18&{query}")));
        let mut reordered: Vec<&str> = query.split('&').collect();
        reordered.reverse();
        assert!(signature.matches(&reordered.join("&")));
        assert!(!signature.matches(&query.replacen("&h=", "&h=x", 1)));
        assert!(!signature.matches(query.split("&h=").next().unwrap()));
        assert!(!signature.matches(&format!("{query}&t=1")));
        assert!(!signature.matches(""));
    }

    #[test]
    fn values_have_the_recorded_lengths_and_alphabet() {
        let signature = Signature::new(Timestamp::now());
        let lengths: Vec<usize> = signature.values[1..].iter().map(String::len).collect();
        assert_eq!(lengths, LENGTHS);
        assert!(
            signature.values[1..]
                .iter()
                .all(|value| value.bytes().all(|byte| BASE64URL.contains(&byte)))
        );
    }
}
