//! A simulated network link, for testing calls on bad networks without netem (these
//! machines have none): loss (random or in bursts), delay with jitter (which reorders),
//! a bandwidth cap with a bounded queue, and outages.
//!
//! It sits behind webrtc-rs's `Runtime` socket hook: every UDP datagram a peer connection
//! sends (ICE, DTLS, SRTP, SCTP) goes through [`LinkState::admit`], a sans-I/O decision
//! with time passed in, then waits in a delivery task until its time comes. Conditions can
//! change while a call runs ([`SimulatedLink::set`]). A test hands
//! [`SimulatedLink::runtime`] to a peer's `confab_call::NetworkConfig::socket_runtime`.
//!
//! A test-only crate: nothing that ships depends on it.

#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, EcnCodepoint, JoinHandle,
    RecvMeta, Runtime, TokioRuntime, Transmit,
};

/// What the link does to each datagram sent over it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConditions {
    /// Share of datagrams lost, 0 to 1.
    pub loss: f64,
    /// Mean length of a run of lost datagrams: 1 is independent (random) loss, more is
    /// bursty loss (a Gilbert-Elliott model with the same overall `loss`).
    pub mean_burst: f64,
    /// One-way delay added to every datagram.
    pub delay: Duration,
    /// Each datagram's delay varies uniformly by up to this much either way, so datagrams
    /// overtake each other.
    pub jitter: Duration,
    /// Link rate in bits per second; `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// At a capped rate, datagrams that would wait longer than this are dropped.
    pub max_queue: Duration,
    /// Nothing gets through.
    pub down: bool,
}

impl Default for LinkConditions {
    fn default() -> Self {
        LinkConditions {
            loss: 0.0,
            mean_burst: 1.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            max_queue: Duration::from_millis(200),
            down: false,
        }
    }
}

/// What the link did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub datagrams: u64,
    pub lost: u64,
    /// Dropped because the queue of a capped link was full.
    pub overflowed: u64,
    /// Dropped while the link was down.
    pub blocked: u64,
}

/// The link's decisions: which datagram is dropped and when each one arrives.
pub(crate) struct LinkState {
    conditions: LinkConditions,
    rng: fastrand::Rng,
    in_burst: bool,
    /// When the capped link finishes sending what it has queued.
    busy_until: Option<Instant>,
    counters: LinkCounters,
}

impl LinkState {
    fn new(conditions: LinkConditions, seed: u64) -> LinkState {
        LinkState {
            conditions,
            rng: fastrand::Rng::with_seed(seed),
            in_burst: false,
            busy_until: None,
            counters: LinkCounters::default(),
        }
    }

    /// A datagram of `len` bytes handed to the link at `now`: when it arrives, or `None`
    /// if it is lost.
    pub(crate) fn admit(&mut self, len: usize, now: Instant) -> Option<Instant> {
        self.counters.datagrams += 1;
        if self.conditions.down {
            self.counters.blocked += 1;
            return None;
        }
        if self.lose() {
            self.counters.lost += 1;
            return None;
        }
        let mut leaves = now;
        if let Some(rate) = self.conditions.rate_bps.filter(|&r| r > 0) {
            let start = self.busy_until.map_or(now, |busy| busy.max(now));
            if start - now > self.conditions.max_queue {
                self.counters.overflowed += 1;
                return None;
            }
            leaves = start + Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
            self.busy_until = Some(leaves);
        }
        let jitter = self.conditions.jitter.as_secs_f64() * (self.rng.f64() * 2.0 - 1.0);
        let delay = (self.conditions.delay.as_secs_f64() + jitter).max(0.0);
        Some(leaves + Duration::from_secs_f64(delay))
    }

    fn lose(&mut self) -> bool {
        let loss = self.conditions.loss.clamp(0.0, 1.0);
        if loss == 0.0 {
            return false;
        }
        if self.conditions.mean_burst <= 1.0 || loss == 1.0 {
            return self.rng.f64() < loss;
        }
        // Two states: a burst ends with probability 1/mean_burst per datagram, and starts
        // just often enough that the share of datagrams inside bursts is `loss`.
        let leave = 1.0 / self.conditions.mean_burst;
        let enter = loss * leave / (1.0 - loss);
        let flip = if self.in_burst { leave } else { enter };
        if self.rng.f64() < flip {
            self.in_burst = !self.in_burst;
        }
        self.in_burst
    }
}

