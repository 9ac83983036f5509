//! Which addresses a webhook may reach (docs/architecture.md §Outbound safety), checked when a
//! webhook is created and again before every attempt. Pure rules: the resolver that applies
//! them to DNS answers lives in `adapters::http_sender`.
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
//! - A webhook URL's shape is one rule, [`check_url`], which the OpenAPI document states exactly
//!   (the REST face's `url_pattern`). Under the production policy its host is a domain name,
//!   never an IP address: which addresses are public is no property a readable pattern can state
//!   (IPv6 spellings, embedded IPv4), so the document would say less than the code; a
//!   certificate for a bare address is rare anyway, and names are what the resolver judges at
//!   connect time. Where private targets are allowed (crm-local, tests) any IP address is taken.
//! - No internationalised host names: the URL parser decodes `xn--` labels and refuses those
//!   that are not valid Punycode, a check no pattern can state, and a Unicode host is no LDH name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest URL a webhook may be given, in characters. What is stored may be a few longer:
/// the parser writes `'` in a query as `%27` and an empty path as `/`.
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

/// The longest host name, in characters (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_HOST_LEN: usize = 253;
/// The longest label of a host name (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// What a path or query may hold besides ASCII letters and digits, `/`, `?` and `%HH`: RFC
/// 3986's unreserved marks, sub-delimiters, `:` and `@`. The URL parser percent-encodes none of
/// them in a path (only `'` in a query, as `%27`).
pub const URL_MARKS: &str = "-._~!$&'()*+,;=:@";

const PRIVATE_TARGET: &str =
    "The URL points to a loopback, private or reserved address, which webhooks may not reach.";
const CREDENTIALS: &str =
    "The URL must not contain a user name or password; send credentials in a custom header instead.";
const NO_HOST: &str = "The URL must have a host.";
const BAD_NAME: &str = "The URL's host must be a domain name: dot-separated labels of 1 to 63 letters, digits and hyphens, none starting or ending with a hyphen.";
const BAD_IPV6: &str = "The URL's host is not a valid IPv6 address in brackets.";

/// Checks the URL a webhook is created with or moved to, and parses it. The error is a sentence
/// for the API user (it becomes a 400's `details.url`).
///
/// The rule, written once here and described exactly by the REST face's `url_pattern`
/// (production policy) for the OpenAPI document:
/// - at most `MAX_URL_LEN` characters;
/// - `https://` (`http://` too with `allow_http`), the scheme in any case;
/// - a host: a domain name (dot-separated labels of 1 to 63 ASCII letters, digits and hyphens,
///   none starting or ending with a hyphen nor starting `xn--`, the last starting with a letter;
///   at most 253 characters, no final dot) or, with `allow_private` only, an IP address
///   (`a.b.c.d` or `[IPv6]`); without `allow_private`, not `localhost` or `*.localhost`;
/// - an optional port from 1 to 65535, without leading zeros;
/// - an optional path (`/…`) and query (`?…`) of ASCII letters and digits, `/`, `?`,
///   `URL_MARKS` and `%` followed by two hex digits; no fragment, no user name or password.
///
/// Stricter than the URL standard, on purpose: its parser would read `*`, `_` or a legacy IPv4
/// spelling (`0x7f.1`) as a host, decode an `xn--` label, and percent-encode or drop
/// characters, so the URL stored would not be the one the document describes.
/// Host names are not resolved here: the sender's resolver filters what they resolve to, at
/// connect time.
pub fn check_url(url: &str, allow_http: bool, allow_private: bool) -> Result<Url, String> {
    if url.chars().count() > MAX_URL_LEN {
        return Err(format!(
            "The URL must be at most {MAX_URL_LEN} characters long."
        ));
    }
    let rest = strip_scheme(url, allow_http)?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(CREDENTIALS.to_owned());
    }
    let host = check_authority(authority)?;
    check_path_and_query(tail)?;
    // Whatever passed the checks above parses; the parser normalises it (lowercase scheme and
    // host, no default port, dot segments resolved, `/` for an empty path).
    let parsed = Url::parse(url).map_err(|e| format!("The URL is not valid: {e}."))?;
    if !allow_private {
        if is_forbidden_host(&host) {
            return Err(PRIVATE_TARGET.to_owned());
        }
        // A public IP literal too: the OpenAPI pattern could not say which addresses are public,
        // and one rule is better than a document that says less than the code.
        if !matches!(host, Host::Domain(_)) {
            return Err("The URL's host must be a domain name, not an IP address.".to_owned());
        }
    }
    Ok(parsed)
}

