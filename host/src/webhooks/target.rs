//! Where a webhook may point. A URL is parsed once ([`parse`]): http or https, at most
//! [`MAX_URL_BYTES`], no user or password, a host. Unless the operator allows it
//! (`FUNNEL_WEBHOOK_ALLOW_PRIVATE=1`), no address it reaches may be loopback, private
//! (RFC 1918, `fc00::/7`), link-local, unspecified, shared (CGNAT), multicast or otherwise
//! reserved: the host would otherwise POST, on a producer's behalf, into the network it runs
//! in (SSRF). The check runs when the webhook is registered and again at every delivery, on
//! every address the name resolves to; the HTTP client resolves through [`GuardedResolver`],
//! which hands it only the addresses it checked, so a name that resolves to a public address
//! at the check and to `127.0.0.1` at the connect (DNS rebinding) still cannot reach it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// How long resolving a webhook's host may take.
const RESOLVE_DEADLINE: Duration = Duration::from_secs(5);

/// Whether private targets are allowed (the operator's choice; tests allow them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_private: bool,
}

/// Why a webhook target is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be at most {MAX_URL_BYTES} bytes (got {0})")]
    TooLong(usize),
    #[error("is not a URL: {0}")]
    Unparsable(String),
    #[error("must be an http or https URL (got {0:?})")]
    Scheme(String),
    #[error("must not carry a user name or password")]
    Userinfo,
    #[error("must name a host")]
    NoHost,
    #[error("{host} resolves to {addr}, a {why} address: refused (the operator may allow private targets)")]
    Forbidden { host: String, addr: IpAddr, why: &'static str },
    #[error("{host} does not resolve: {error}")]
    Unresolvable { host: String, error: String },
}

/// Parse a webhook URL (syntax only: [`TargetPolicy::check`] looks at where it leads).
pub(crate) fn parse(text: &str) -> Result<Url, TargetError> {
    if text.len() > MAX_URL_BYTES {
        return Err(TargetError::TooLong(text.len()));
    }
    let url = Url::parse(text).map_err(|e| TargetError::Unparsable(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.scheme().to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Userinfo);
    }
    match url.host() {
        None => Err(TargetError::NoHost),
        Some(Host::Domain("")) => Err(TargetError::NoHost),
        Some(_) => Ok(url),
    }
}

/// What kind of non-public address `ip` is, if it is one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 || (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) {
        Some("reserved")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // An IPv4 address carried in IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`,
    // 6to4 `2002:AABB:CCDD::`) reaches that IPv4 address: judge that one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        ));
    }
    if segments[0] == 0x2002 {
        return non_public_v4(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        ));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // The deprecated IPv4-compatible form `::a.b.c.d`.
        Some("reserved")
    } else {
        None
    }
}

impl TargetPolicy {
    /// `Ok` when this policy lets a webhook reach `ip`.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), TargetError> {
        match non_public(ip) {
            Some(why) if !self.allow_private => Err(TargetError::Forbidden { host: host.to_string(), addr: ip, why }),
            _ => Ok(()),
        }
    }

    /// Every address `host` resolves to (port 0), each checked; an error when any is refused
    /// or none is found.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, TargetError> {
        let unresolvable = |error: String| TargetError::Unresolvable { host: host.to_string(), error };
        let found = tokio::time::timeout(RESOLVE_DEADLINE, tokio::net::lookup_host((host, 0)))
            .await
            .map_err(|_| unresolvable(format!("no answer within {RESOLVE_DEADLINE:?}")))?
            .map_err(|e| unresolvable(e.to_string()))?;
        let addrs: Vec<SocketAddr> = found.collect();
        if addrs.is_empty() {
            return Err(unresolvable("no addresses".into()));
        }
        for addr in &addrs {
            self.check_ip(host, addr.ip())?;
        }
        Ok(addrs)
    }

    /// Check where `url` leads: its IP, or every address its name resolves to now.
    pub async fn check(&self, url: &Url) -> Result<(), TargetError> {
        match url.host() {
            None => Err(TargetError::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(Host::Domain(name)) => self.resolve(name).await.map(|_| ()),
        }
    }
}

/// The HTTP client's resolver for webhook deliveries: resolves, checks every address against
/// the policy, and answers only with those (the client connects to what it is given, so what
/// was checked is what is reached). IP literals never reach a resolver: the sender checks them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuardedResolver(pub TargetPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        non_public(ip.parse().expect("ip")).is_some()
    }

    #[test]
    fn non_public_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "93.184.216.34"] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_parsed_strictly() {
        assert!(parse("https://hooks.example.com/funnel?x=1").is_ok());
        assert_eq!(parse("ftp://example.com/"), Err(TargetError::Scheme("ftp".into())));
        assert_eq!(parse("https://user:pw@example.com/"), Err(TargetError::Userinfo));
        assert_eq!(parse("https://user@example.com/"), Err(TargetError::Userinfo));
        assert!(matches!(parse("not a url"), Err(TargetError::Unparsable(_))));
        assert!(matches!(
            parse(&format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES))),
            Err(TargetError::TooLong(_))
        ));
    }

    #[tokio::test]
    async fn literal_and_named_loopback_are_refused_unless_allowed() {
        let strict = TargetPolicy::default();
        for url in ["http://127.0.0.1:9/", "http://[::1]/", "http://0x7f.1/", "http://localhost/", "http://2130706433/"]
        {
            let url = parse(url).expect("parses");
            assert!(matches!(strict.check(&url).await, Err(TargetError::Forbidden { .. })), "{url}");
        }
        let open = TargetPolicy { allow_private: true };
        assert_eq!(open.check(&parse("http://127.0.0.1:9/").expect("parses")).await, Ok(()));
    }
}
