//! Which addresses a webhook may reach (DESIGN §Delivery 6), checked when a webhook is created
//! and again before every attempt. Pure rules: the resolver that applies them to DNS answers
//! lives in `adapters::http_sender`.
//!
//! Decisions:
//! - An IPv6 address that embeds an IPv4 address (mapped `::ffff:0:0/96`, translated
//!   `::ffff:0:0:0/96`, compatible `::/96`, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`) is judged by
//!   the IPv4 address it carries: the forbidden ones are refused, a public one is allowed. Such a
//!   packet reaches that same IPv4 host, and an IPv6-only network with DNS64 answers every
//!   IPv4-only receiver with a `64:ff9b::` address, so refusing public ones would break delivery.
//! - The local-use NAT64 prefix `64:ff9b:1::/48` is refused whole: where an operator embeds the
//!   IPv4 address in it is site-specific, and it never routes on the internet.
//! - `2001::/23` (IETF protocol assignments: Teredo, benchmarking, ORCHID) is refused whole, like
//!   its IPv4 twin `192.0.0.0/24`; Teredo hides an IPv4 address we could not judge otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest URL a webhook may have, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// IPv4 ranges no webhook may reach: (network, prefix length).
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", incl. 0.0.0.0
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // RFC 1918
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT shared address space
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, incl. cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // RFC 1918
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // former 6to4 relay anycast, reserved
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // RFC 1918
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, incl. broadcast 255.255.255.255
];

/// IPv6 ranges no webhook may reach, whatever they embed: (network, prefix length).
const FORBIDDEN_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128),                         // ::
    (Ipv6Addr::LOCALHOST, 128),                           // ::1
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),  // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),      // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),     // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation (RFC 9637)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),      // unique local (ULA)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),     // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),     // site-local (deprecated, still local)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),      // multicast
];

/// Whether a webhook must not connect to `ip`: loopback, private, link-local, CGNAT, ULA,
/// multicast, documentation and other reserved ranges, and every IPv6 form of such an IPv4
/// address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            FORBIDDEN_V6
                .iter()
                .any(|&(net, len)| in_prefix(bits, u128::from(net), len, 128))
                || embedded_ipv4(v6).is_some_and(is_forbidden_v4)
        }
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u128::from(u32::from(ip));
    FORBIDDEN_V4
        .iter()
        .any(|&(net, len)| in_prefix(bits, u128::from(u32::from(net)), len, 32))
}

/// Whether `addr` lies in `net/len`, both being `width`-bit numbers.
fn in_prefix(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let host_bits = width - u32::from(len);
    addr.checked_shr(host_bits).unwrap_or(0) == net.checked_shr(host_bits).unwrap_or(0)
}

/// The IPv4 address an IPv6 address carries to an IPv4 host, if it is of such a form.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from_segments = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let low32 = from_segments(s[6], s[7]);
    match s {
        // ::a.b.c.d (compatible, deprecated) and ::ffff:a.b.c.d (mapped).
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _] => Some(low32),
        // ::ffff:0:a.b.c.d (translated, RFC 2765 SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32),
        // 64:ff9b::a.b.c.d (well-known NAT64 prefix, RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        // 2002:AABB:CCDD::/48 (6to4) carries AA.BB.CC.DD in bits 16..48.
        [0x2002, hi, lo, ..] => Some(from_segments(hi, lo)),
        _ => None,
    }
}