/// A handle to one simulated link: give its runtime to a peer's `NetworkConfig`, change
/// its conditions at any time, read what it did.
#[derive(Clone)]
pub struct SimulatedLink(Arc<Mutex<LinkState>>);

impl fmt::Debug for SimulatedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimulatedLink")
            .field(&self.conditions())
            .finish()
    }
}

impl SimulatedLink {
    /// A link with these conditions; `seed` makes its random choices repeatable.
    pub fn new(conditions: LinkConditions, seed: u64) -> SimulatedLink {
        SimulatedLink(Arc::new(Mutex::new(LinkState::new(conditions, seed))))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, conditions: LinkConditions) {
        self.state().conditions = conditions;
    }

    pub fn conditions(&self) -> LinkConditions {
        self.state().conditions.clone()
    }

    pub fn counters(&self) -> LinkCounters {
        self.state().counters
    }

    /// The webrtc-rs runtime that sends through this link.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::new(LinkRuntime {
            inner: TokioRuntime,
            link: self.clone(),
        })
    }
}

/// Tokio, except that UDP sockets send through the link.
#[derive(Debug)]
struct LinkRuntime {
    inner: TokioRuntime,
    link: SimulatedLink,
}

impl Runtime for LinkRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        let (queue, queued) = mpsc::unbounded_channel();
        // Called on the connection's own runtime thread; the task ends with the socket.
        drop(self.inner.spawn(Box::pin(deliver(inner.clone(), queued))));
        Ok(Arc::new(LinkSocket {
            inner,
            link: self.link.clone(),
            queue,
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio-simulated-link"
    }
}

/// A datagram on its way.
struct InFlight {
    arrives: Instant,
    /// Keeps datagrams with the same arrival time in sending order.
    order: u64,
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    src_ip: Option<IpAddr>,
    contents: Vec<u8>,
}

impl InFlight {
    fn key(&self) -> (Instant, u64) {
        (self.arrives, self.order)
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

#[derive(Debug)]
struct LinkSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    link: SimulatedLink,
    queue: mpsc::UnboundedSender<InFlight>,
}

impl AsyncUdpSocket for LinkSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    // `max_gso_segments` stays 1: one transmit is one datagram.
    fn poll_send(&self, _cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let len = transmit.contents.len();
        let (arrives, order) = {
            let mut link = self.link.state();
            let arrives = link.admit(len, Instant::now());
            (arrives, link.counters.datagrams)
        };
        if let Some(arrives) = arrives {
            // A closed queue means the socket is going away: the datagram is lost.
            let _ = self.queue.send(InFlight {
                arrives,
                order,
                destination: transmit.destination,
                ecn: transmit.ecn,
                src_ip: transmit.src_ip,
                contents: transmit.contents.to_vec(),
            });
        }
        // A lost datagram looks sent to the sender, as on a real network.
        Poll::Ready(Ok(len))
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

/// Sends each datagram when its time comes, until the socket is dropped.
async fn deliver(socket: Arc<dyn AsyncUdpSocket>, mut queued: mpsc::UnboundedReceiver<InFlight>) {
    let mut in_flight: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    loop {
        let next = in_flight.peek().map(|Reverse(d)| d.arrives);
        tokio::select! {
            datagram = queued.recv() => match datagram {
                Some(datagram) => in_flight.push(Reverse(datagram)),
                None => return,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while in_flight.peek().is_some_and(|Reverse(d)| d.arrives <= now) {
                    let Some(Reverse(datagram)) = in_flight.pop() else { break };
                    let transmit = Transmit {
                        destination: datagram.destination,
                        ecn: datagram.ecn,
                        contents: &datagram.contents,
                        segment_size: None,
                        src_ip: datagram.src_ip,
                    };
                    // Send errors are what a real network does with the datagram: lost.
                    let _ = std::future::poll_fn(|cx| socket.poll_send(cx, &transmit)).await;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(conditions: LinkConditions, datagrams: usize) -> (LinkState, Vec<Option<Instant>>) {
        let mut link = LinkState::new(conditions, 7);
        let start = Instant::now();
        let arrivals = (0..datagrams)
            .map(|i| link.admit(1000, start + Duration::from_millis(i as u64)))
            .collect();
        (link, arrivals)
    }

    #[test]
    fn random_loss_has_the_asked_rate_in_short_runs() {
        let (link, arrivals) = run(
            LinkConditions {
                loss: 0.2,
                ..LinkConditions::default()
            },
            20_000,
        );
        let lost = link.counters.lost as f64 / 20_000.0;
        assert!((lost - 0.2).abs() < 0.01, "lost {lost}");
        let longest = longest_loss_run(&arrivals);
        assert!(longest < 12, "random loss ran {longest} in a row");
    }

    #[test]
    fn bursty_loss_has_the_asked_rate_in_long_runs() {
        let (link, arrivals) = run(
            LinkConditions {
                loss: 0.1,
                mean_burst: 4.0,
                ..LinkConditions::default()
            },
            50_000,
        );
        let lost = link.counters.lost as f64 / 50_000.0;
        assert!((lost - 0.1).abs() < 0.015, "lost {lost}");
        let runs = loss_runs(&arrivals);
        let mean = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
        assert!((mean - 4.0).abs() < 0.4, "mean burst {mean}");
    }

    #[test]
    fn jitter_delays_within_bounds_and_reorders() {
        let delay = Duration::from_millis(50);
        let jitter = Duration::from_millis(30);
        let mut link = LinkState::new(
            LinkConditions {
                delay,
                jitter,
                ..LinkConditions::default()
            },
            1,
        );
        let start = Instant::now();
        let mut arrivals = Vec::new();
        for i in 0..1000u64 {
            let sent = start + Duration::from_millis(i);
            let arrives = link.admit(100, sent).expect("no loss configured");
            let taken = arrives - sent;
            assert!(
                taken >= delay - jitter && taken <= delay + jitter,
                "{taken:?}"
            );
            arrivals.push(arrives);
        }
        let overtaken = arrivals.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(overtaken > 100, "only {overtaken} reordered");
    }

    #[test]
    fn a_capped_link_paces_and_drops_beyond_its_queue() {
        // 80 kbit/s = 10 bytes per ms; 1000-byte datagrams every ms is 10x too much.
        let (link, arrivals) = run(
            LinkConditions {
                rate_bps: Some(80_000),
                max_queue: Duration::from_millis(200),
                ..LinkConditions::default()
            },
            2000,
        );
        let through: Vec<Instant> = arrivals.iter().flatten().copied().collect();
        let span = *through.last().unwrap() - through[0];
        let rate = (through.len() - 1) as f64 * 8000.0 / span.as_secs_f64();
        assert!((rate - 80_000.0).abs() < 1000.0, "{rate} bit/s");
        assert!(link.counters.overflowed > 1500, "{:?}", link.counters);
        // Nobody waited much longer than the queue allows.
        let start = arrivals.iter().flatten().next().copied().unwrap();
        for (i, arrival) in arrivals.iter().enumerate() {
            if let Some(at) = arrival {
                let sent = start + Duration::from_millis(i as u64);
                assert!(at.saturating_duration_since(sent) <= Duration::from_millis(301));
            }
        }
    }

    #[test]
    fn a_link_that_is_down_delivers_nothing_until_it_is_up() {
        let mut link = LinkState::new(
            LinkConditions {
                down: true,
                ..LinkConditions::default()
            },
            1,
        );
        let now = Instant::now();
        assert_eq!(link.admit(100, now), None);
        link.conditions.down = false;
        assert_eq!(link.admit(100, now), Some(now));
        assert_eq!(link.counters.blocked, 1);
    }

    fn loss_runs(arrivals: &[Option<Instant>]) -> Vec<usize> {
        let mut runs = Vec::new();
        let mut run = 0;
        for arrival in arrivals {
            if arrival.is_none() {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        runs
    }

    fn longest_loss_run(arrivals: &[Option<Instant>]) -> usize {
        loss_runs(arrivals).into_iter().max().unwrap_or(0)
    }
}
