//! Host lists as Exim writes them: `*`, addresses, CIDR ranges, names, `!` negation.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

/// A host list in Exim's syntax, matched against a peer's address (and name, when known).
///
/// - Items are separated by `:`; a doubled `::` stands for a literal colon, so IPv6 addresses
///   are written `::::1` — or change the separator with a leading `<;` and write
///   `<; ::1 ; 2001:db8::/32`, as in Exim.
/// - An item is `*` (any host), an IPv4 or IPv6 address, a CIDR range (`192.0.2.0/24`), a
///   host name (matched case-insensitively against the peer's name), or a name with a leading
///   `*` wildcard (`*.example.net`).
/// - A leading `!` negates an item. The first item that matches decides; if none matches, the
///   list matches only when its last item was negated (`!192.0.2.1` alone means "every host
///   but 192.0.2.1"), as in Exim.
///
/// ```
/// use tlsresume_core::HostList;
///
/// let list: HostList = "!192.0.2.7 : 192.0.2.0/24 : *.example.net".parse()?;
/// assert!(list.matches("192.0.2.1".parse().unwrap(), None));
/// assert!(!list.matches("192.0.2.7".parse().unwrap(), None));
/// assert!(list.matches("198.51.100.1".parse().unwrap(), Some("mx.example.net")));
/// assert!(!list.matches("198.51.100.1".parse().unwrap(), None));
/// # Ok::<(), tlsresume_core::model::hostlist::HostListError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostList {
    items: Vec<Item>,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Item {
    negated: bool,
    pattern: Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Address(IpAddr),
    Cidr(IpAddr, u8),
    Name(String),
    /// `*suffix`: the name ends with `suffix`.
    Wildcard(String),
}

/// A host list item that is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad host list item '{item}': {why}")]
pub struct HostListError {
    /// The item as written.
    pub item: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl HostList {
    /// A list that matches every host (`*`).
    pub fn any() -> Self {
        Self {
            items: vec![Item {
                negated: false,
                pattern: Pattern::Any,
            }],
            text: "*".into(),
        }
    }

    /// A list that matches no host (empty).
    pub fn none() -> Self {
        Self {
            items: Vec::new(),
            text: String::new(),
        }
    }

    /// Whether the list is empty (matches nothing).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the peer at `ip`, named `name` if known, is in the list.
    pub fn matches(&self, ip: IpAddr, name: Option<&str>) -> bool {
        let ip = canonical_ip(ip);
        for item in &self.items {
            let hit = match &item.pattern {
                Pattern::Any => true,
                Pattern::Address(a) => *a == ip,
                Pattern::Cidr(net, len) => in_cidr(ip, *net, *len),
                Pattern::Name(n) => name.is_some_and(|peer| peer.eq_ignore_ascii_case(n)),
                Pattern::Wildcard(suffix) => name.is_some_and(|peer| {
                    peer.len() >= suffix.len()
                        && peer.as_bytes()[peer.len() - suffix.len()..]
                            .eq_ignore_ascii_case(suffix.as_bytes())
                }),
            };
            if hit {
                return !item.negated;
            }
        }
        self.items.last().is_some_and(|last| last.negated)
    }
}

impl fmt::Display for HostList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HostList {
    type Err = HostListError;