/// Parses a webhook URL and checks that deliveries may go there. The error is a sentence for
/// the API user (it becomes a 400's `details.url`).
///
/// `allow_http` admits `http` besides `https`; `allow_private` admits IP literals in forbidden
/// ranges and `localhost` (both only in `crm-local` and in tests). Host names are not resolved
/// here: the sender's resolver filters what they resolve to, at connect time.
pub fn check_url(url: &str, allow_http: bool, allow_private: bool) -> Result<Url, String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!(
            "The URL must be at most {MAX_URL_LEN} characters long."
        ));
    }
    let parsed = Url::parse(url).map_err(|e| format!("The URL is not valid: {e}."))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ if allow_http => return Err("The URL must use http or https.".to_owned()),
        _ => return Err("The URL must use https.".to_owned()),
    }
    // Normalisation (percent-encoding, IDNA) may lengthen what was sent.
    if parsed.as_str().len() > MAX_URL_LEN {
        return Err(format!(
            "The URL must be at most {MAX_URL_LEN} characters long."
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "The URL must not contain a user name or password; send credentials in a custom header instead."
                .to_owned(),
        );
    }
    let Some(host) = parsed.host() else {
        return Err("The URL must have a host.".to_owned());
    };
    if !allow_private && is_forbidden_host(&host) {
        return Err(
            "The URL points to a loopback, private or reserved address, which webhooks may not reach."
                .to_owned(),
        );
    }
    Ok(parsed)
}

/// Whether a URL's host is, without any DNS lookup, a place no webhook may reach: a forbidden IP
/// literal, `localhost` or a `*.localhost` name. Other names are judged by what they resolve to.
pub fn is_forbidden_host(host: &Host<&str>) -> bool {
    match *host {
        Host::Ipv4(ip) => is_forbidden(IpAddr::V4(ip)),
        Host::Ipv6(ip) => is_forbidden(IpAddr::V6(ip)),
        Host::Domain(name) => is_localhost(name),
    }
}

