//! The one hardened outbound HTTP client, shared by the OAuth broker and the proxy: redirects
//! are never followed, proxy environment variables are ignored, every call has a deadline, and
//! every URL is vetted before it is used.
//!
//! Vetting happens twice, at two depths: [`vet`] checks the URL (scheme, userinfo, literal IP
//! addresses) before anything is sent, and the client's resolver checks every address a name
//! resolves to and hands the connector only the addresses that passed, so the connection goes
//! to a vetted address and a name that resolves to a private one is refused (DNS rebinding
//! included). Loopback, private, link-local, shared, multicast and other reserved ranges,
//! IPv4-mapped and embedded forms included, are refused unless the operator allows private
//! upstreams.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URL may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VetError {
    #[error("the URL is not valid")]
    Invalid,
    #[error("only https URLs are allowed")]
    Scheme,
    #[error("URLs with user information are not allowed")]
    UserInfo,
    #[error("the address is loopback, private, link-local or reserved")]
    PrivateAddress,
}

/// How the outbound client resolves and vets names.
#[derive(Debug, Clone, Default)]
pub struct ResolverSettings {
    /// Admit loopback and private addresses (local development and tests).
    pub allow_private: bool,
    /// Names pinned to addresses, like curl's `--resolve` (`CONNECT_RESOLVE`). Pinned addresses
    /// are vetted like resolved ones.
    pub pinned: HashMap<String, Vec<IpAddr>>,
}

impl ResolverSettings {
    /// Parses `name=ip[,name=ip…]` (an address may repeat a name for several addresses).
    pub fn parse_pinned(text: &str) -> Result<HashMap<String, Vec<IpAddr>>, String> {
        let mut pinned: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, ip) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry}: expected name=ip"))?;
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|_| format!("{entry}: not an IP address"))?;
            pinned
                .entry(name.trim().to_ascii_lowercase())
                .or_default()
                .push(ip);
        }
        Ok(pinned)
    }
}

/// A resolved name had no address that may be reached.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves only to addresses that may not be reached")]
pub struct BlockedAddress;

/// Resolves `host` (a name, not a literal) and keeps the addresses that may be reached.
pub async fn resolve_vetted(
    settings: &ResolverSettings,
    host: &str,
) -> Result<Vec<IpAddr>, ResolveError> {
    let host = host.to_ascii_lowercase();
    let found: Vec<IpAddr> = match settings.pinned.get(&host) {
        Some(pinned) => pinned.clone(),
        None => tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|_| ResolveError::NotFound)?
            .map(|a| a.ip())
            .collect(),
    };
    let vetted: Vec<IpAddr> = found
        .into_iter()
        .filter(|ip| settings.allow_private || is_public(*ip))
        .collect();
    if vetted.is_empty() {
        return Err(ResolveError::Blocked(BlockedAddress));
    }
    Ok(vetted)
}

/// Why a name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the name does not resolve")]
    NotFound,
    #[error(transparent)]
    Blocked(BlockedAddress),
}

struct VettingResolver(Arc<ResolverSettings>);

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let settings = self.0.clone();
        Box::pin(async move {
            let vetted = resolve_vetted(&settings, name.as_str())
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Addrs = Box::new(vetted.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Builds the outbound client (see [`client`]) and keeps its resolver settings for the proxy's
/// own address phase.
pub fn client_with_settings(
    settings: ResolverSettings,
) -> (reqwest::Client, Arc<ResolverSettings>) {
    let shared = Arc::new(settings);
    (build(shared.clone()), shared)
}

/// Builds the outbound client: vetting resolver, no redirects, no proxy variables, deadlines for
/// connecting, for silence on the connection, and for a whole call (20 s: shorter than a refresh
/// lease, so no token request outlives the lease that allowed it). The proxy sets its own,
/// longer, per-request deadline.
pub fn client(settings: ResolverSettings) -> reqwest::Client {
    build(Arc::new(settings))
}

fn build(settings: Arc<ResolverSettings>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(VettingResolver(settings)))
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("agentsecrets-connect/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the outbound HTTP client configuration is valid")
}

/// Whether a request failed because the resolver refused every address.
pub fn is_blocked(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        // The connector may wrap the resolver's boxed error so that it no longer downcasts;
        // its message is ours and unique, so it identifies the refusal as well.
        if current.downcast_ref::<BlockedAddress>().is_some()
            || current.to_string() == BlockedAddress.to_string()
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// Checks that `text` is a URL the service may call. With `allow_private`, plain http and
/// private or loopback addresses are accepted (local development and tests).
pub fn vet(text: &str, allow_private: bool) -> Result<Url, VetError> {
    let url = Url::parse(text).map_err(|_| VetError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(VetError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(VetError::UserInfo);
    }
    let literal = match url.host() {
        None => return Err(VetError::Invalid),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(name)) => {
            let lower = name.to_ascii_lowercase();
            if !allow_private && (lower == "localhost" || lower.ends_with(".localhost")) {
                return Err(VetError::PrivateAddress);
            }
            None
        }
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(VetError::PrivateAddress);
    }
    Ok(url)
}

/// Whether an address is globally routable: not loopback, private, link-local, shared (CGNAT),
/// multicast, unspecified, documentation or otherwise reserved, including IPv4 addresses
/// mapped or embedded in IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let embedded_v4 = segments[0] == 0x0064 && segments[1] == 0xff9b // NAT64
                || segments[0] == 0x2002; // 6to4
            if embedded_v4 {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || segments[..6].iter().all(|s| *s == 0)) // IPv4-compatible
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_private_literals_and_plain_http_unless_allowed() {
        let refused = [
            "http://example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://localhost/",
            "https://user@example.com/",
            "ftp://example.com/",
        ];
        for url in refused {
            assert!(vet(url, false).is_err(), "case {url}");
        }
        assert!(vet("https://api.github.com/user", false).is_ok());
        assert!(vet("http://127.0.0.1:9000/token", true).is_ok());
        assert!(
            vet("https://user@example.com/", true).is_err(),
            "userinfo is never allowed"
        );
    }
}