/// What follows `scheme://`, once the scheme is one the policy allows.
fn strip_scheme(url: &str, allow_http: bool) -> Result<&str, String> {
    let scheme = url.find(':').map(|end| &url[..end]).filter(|scheme| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    let Some(scheme) = scheme else {
        return Err(
            "The URL is not valid: it must be absolute, like https://example.com/hooks.".to_owned(),
        );
    };
    let allowed =
        scheme.eq_ignore_ascii_case("https") || (allow_http && scheme.eq_ignore_ascii_case("http"));
    if !allowed {
        let wanted = if allow_http { "http or https" } else { "https" };
        return Err(format!("The URL must use {wanted}."));
    }
    url[scheme.len() + 1..].strip_prefix("//").ok_or_else(|| {
        "The URL is not valid: its scheme must be followed by `//` and the host.".to_owned()
    })
}

/// Checks `host[:port]` (no user information) and returns the host.
fn check_authority(authority: &str) -> Result<Host<&str>, String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or(BAD_IPV6)?;
            let address: Ipv6Addr = address.parse().map_err(|_| BAD_IPV6)?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or(BAD_IPV6)?),
            };
            (Host::Ipv6(address), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            (check_host(host)?, port)
        }
    };
    let port_ok = |port: &str| {
        port.starts_with(|c: char| ('1'..='9').contains(&c))
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    };
    if port.is_some_and(|port| !port_ok(port)) {
        return Err("The URL's port must be a number from 1 to 65535.".to_owned());
    }
    Ok(host)
}

/// A host outside brackets: a dotted-quad IPv4 address or a domain name.
fn check_host(host: &str) -> Result<Host<&str>, String> {
    if host.is_empty() {
        return Err(NO_HOST.to_owned());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ipv4(ip));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!(
            "The URL's host must be at most {MAX_HOST_LEN} characters long."
        ));
    }
    for label in host.split('.') {
        let ldh = (1..=MAX_LABEL_LEN).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ldh {
            return Err(BAD_NAME.to_owned());
        }
        if label
            .get(..4)
            .is_some_and(|start| start.eq_ignore_ascii_case("xn--"))
        {
            return Err(
                "The URL's host must not contain an internationalised (xn--) label.".to_owned(),
            );
        }
    }
    // The URL standard reads a name ending in a number (`1.2.3`, `0x7f`) as an IPv4 address.
    if !host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        return Err("The URL's host must be an IP address (a.b.c.d) or a domain name whose last label starts with a letter.".to_owned());
    }
    Ok(Host::Domain(host))
}

/// What follows the authority: empty, or `/` or `?` and then letters, digits, `/`, `?`,
/// `URL_MARKS` and `%HH`.
fn check_path_and_query(tail: &str) -> Result<(), String> {
    if tail.contains('#') {
        return Err("The URL must not contain a fragment (#…).".to_owned());
    }
    let mut chars = tail.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let escaped = chars.next().is_some_and(|h| h.is_ascii_hexdigit())
                && chars.next().is_some_and(|h| h.is_ascii_hexdigit());
            if !escaped {
                return Err(
                    "The URL must not contain a % that is not followed by two hexadecimal digits."
                        .to_owned(),
                );
            }
        } else if !(c.is_ascii_alphanumeric() || c == '/' || c == '?' || URL_MARKS.contains(c)) {
            return Err(format!(
                "The URL must not contain {c:?}: percent-encode it."
            ));
        }
    }
    Ok(())
}

