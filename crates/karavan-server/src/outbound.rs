//! Outbound HTTP: the checks on URLs Karavan calls (webhooks now, feeds later), the guarded client, and
//! the webhook signature.
//!
//! Architecture invariant: every outbound request goes through [`OutboundClient`], whose resolver
//! refuses private, loopback and link-local addresses unless the operator allowed them. Checking the
//! addresses at connection time (not only when a URL is registered) also covers redirects and DNS
//! records that change after the check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::{Digest, Sha256};

/// Settings of outbound requests.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Let requests reach private, loopback and link-local addresses (`--allow-private-webhooks`).
    pub allow_private: bool,
    pub connect_timeout: Duration,
    /// The whole request, from connecting to the last byte of the response read.
    pub timeout: Duration,
    /// The most response bytes read (the rest is dropped).
    pub max_response_bytes: usize,
    /// The most redirects followed (each checked like the first URL).
    pub max_redirects: usize,
}

impl Default for OutboundConfig {
    fn default() -> OutboundConfig {
        OutboundConfig {
            allow_private: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            max_redirects: 3,
        }
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared (CGNAT),
/// multicast, documentation, benchmarking or otherwise reserved, in IPv4 or IPv6 (with IPv4 addresses
/// mapped or translated into IPv6 judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

/// IPv6 by allow-list, after the IANA IPv6 special-purpose address registry: only global unicast
/// (2000::/3) outside its special blocks, and IPv4 addresses carried in IPv4-mapped (::ffff:0:0/96)
/// or well-known NAT64 (64:ff9b::/96) form, judged as IPv4. Everything else is refused: loopback,
/// unspecified, IPv4-compatible and IPv4-translated forms (`::127.0.0.1`, `::ffff:0:7f00:1`),
/// discard-only (100::/64), unique local, link-local, multicast, local-use NAT64 (64:ff9b:1::/48),
/// the IETF protocol block 2001::/23 (Teredo, benchmarking, ORCHID, …), documentation (2001:db8::/32,
/// 3fff::/20) and 6to4 (2002::/16, whose relays are deprecated and whose embedded IPv4 address
/// may be anything, 127.0.0.1 included).
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if segments[..6] == [0, 0, 0, 0, 0, 0xffff] {
        let [.., high, low] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    let first = segments[0];
    let global_unicast = (first & 0xe000) == 0x2000;
    global_unicast
        && !(first == 0x2001 && segments[1] < 0x0200)
        && !(first == 0x2001 && segments[1] == 0x0db8)
        && first != 0x2002
        && !(first == 0x3fff && segments[1] < 0x1000)
}

/// Checks a URL a member gives for Karavan to call: http or https, a host, no credentials in it, and
/// (unless private addresses are allowed) not a private address or a name for the local machine.
/// Names are resolved again, and checked, on every connection.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, String> {
    if text.len() > 2048 {
        return Err("is longer than 2048 characters".to_string());
    }
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; sign with the webhook secret instead".to_string());
    }
    let Some(host) = url.host() else {
        return Err(format!("{text:?} has no host"));
    };
    if allow_private {
        return Ok(url);
    }
    let refused = || {
        format!(
            "{text:?} points at a private, loopback or link-local address; the operator must start the server \
             with --allow-private-webhooks to allow that"
        )
    };
    match host {
        url::Host::Ipv4(ip) if !is_public_v4(ip) => Err(refused()),
        url::Host::Ipv6(ip) if !is_public_v6(ip) => Err(refused()),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local") || !name.contains('.') {
                Err(refused())
            } else {
                Ok(url)
            }
        }
        _ => Ok(url),
    }
}

/// Resolves names with the system resolver and drops every address that is not public (unless
/// allowed); a name with no public address fails to resolve.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|address| allow_private || is_public(address.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} has no public address (private addresses are not allowed)").into());
            }
            let addresses: Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

/// The one HTTP client for outbound requests.
#[derive(Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    config: Arc<OutboundConfig>,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient").field("config", &self.config).finish()
    }
}

/// What came back from a POST.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The start of the response body (at most `max_response_bytes`).
    pub body: Vec<u8>,
}

