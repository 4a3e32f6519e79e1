//! The local resolver (LDNS): DNS over UDP and TCP, RFC 1035 section 4.2.
//!
//! UDP answers larger than 512 bytes, or than the query's EDNS payload size (RFC 6891),
//! are truncated with TC set (RFC 1035 section 4.1.1); TCP messages carry a two-byte
//! length prefix (RFC 1035 section 4.2.2, RFC 7766).
//!
//! [`Ldns`] is a hickory-server [`RequestHandler`]. hickory's `Server` listens only on
//! real tokio sockets, so this module drives the handler itself, one message at a time:
//! [`Request::from_bytes`], a [`ResponseHandle`] over a [`BufDnsStreamHandle`], and the
//! reply bytes from the handle's receiver.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use hickory_proto::op::{Header, HeaderCounts, Message, MessageType, Metadata, ResponseCode};
use hickory_server::net::BufDnsStreamHandle;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::ResponseInfo;
use hickory_server::server::{Request, RequestHandler, ResponseHandle, ResponseHandler};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Behaviour, Zone};

/// A local resolver that answers from the zone as if every client stood at its egress.
///
/// A real local resolver asks upstream from its own egress address, so GSLB answers are
/// the ones nearest the resolver, not the client: that is the behaviour modelled here.
#[derive(Clone, Debug)]
pub struct Ldns {
    zone: Arc<Zone>,
    egress_location: String,
    behaviour: Behaviour,
}

impl Ldns {
    /// A resolver answering from `zone` for clients at `egress_location`.
    ///
    /// [`Behaviour::HttpError`] means nothing without HTTP and is treated as
    /// [`Behaviour::Answer`].
    pub fn new(zone: Arc<Zone>, egress_location: String, behaviour: Behaviour) -> Self {
        Self {
            zone,
            egress_location,
            behaviour,
        }
    }

    /// Answers one datagram from `src`. `None` means drop it: it is not a DNS query.
    pub async fn handle_udp(&self, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        self.handle_message(query, src, Protocol::Udp).await
    }

    /// Serves one TCP connection from `src`: length-prefixed queries, each answered in
    /// turn, until the peer closes its side. A message that is not a DNS query ends the
    /// connection without a reply; so does a stream ending inside a length prefix. A
    /// stream ending inside a message is an `UnexpectedEof` error.
    pub async fn handle_tcp<S>(&self, mut stream: S, src: SocketAddr) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let mut prefix = [0_u8; 2];
            match stream.read_exact(&mut prefix).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let mut query = vec![0_u8; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut query).await?;
            let Some(reply) = self.handle_message(&query, src, Protocol::Tcp).await else {
                return Ok(());
            };
            let Ok(len) = u16::try_from(reply.len()) else {
                return Err(io::Error::other("dns reply longer than 65535 bytes"));
            };
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&reply);
            stream.write_all(&framed).await?;
            stream.flush().await?;
        }
    }

    /// Runs the request handler on one message and collects what it sent.
    async fn handle_message(
        &self,
        wire: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let request = Request::from_bytes(wire.to_vec(), src, protocol).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let (stream, mut replies) = BufDnsStreamHandle::new(src);
        let handle = ResponseHandle::new(src, stream, protocol);
        // The handle, and with it the only sender, is dropped when the handler returns.
        self.handle_request::<_, TokioTime>(&request, handle).await;
        replies.next().await.map(|reply| reply.into_parts().0)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Ldns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        // The raw bytes parsed once already, as a `MessageRequest`; `Zone` wants a
        // `Message`, so parse them again as one.
        let Ok(query) = Message::from_vec(request.as_slice()) else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut response_handle, response, &request.metadata).await;
        };

        let answer = self.zone.answer(&query, Some(&self.egress_location));
        let answer = self.behaviour.apply(answer);
        if let Behaviour::SlowAnswer(d) = self.behaviour {
            T::delay_for(d).await;
        }

        // hickory caps UDP replies at the response's EDNS payload size: make that the
        // size the client said it accepts.
        let mut edns = answer.edns.clone();
        if let Some(edns) = &mut edns {
            edns.set_max_payload(request.max_payload());
        }
        let mut builder = builder;
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            answer.metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        send(&mut response_handle, response, &request.metadata).await
    }
}

/// Sends `response`; on failure reports a SERVFAIL that never left, as hickory does.
async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
    >,
    request: &Metadata,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(id = request.id, error = %e, "ldns reply not sent");
            let mut metadata = Metadata::response_from_request(request);
            metadata.response_code = ResponseCode::ServFail;
            let counts = HeaderCounts::default();
            ResponseInfo::from(Header { metadata, counts })
        }
    }
}