/// Parses a stored webhook URL before a delivery attempt. [`check_url`] checked it when it was
/// set, under the rules of that day, and it is kept as the parser wrote it: only what sending
/// needs is checked again (the operator may have turned `http` off since). The caller judges the
/// host, and the resolver what a name resolves to.
pub fn parse_stored_url(url: &str, allow_http: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("The URL is not valid: {e}."))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ if allow_http => return Err("The URL must use http or https.".to_owned()),
        _ => return Err("The URL must use https.".to_owned()),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CREDENTIALS.to_owned());
    }
    if parsed.host().is_none() {
        return Err(NO_HOST.to_owned());
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
        for (url, stored) in [
            ("https://example.com/hooks", "https://example.com/hooks"),
            ("https://example.com", "https://example.com/"),
            (
                "https://example.com:8443/a?b=c",
                "https://example.com:8443/a?b=c",
            ),
            ("https://example.com:443/", "https://example.com/"),
            (
                "HTTPS://Hooks.Example.COM/Path",
                "https://hooks.example.com/Path",
            ),
            (
                "https://localhost.example.com/",
                "https://localhost.example.com/",
            ),
            ("https://notlocalhost/", "https://notlocalhost/"),
            (
                "https://localhost-1.example/",
                "https://localhost-1.example/",
            ),
            ("https://1.2.3.example/", "https://1.2.3.example/"),
            ("https://a--b.example/", "https://a--b.example/"),
            ("https://example.com?x=1", "https://example.com/?x=1"),
            ("https://example.com/a/./b/../c", "https://example.com/a/c"),
            (
                "https://example.com/p;v=1/~a_b-c.d!$&'()*+,=:@%7B?q=/?&x='%20",
                "https://example.com/p;v=1/~a_b-c.d!$&'()*+,=:@%7B?q=/?&x=%27%20",
            ),
        ] {
            let parsed = check_url(url, false, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.as_str(), stored, "{url}");
        }
    }

    #[test]
    fn check_url_takes_ip_addresses_only_where_private_targets_are_allowed() {
        for url in [
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "https://[::ffff:8.8.8.8]:8443/x",
        ] {
            let err = check_url(url, true, false).expect_err(url);
            assert_eq!(
                err, "The URL's host must be a domain name, not an IP address.",
                "{url}"
            );
            assert!(
                check_url(url, false, true).is_ok(),
                "{url} with allow_private"
            );
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
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://255.255.255.255/",
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "http://api.localhost/",
            "http://a.b.LocalHost/",
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
    fn check_url_refuses_hosts_that_are_no_domain_name_or_address_under_every_policy() {
        let label = |n: usize| "a".repeat(n);
        let long_host = |total: usize| {
            // Labels of 63 and a last one to make up `total` characters.
            let mut host = String::new();
            while total - host.len() > 64 {
                host.push_str(&label(63));
                host.push('.');
            }
            host.push_str(&label(total - host.len()));
            host
        };
        let at_limit = long_host(MAX_HOST_LEN);
        assert_eq!(at_limit.len(), 253);
        assert!(check_url(&format!("https://{at_limit}/"), false, false).is_ok());
        assert!(check_url(&format!("https://{}.b/", label(63)), false, false).is_ok());
        for (url, says) in [
            ("https://wu.org*", "domain name"),
            ("https://*.example.com/", "domain name"),
            ("https://under_score.example.com/", "domain name"),
            ("https://-lead.example.com/", "domain name"),
            ("https://trail-.example.com/", "domain name"),
            ("https://a..b/", "domain name"),
            ("https://.example.com/", "domain name"),
            ("https://example.com./", "domain name"),
            ("https://exa mple.com/", "domain name"),
            ("https://b\u{fc}cher.de/", "domain name"),
            ("https://exa%6dple.com/", "domain name"),
            (&format!("https://{}.b/", label(64)), "domain name"),
            (&format!("https://{}/", long_host(254)), "at most 253"),
            ("https://xn--bcher-kva.de/", "xn--"),
            ("https://a.XN--p1ai/", "xn--"),
            ("https://1.2.3/", "last label"),
            ("https://256.0.0.1/", "last label"),
            ("https://example.123/", "last label"),
            ("https://0x7f.1/", "last label"),
            ("https://2130706433/", "last label"),
            ("https://127.1/", "last label"),
            ("https://0177.0.0.1/", "last label"),
            ("https://01.2.3.4/", "last label"),
            ("https://[::1/", "IPv6"),
            ("https://[::1]x/", "IPv6"),
            ("https://[example.com]/", "IPv6"),
            ("https://[::1%25eth0]/", "IPv6"),
        ] {
            for (allow_http, allow_private) in [(false, false), (true, true)] {
                let err = check_url(url, allow_http, allow_private).expect_err(url);
                assert!(err.contains(says), "{url}: {err}");
            }
        }
    }

    #[test]
    fn check_url_takes_ports_from_1_to_65535() {
        for port in ["1", "80", "8443", "65535"] {
            let url = format!("https://example.com:{port}/");
            assert!(check_url(&url, false, false).is_ok(), "{url}");
        }
        for port in ["", "0", "08443", "65536", "99999", "+443", "44a", "80:81"] {
            let url = format!("https://example.com:{port}/");
            let err = check_url(&url, false, false).expect_err(&url);
            assert_eq!(
                err, "The URL's port must be a number from 1 to 65535.",
                "{url}"
            );
        }
    }

    #[test]
    fn check_url_takes_paths_and_queries_of_rfc_3986_characters() {
        for (url, says) in [
            ("https://example.com/a b", "' '"),
            ("https://example.com/{x}", "'{'"),
            ("https://example.com/a|b", "'|'"),
            ("https://example.com/a\\b", "'\\\\'"),
            ("https://example.com/[x]", "'['"),
            ("https://example.com/?q=\"x\"", "'\"'"),
            ("https://example.com/?q=<x>", "'<'"),
            ("https://example.com/^", "'^'"),
            ("https://example.com/`", "'`'"),
            ("https://example.com/caf\u{e9}", "'\u{e9}'"),
            ("https://example.com/%", "% that is not"),
            ("https://example.com/%4", "% that is not"),
            ("https://example.com/%zz", "% that is not"),
            ("https://example.com/%4g", "% that is not"),
            ("https://example.com/#top", "fragment"),
            ("https://example.com#", "fragment"),
        ] {
            let err = check_url(url, true, true).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn check_url_requires_https_unless_http_allowed() {
        let err = check_url("http://example.com/", false, false).expect_err("http");
        assert_eq!(err, "The URL must use https.");
        assert!(check_url("http://example.com/", true, false).is_ok());
        assert!(check_url("HTTP://example.com/", true, false).is_ok());
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://example.com/",
            "httpss://example.com/",
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
            "https://example.com:80@evil.example/",
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
            "https:example.com",
            "https:/example.com",
            "https:///example.com",
            "https://:443/",
            "https://?x",
            " https://example.com/",
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
    }

    #[test]
    fn stored_urls_are_parsed_as_the_sender_needs_them() {
        // Set under older rules: a name with `_`, an IDN, a legacy IPv4 spelling.
        for url in [
            "https://under_score.example.com/",
            "https://xn--bcher-kva.de/",
            "http://2130706433/",
        ] {
            assert!(parse_stored_url(url, true).is_ok(), "{url}");
        }
        assert_eq!(
            parse_stored_url("http://example.com/", false).expect_err("http"),
            "The URL must use https."
        );
        assert!(parse_stored_url("https://u:p@example.com/", true).is_err());
        assert!(parse_stored_url("not a url", true).is_err());
    }
}