/// `localhost` and every `*.localhost` name resolve to loopback by convention (RFC 6761).
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Every range, its edges just inside, and the neighbours just outside.
    const FORBIDDEN: &[&str] = &[
        // 0.0.0.0/8
        "0.0.0.0",
        "0.255.255.255",
        // 10/8
        "10.0.0.0",
        "10.255.255.255",
        // 100.64/10
        "100.64.0.0",
        "100.127.255.255",
        // 127/8
        "127.0.0.0",
        "127.0.0.1",
        "127.255.255.255",
        // 169.254/16
        "169.254.0.0",
        "169.254.169.254",
        "169.254.255.255",
        // 172.16/12
        "172.16.0.0",
        "172.31.255.255",
        // 192.0.0/24
        "192.0.0.0",
        "192.0.0.255",
        // 192.0.2/24
        "192.0.2.0",
        "192.0.2.255",
        // 192.88.99/24
        "192.88.99.1",
        // 192.168/16
        "192.168.0.0",
        "192.168.255.255",
        // 198.18/15
        "198.18.0.0",
        "198.19.255.255",
        // 198.51.100/24
        "198.51.100.0",
        "198.51.100.255",
        // 203.0.113/24
        "203.0.113.0",
        "203.0.113.255",
        // 224/4
        "224.0.0.0",
        "239.255.255.255",
        // 240/4 and broadcast
        "240.0.0.0",
        "255.255.255.254",
        "255.255.255.255",
        // IPv6 own ranges
        "::",
        "::1",
        "fc00::",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::",
        "fe80::1",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::1",
        "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ff00::",
        "ff02::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff::1",
        "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
        "100::1",
        "100::ffff:ffff:ffff:ffff",
        "2001::1",
        "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
        "64:ff9b:1::",
        "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        "64:ff9b:1::808:808",
        // IPv4-mapped forms of forbidden IPv4
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "::ffff:255.255.255.255",
        // IPv4-translated ::ffff:0:0/96
        "::ffff:0:7f00:1",
        "::ffff:0:a00:1",
        // IPv4-compatible
        "::127.0.0.1",
        "::10.1.2.3",
        "::0.0.0.2",
        "::192.168.1.1",
        // 6to4 embedding forbidden IPv4
        "2002:7f00:1::",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2002:c0a8:101:ffff:ffff:ffff:ffff:ffff",
        "2002::",
        // NAT64 embedding forbidden IPv4
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::c0a8:1",
        "64:ff9b::",
    ];

    const ALLOWED: &[&str] = &[
        // public IPv4, including the neighbours just outside each range
        "8.8.8.8",
        "1.1.1.1",
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        // public IPv6
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "3ffe:ffff::1",
        "4000::1",
        "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe00::1",
        "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff:1000::",
        "::2:0:0",
        "100:0:0:1::",
        "101::1",
        // embedded public IPv4: same host as the IPv4 address itself
        "::ffff:8.8.8.8",
        "::ffff:0:808:808",
        "::8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::8.8.8.8",
        "64:ff9b::101:101",
        "64:ff9b:0:1::1",
        "64:ff9b:2::1",
        "::fffe:7f00:1",
    ];

    #[test]
    fn forbidden_addresses_are_refused() {
        for s in FORBIDDEN {
            assert!(is_forbidden(ip(s)), "{s} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for s in ALLOWED {
            assert!(!is_forbidden(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn embedded_ipv4_is_read_from_each_form() {
        let want = Some(Ipv4Addr::new(192, 168, 1, 2));
        for s in [
            "::ffff:192.168.1.2",
            "::ffff:0:c0a8:102",
            "::192.168.1.2",
            "2002:c0a8:102::",
            "64:ff9b::192.168.1.2",
        ] {
            let IpAddr::V6(v6) = ip(s) else {
                panic!("{s} is not IPv6")
            };
            assert_eq!(embedded_ipv4(v6), want, "{s}");
        }
        let IpAddr::V6(v6) = ip("2606:4700::1") else {
            panic!("not IPv6")
        };
        assert_eq!(embedded_ipv4(v6), None);
    }

    #[test]
    fn check_url_accepts_public_https_urls() {
        for url in [
            "https://example.com/hooks",
            "https://example.com:8443/a?b=c",
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://localhost.example.com/",
            "https://notlocalhost/",
        ] {
            let parsed = check_url(url, false, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(parsed.host().is_some());
        }
    }

    #[test]
    fn check_url_refuses_forbidden_hosts_unless_private_allowed() {
        for url in [
            "http://127.0.0.1/",
            "http://127.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[::1]/",
            "http://[::]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://255.255.255.255/",
            // legacy IPv4 spellings the URL standard normalises to 127.0.0.1
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "http://localhost./",
            "http://api.localhost/",
            "http://a.b.LocalHost./",
        ] {
            let err = check_url(url, true, false).expect_err(url);
            assert!(err.contains("may not reach"), "{url}: {err}");
            assert!(
                check_url(url, true, true).is_ok(),
                "{url} with allow_private"
            );
        }
    }

    #[test]
    fn check_url_requires_https_unless_http_allowed() {
        let err = check_url("http://example.com/", false, false).expect_err("http");
        assert_eq!(err, "The URL must use https.");
        assert!(check_url("http://example.com/", true, false).is_ok());
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://example.com/",
        ] {
            assert!(check_url(url, false, false).is_err(), "{url}");
            let err = check_url(url, true, true).expect_err(url);
            assert_eq!(err, "The URL must use http or https.", "{url}");
        }
    }

    #[test]
    fn check_url_refuses_credentials() {
        for url in [
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
        ] {
            let err = check_url(url, true, true).expect_err(url);
            assert!(err.contains("user name or password"), "{url}: {err}");
        }
    }

    #[test]
    fn check_url_refuses_malformed_and_hostless_urls() {
        for url in [
            "",
            "example.com/hook",
            "/relative",
            "https://",
            "https://[::1/",
            "https://exa mple.com/",
            "https://256.0.0.1/",
        ] {
            let err = check_url(url, true, true).expect_err(url);
            assert!(err.starts_with("The URL"), "{url}: {err}");
        }
    }

    #[test]
    fn check_url_limits_length() {
        let base = "https://example.com/";
        let at_limit = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(check_url(&at_limit, false, false).is_ok());
        let over = format!("{at_limit}a");
        let err = check_url(&over, false, false).expect_err("too long");
        assert_eq!(err, "The URL must be at most 2048 characters long.");
        // Percent-encoding on parse may push a URL over the limit: `{` becomes `%7B`.
        let braces = format!("{base}{}", "{".repeat(MAX_URL_LEN - base.len()));
        let err = check_url(&braces, false, false).expect_err("too long once encoded");
        assert_eq!(err, "The URL must be at most 2048 characters long.");
    }
}