impl OutboundClient {
    pub fn new(config: OutboundConfig) -> Result<OutboundClient, String> {
        let allow_private = config.allow_private;
        let max_redirects = config.max_redirects;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            // Names are checked by the resolver when connecting; literal addresses are checked here.
            let literal = match attempt.url().host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            match literal {
                Some(ip) if !allow_private && !is_public(ip) => {
                    attempt.error(format!("redirect to a private address ({ip}) refused"))
                }
                _ if !matches!(attempt.url().scheme(), "http" | "https") => attempt.error("redirect to another scheme"),
                _ => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("Karavan/", env!("CARGO_PKG_VERSION"), " (+outbound: webhooks and feeds)"))
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(redirects)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(OutboundClient { client, config: Arc::new(config) })
    }

    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// POSTs `body` with `headers`; reads at most `max_response_bytes` of the answer. A URL whose host is
    /// a literal private address is refused here too (the resolver never sees those).
    pub async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Result<Answer, String> {
        let url = check_url(url, self.config.allow_private)?;
        let mut request = self.client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < self.config.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is what counts; a body cut short is not a failed delivery.
                Err(_) => break,
            }
        }
        body.truncate(self.config.max_response_bytes);
        Ok(Answer { status, body })
    }
}

/// What came back from a GET: the status, the validators and `Retry-After`, and the whole body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl OutboundClient {
    /// GETs `url` with `headers` (conditional-GET validators); a body over `max_bytes` is an error.
    pub async fn get(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        max_bytes: usize,
    ) -> Result<Fetched, String> {
        let url = check_url(url, self.config.allow_private)?;
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(describe)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (etag, last_modified, retry_after) = (header("etag"), header("last-modified"), header("retry-after"));
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            body.extend_from_slice(&chunk);
            if body.len() > max_bytes {
                return Err(format!("the response is larger than {max_bytes} bytes"));
            }
        }
        Ok(Fetched { status, etag, last_modified, retry_after, body })
    }
}

/// A reqwest error with its causes, which say what really went wrong (refused, timed out, …).
fn describe(error: reqwest::Error) -> String {
    let mut message = if error.is_timeout() { "timed out".to_string() } else { error.to_string() };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Karavan-Signature` header: `t=UNIX_SECONDS,v1=HEX`, HEX being
/// HMAC-SHA256(secret, "UNIX_SECONDS.BODY").
pub fn signature_header(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut message = format!("{unix_seconds}.").into_bytes();
    message.extend_from_slice(body);
    format!("t={unix_seconds},v1={}", hex(&hmac_sha256(secret.as_bytes(), &message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 of RFC 4231.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signature_header_signs_timestamp_and_body() {
        let header = signature_header("whsec", 1_700_000_000, b"{}");
        let expected = hex(&hmac_sha256(b"whsec", b"1700000000.{}"));
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn private_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
            // Found from outside: 6to4 of 127.0.0.1, IPv4-translated 127.0.0.1, discard-only.
            "2002:7f00:1::",
            "2002:808:808::1",
            "::ffff:0:7f00:1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "64:ff9b:1::a00:1",
            "64:ff9b::7f00:1",
            "5f00::1",
            "4000::1",
            "192.88.99.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} must not count as public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450:4001::1",
            "2001:4860:4860::8888",
            "2400:cb00::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.example.com/karavan", false).is_ok());
        for refused in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
            "http://api.localhost/hook",
            "http://printer.local/hook",
            "http://intranet/hook",
            "http://[::ffff:192.168.0.1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://[::ffff:0:7f00:1]/hook",
            "http://[100::1]/hook",
        ] {
            let error = check_url(refused, false).unwrap_err();
            assert!(error.contains("--allow-private-webhooks"), "{refused}: {error}");
            assert!(check_url(refused, true).is_ok(), "{refused} is allowed when private addresses are");
        }
        assert!(check_url("ftp://example.com/x", true).unwrap_err().contains("http or https"));
        assert!(check_url("https://user:pw@example.com/x", true).unwrap_err().contains("credentials"));
        assert!(check_url("not a url", true).is_err());
    }

    #[tokio::test]
    async fn the_client_refuses_private_addresses_by_name_and_literal() {
        let client = OutboundClient::new(OutboundConfig::default()).unwrap();
        let error = client.post("http://127.0.0.1:9/hook", Vec::new(), Vec::new()).await.unwrap_err();
        assert!(error.contains("private"), "{error}");
        // A name that resolves only to loopback fails in the resolver, before any connection.
        let guarded = GuardedResolver { allow_private: false };
        let name: Name = "localhost".parse().unwrap();
        let refused = guarded.resolve(name).await.err().unwrap().to_string();
        assert!(refused.contains("no public address"), "{refused}");
        let open = GuardedResolver { allow_private: true };
        let addresses: Vec<SocketAddr> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addresses.iter().any(|a| a.ip().is_loopback()));
    }
}