    fn from_str(text: &str) -> Result<Self, HostListError> {
        let items = split_list(text)
            .into_iter()
            .map(|raw| parse_item(&raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            items,
            text: text.trim().to_owned(),
        })
    }
}

/// Splits an Exim list: optional `<c` separator change, doubled separator as a literal.
fn split_list(text: &str) -> Vec<String> {
    let mut rest = text.trim_start();
    let mut sep = ':';
    if let Some(after) = rest.strip_prefix('<') {
        let mut chars = after.chars();
        if let Some(c) = chars.next().filter(|c| !c.is_whitespace()) {
            sep = c;
            rest = chars.as_str();
        }
    }
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == sep {
            if chars.peek() == Some(&sep) {
                chars.next();
                current.push(sep);
            } else {
                items.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

fn parse_item(raw: &str) -> Result<Item, HostListError> {
    let bad = |why| HostListError {
        item: raw.to_owned(),
        why,
    };
    let (negated, body) = match raw.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, raw),
    };
    if body.is_empty() {
        return Err(bad("nothing after '!'"));
    }
    if body == "*" {
        return Ok(Item {
            negated,
            pattern: Pattern::Any,
        });
    }
    if let Some((addr, len)) = body.split_once('/') {
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| bad("the part before '/' is not an IP address"))?;
        let len: u8 = len
            .trim()
            .parse()
            .map_err(|_| bad("the prefix length is not a number"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(bad("the prefix length is longer than the address"));
        }
        return Ok(Item {
            negated,
            pattern: Pattern::Cidr(canonical_ip(addr), len),
        });
    }
    if let Ok(addr) = body.parse::<IpAddr>() {
        return Ok(Item {
            negated,
            pattern: Pattern::Address(canonical_ip(addr)),
        });
    }
    if body.contains(':') {
        return Err(bad(
            "not an IP address (write IPv6 colons doubled, or use '<;')",
        ));
    }
    let (wild, name) = match body.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !valid {
        return Err(bad(
            "not '*', an address, a CIDR range or a host name (letters, digits, '-', '.', '_')",
        ));
    }
    Ok(Item {
        negated,
        pattern: if wild {
            Pattern::Wildcard(name.to_ascii_lowercase())
        } else {
            Pattern::Name(name.to_ascii_lowercase())
        },
    })
}

/// An address as host lists and caches compare it: an IPv4-mapped IPv6 address as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn list(s: &str) -> HostList {
        s.parse().expect("list")
    }

    #[test]
    fn star_matches_all_and_empty_matches_none() {
        assert!(list("*").matches(ip("203.0.113.9"), None));
        assert!(!list("").matches(ip("203.0.113.9"), None));
        assert!(HostList::any().matches(ip("::1"), None));
        assert!(!HostList::none().matches(ip("::1"), None));
    }

    #[test]
    fn first_match_wins_and_trailing_negation_matches_the_rest() {
        let l = list("!192.0.2.1 : 192.0.2.0/24");
        assert!(!l.matches(ip("192.0.2.1"), None));
        assert!(l.matches(ip("192.0.2.2"), None));
        assert!(!l.matches(ip("198.51.100.1"), None));
        let all_but = list("!192.0.2.1");
        assert!(!all_but.matches(ip("192.0.2.1"), None));
        assert!(all_but.matches(ip("192.0.2.2"), None));
    }

    #[test]
    fn ipv6_by_doubled_colons_and_by_separator_change() {
        let doubled = list("::::1 : 2001::db8::::/32");
        assert!(doubled.matches(ip("::1"), None));
        assert!(doubled.matches(ip("2001:db8::5"), None));
        let semi = list("<; ::1 ; 2001:db8::/32 ; 127.0.0.1");
        assert!(semi.matches(ip("::1"), None));
        assert!(semi.matches(ip("2001:db8:1::1"), None));
        assert!(semi.matches(ip("::ffff:127.0.0.1"), None));
        assert!(!semi.matches(ip("2001:db9::1"), None));
    }

    #[test]
    fn names_and_wildcards_match_case_insensitively() {
        let l = list("mx.Example.net : *.example.org");
        assert!(l.matches(ip("192.0.2.1"), Some("MX.example.NET")));
        assert!(l.matches(ip("192.0.2.1"), Some("a.b.example.org")));
        assert!(!l.matches(ip("192.0.2.1"), Some("example.org")));
        assert!(!l.matches(ip("192.0.2.1"), None));
    }

    #[test]
    fn cidr_edges() {
        assert!(list("0.0.0.0/0").matches(ip("8.8.8.8"), None));
        assert!(list("192.0.2.128/25").matches(ip("192.0.2.200"), None));
        assert!(!list("192.0.2.128/25").matches(ip("192.0.2.1"), None));
        assert!(list("192.0.2.1/32").matches(ip("192.0.2.1"), None));
        assert!(!list("192.0.2.0/24").matches(ip("::1"), None));
    }

    #[test]
    fn malformed_items_are_named_in_the_error() {
        for (text, item) in [
            ("192.0.2.0/33", "192.0.2.0/33"),
            ("* : 10.0.0.0/x", "10.0.0.0/x"),
            ("bad host", "bad host"),
            ("!", "!"),
            ("host/24", "host/24"),
            ("<; 2001:zz::1", "2001:zz::1"),
        ] {
            let err = text.parse::<HostList>().expect_err(text);
            assert_eq!(err.item, item, "{text}");
            assert!(err.to_string().contains(item));
        }
    }
}
