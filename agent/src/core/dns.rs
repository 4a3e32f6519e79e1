//! DNS messages the agent sends and reads (RFC 1035, EDNS Client Subnet RFC 7871).
//! Pure functions over hickory-proto messages: no IO.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};

/// The prefix length of the client subnet the agent sends in ECS.
pub const ECS_PREFIX: u8 = 24;

/// Builds an A query for `name` with id `id`, with an ECS option for `subnet` if given.
pub fn build_query(id: u16, name: &str, subnet: Option<Ipv4Addr>) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    // A name the agent builds from its own config always parses; fall back to root if not.
    let qname = Name::from_ascii(name).unwrap_or_else(|_| Name::root());
    msg.add_query(Query::query(qname, RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some(ip) = subnet {
        let masked = u32::from(ip) & (u32::MAX << (32 - u32::from(ECS_PREFIX)));
        let cs = ClientSubnet::new(IpAddr::V4(Ipv4Addr::from(masked)), ECS_PREFIX, 0);
        edns.options_mut().insert(EdnsOption::Subnet(cs));
    }
    msg.set_edns(edns);
    msg.to_vec().unwrap_or_default()
}

/// What an answer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses for the name, in answer order.
    Addresses(Vec<Ipv4Addr>),
    /// The TC bit was set: ask again over TCP.
    Truncated,
    /// An error rcode (SERVFAIL, NXDOMAIN, REFUSED...).
    Rcode(String),
    /// NOERROR but no A record.
    Empty,
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The bytes are not a DNS message.
    #[error("malformed DNS message: {0}")]
    Malformed(String),
    /// The id does not match the query.
    #[error("answer id {got} does not match query id {want}")]
    WrongId {
        /// The id the agent sent.
        want: u16,
        /// The id that came back.
        got: u16,
    },
}

/// Reads an answer to query `id`.
pub fn read_answer(id: u16, bytes: &[u8]) -> Result<Answer, AnswerError> {
    let msg = Message::from_vec(bytes).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    if msg.metadata.id != id {
        return Err(AnswerError::WrongId {
            want: id,
            got: msg.metadata.id,
        });
    }
    if msg.metadata.truncation {
        return Ok(Answer::Truncated);
    }
    if msg.metadata.response_code != ResponseCode::NoError {
        return Ok(Answer::Rcode(
            msg.metadata.response_code.to_str().to_string(),
        ));
    }
    let ips: Vec<Ipv4Addr> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    Ok(if ips.is_empty() {
        Answer::Empty
    } else {
        Answer::Addresses(ips)
    })
}
