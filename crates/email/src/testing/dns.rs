//! A real DNS server on loopback (`hickory-server`, in process, UDP and TCP on one port) that
//! answers from records a test changes while it runs. It is authoritative for every name: a name
//! it holds nothing for gets NXDOMAIN, a name without the asked type gets an empty answer.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, LowerQuery, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{CNAME, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

/// A TTL like real zones have, so that a resolver that cached answers would fail the tests.
const TTL: u32 = 3600;

/// What the server holds at one name.
#[derive(Clone, Debug)]
enum Data {
    /// TXT records, each as its character-strings.
    Txt(Vec<Vec<String>>),
    Cname(Name),
    /// Every query for the name is answered SERVFAIL.
    ServFail,
}

/// Names are keys in lower case without the final dot.
type Zone = Arc<RwLock<HashMap<String, Data>>>;

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The server; its tasks stop when it is dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Zone,
    server: Server<Handler>,
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Dropping the server aborts its tasks too; cancelling first lets them end cleanly.
        self.server.shutdown_token().cancel();
    }
}

impl DnsServer {
    /// Starts on 127.0.0.1 at a free port, UDP and TCP alike.
    pub async fn start() -> io::Result<DnsServer> {
        let (udp, tcp) = bind().await?;
        let addr = udp.local_addr()?;
        let zone = Zone::default();
        let mut server = Server::new(Handler { zone: zone.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        Ok(DnsServer { addr, zone, server })
    }

    /// Where to send queries (UDP or TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces whatever is at `name` with one TXT record per value. A value longer than 255 bytes
    /// is split into several character-strings of one record, as DNS operators publish long DKIM
    /// keys. No values leaves the name existing with no records (an empty answer, not NXDOMAIN).
    pub fn set_txt(&self, name: &str, values: &[impl AsRef<str>]) {
        let records = values.iter().map(|value| chunks(value.as_ref())).collect();
        self.set(name, Data::Txt(records));
    }

    /// Replaces whatever is at `name` with a CNAME to `target`.
    ///
    /// # Panics
    /// If `target` is not a domain name.
    pub fn set_cname(&self, name: &str, target: &str) {
        let mut target = Name::from_ascii(target).expect("a CNAME target is a domain name");
        target.set_fqdn(true);
        self.set(name, Data::Cname(target));
    }

    /// Makes every query for `name` fail with SERVFAIL, as a broken upstream zone does.
    pub fn set_servfail(&self, name: &str) {
        self.set(name, Data::ServFail);
    }

    /// Removes everything at `name`, which then does not exist (NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.zone.write().unwrap_or_else(PoisonError::into_inner).remove(&key(name));
    }

    fn set(&self, name: &str, data: Data) {
        self.zone.write().unwrap_or_else(PoisonError::into_inner).insert(key(name), data);
    }
}

/// Binds UDP at a free port and TCP at the same one; another process may hold that TCP port, so
/// a few ports are tried.
async fn bind() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = io::Error::other("no port tried");
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Splits a value into character-strings of at most 255 bytes, not cutting a UTF-8 character.
fn chunks(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = value;
    while rest.len() > 255 {
        let mut end = 255;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part.to_owned());
        rest = tail;
    }
    parts.push(rest.to_owned());
    parts
}

struct Handler {
    zone: Zone,
}

impl Handler {
    /// The answer for one query: a CNAME chain is followed within the data the server holds, as
    /// an authoritative server does within its zone.
    fn answer(&self, query: &LowerQuery) -> (ResponseCode, Vec<Record>) {
        let zone = self.zone.read().unwrap_or_else(PoisonError::into_inner);
        let mut name = Name::from(query.name().clone());
        let mut records = Vec::new();
        for _ in 0..8 {
            match zone.get(&key(&name.to_ascii())) {
                None if records.is_empty() => return (ResponseCode::NXDomain, records),
                None => break,
                Some(Data::ServFail) => return (ResponseCode::ServFail, Vec::new()),
                Some(Data::Txt(txts)) => {
                    if query.query_type() == RecordType::TXT {
                        let txts = txts.iter().map(|parts| RData::TXT(TXT::new(parts.clone())));
                        records.extend(txts.map(|txt| Record::from_rdata(name.clone(), TTL, txt)));
                    }
                    break;
                }
                Some(Data::Cname(target)) => {
                    records.push(Record::from_rdata(name.clone(), TTL, RData::CNAME(CNAME(target.clone()))));
                    if query.query_type() == RecordType::CNAME {
                        break;
                    }
                    name = target.clone();
                }
            }
        }
        (ResponseCode::NoError, records)
    }
}

// `RequestHandler` is declared with `async_trait`; this is the method that macro would write,
// spelled out to spare this crate the dependency.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        mut response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let (code, records) = match request.request_info() {
                Ok(info) => self.answer(info.query),
                Err(_) => (ResponseCode::FormErr, Vec::new()),
            };
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.authoritative = true;
            metadata.response_code = code;
            // Answer EDNS with EDNS, so UDP answers may exceed 512 bytes as real servers' do.
            let edns = request.edns.as_ref().map(|asked| {
                let mut edns = Edns::new();
                edns.set_max_payload(asked.max_payload().max(512));
                edns
            });
            let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
                metadata,
                records.iter(),
                std::iter::empty(),
                std::iter::empty(),
                std::iter::empty(),
            );
            match response_handle.send_response(response).await {
                Ok(info) => info,
                Err(error) => {
                    tracing::warn!(%error, "the test DNS server could not send an answer");
                    metadata.response_code = ResponseCode::ServFail;
                    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn long_values_are_split_into_character_strings_of_255_bytes() {
        assert_eq!(chunks(""), [""]);
        assert_eq!(chunks(&"a".repeat(255)), ["a".repeat(255)]);
        assert_eq!(chunks(&"a".repeat(600)), ["a".repeat(255), "a".repeat(255), "a".repeat(90)]);
        // A two-byte character straddling byte 255 moves whole into the next string.
        let value = format!("{}é", "a".repeat(254));
        assert_eq!(chunks(&value), ["a".repeat(254), "é".to_owned()]);
    }
}
