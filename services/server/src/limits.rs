//! Limits no client can get past: how often a token may ask (and, before a token is known, an
//! address), how many requests are served at once, and how long one may take. Per replica:
//! with three replicas behind a balancer, a token may make three times the rate in all.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use tokio::sync::Semaphore;

/// How often one key (a token, an address) may be served: `rate` a second on average, with up
/// to `burst` at once after a quiet spell. The generic cell rate algorithm: each key keeps
/// only the instant its next request would be on time.
#[derive(Debug)]
pub struct RateLimiter<K> {
    /// Time between requests at the average rate.
    interval: Duration,
    /// How far ahead of that pace a key may run: the burst, less the request itself.
    tolerance: Duration,
    state: Mutex<Keys<K>>,
}

#[derive(Debug)]
struct Keys<K> {
    /// Per key, when its next request is due at the average rate.
    due: HashMap<K, Instant>,
    /// The size at which keys whose bucket is full again are forgotten.
    sweep_at: usize,
}

/// A request past the limit: when one would be served again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds to wait, at least one (for `Retry-After`).
    pub fn retry_after_seconds(self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` requests a second per key (at least 1), with bursts of `burst` (at least 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        Self {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            state: Mutex::new(Keys {
                due: HashMap::new(),
                sweep_at: 1024,
            }),
        }
    }

    /// Counts a request for `key` if it is within the limit.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Limited> {
        let mut keys = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = self.admit(&keys.due, key, now)?;
        if keys.due.len() >= keys.sweep_at {
            // Keys whose next request is already due have a full bucket: as if never seen.
            keys.due.retain(|_, due| *due > now);
            keys.sweep_at = (keys.due.len() * 2).max(1024);
        }
        keys.due.insert(key.clone(), due + self.interval);
        Ok(())
    }

    /// Whether a request for `key` would be within the limit, without counting it.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Limited> {
        let keys = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.admit(&keys.due, key, now).map(|_| ())
    }

    /// When `key`'s request counts from, if it is admitted now.
    fn admit(&self, due: &HashMap<K, Instant>, key: &K, now: Instant) -> Result<Instant, Limited> {
        let due = due
            .get(key)
            .copied()
            .filter(|due| *due > now)
            .unwrap_or(now);
        let ahead = due - now;
        if ahead > self.tolerance {
            return Err(Limited {
                retry_after: ahead - self.tolerance,
            });
        }
        Ok(due)
    }
}

/// The rate limits of one replica: per token once a request is authenticated, per address for
/// requests whose token is missing or wrong (they are refused before the token is looked up).
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// `None` when limits are off (`HOMEWARD_RATE_LIMIT=0`).
    limiters: Option<Arc<(RateLimiter<uuid::Uuid>, RateLimiter<IpAddr>)>>,
    pub rate: u32,
    pub burst: u32,
}

impl RateLimits {
    pub fn new(rate: u32, burst: u32) -> Self {
        let limiters = (rate > 0)
            .then(|| Arc::new((RateLimiter::new(rate, burst), RateLimiter::new(rate, burst))));
        Self {
            limiters,
            rate,
            burst,
        }
    }

    /// Counts a request of the token `token_id`.
    pub fn token(&self, token_id: uuid::Uuid) -> Result<(), Limited> {
        match &self.limiters {
            Some(limiters) => limiters.0.take(&token_id, Instant::now()),
            None => Ok(()),
        }
    }

    /// Whether `address` may try a token again (before it is looked up).
    pub fn address_may_try(&self, address: IpAddr) -> Result<(), Limited> {
        match &self.limiters {
            Some(limiters) => limiters.1.check(&address, Instant::now()),
            None => Ok(()),
        }
    }

    /// Counts a request from `address` whose token was missing or wrong.
    pub fn address_failed(&self, address: IpAddr) {
        if let Some(limiters) = &self.limiters {
            let _ = limiters.1.take(&address, Instant::now());
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`HOMEWARD_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Addresses and networks, comma-separated: `10.0.0.5, 172.16.0.0/12`.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "{part:?} is neither an IP address nor a network such as 10.0.0.0/8"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address: the connection's, unless that is a trusted proxy; then the
    /// nearest address in `X-Forwarded-For` that is not one (each proxy appends the address
    /// it was reached from, so the entries left of a stranger's are the stranger's to write).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !self.trusts(address) {
                        break;
                    }
                }
                // Unreadable: the proxy nearest it is the last address known.
                Err(_) => break,
            }
        }
        client
    }
}

/// The address of the client that sent a request, as [`TrustedProxies::client`] finds it.
pub fn client_address(
    proxies: &TrustedProxies,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    proxies.client(peer, headers)
}

/// How many requests are served at once and how long each may take.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub in_flight: Arc<Semaphore>,
    pub request_timeout: Duration,
}

/// Waits for a place among the requests served at once, then serves the request within the
/// request timeout (the wait included); past it, 503 with code `TIMEOUT`.
pub async fn paced(State(pacing): State<Pacing>, request: Request, next: Next) -> Response {
    let served = async {
        let _place = pacing.in_flight.acquire().await;
        next.run(request).await
    };
    match tokio::time::timeout(pacing.request_timeout, served).await {
        Ok(response) => response,
        Err(_) => crate::routes::timed_out(pacing.request_timeout).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_average_rate() {
        let limiter = RateLimiter::new(20, 100);
        let start = Instant::now();
        for n in 0..100 {
            assert_eq!(
                limiter.take(&"t", start),
                Ok(()),
                "request {n} of the burst"
            );
        }
        let refused = limiter.take(&"t", start).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(50));
        assert_eq!(refused.retry_after_seconds(), 1);
        // Another key is not affected.
        assert_eq!(limiter.take(&"u", start), Ok(()));
        // 50 ms later, one more.
        let later = start + Duration::from_millis(50);
        assert_eq!(limiter.take(&"t", later), Ok(()));
        assert!(limiter.take(&"t", later).is_err());
        // After five quiet seconds, the whole burst again.
        let quiet = later + Duration::from_secs(5);
        for _ in 0..100 {
            assert_eq!(limiter.take(&"t", quiet), Ok(()));
        }
        assert!(limiter.take(&"t", quiet).is_err());
    }

    #[test]
    fn check_does_not_count() {
        let limiter = RateLimiter::new(1, 2);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check(&1, now), Ok(()));
        }
        assert_eq!(limiter.take(&1, now), Ok(()));
        assert_eq!(limiter.take(&1, now), Ok(()));
        assert!(limiter.check(&1, now).is_err());
    }

    #[test]
    fn keys_with_a_full_bucket_are_forgotten() {
        let limiter = RateLimiter::new(1000, 1);
        let start = Instant::now();
        for n in 0..1500u32 {
            limiter.take(&n, start).unwrap();
        }
        let later = start + Duration::from_secs(1);
        for n in 1500..2100u32 {
            limiter.take(&n, later).unwrap();
        }
        let keys = limiter.state.lock().unwrap();
        assert_eq!(keys.due.len(), 600);
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.5, 172.16.0.0/12").unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        // A stranger cannot choose its address by writing the header.
        assert_eq!(
            proxies.client(stranger, &forwarded("198.51.100.1")),
            stranger
        );
        // Behind the proxy: the address it saw.
        assert_eq!(
            proxies.client(proxy, &forwarded("198.51.100.1")),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // A client that writes its own entry first gets the one the proxies appended.
        assert_eq!(
            proxies.client(proxy, &forwarded("1.2.3.4, 198.51.100.1, 172.16.3.3")),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Garbage stops at the last address known.
        assert_eq!(proxies.client(proxy, &forwarded("nonsense")), proxy);
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
