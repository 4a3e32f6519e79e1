//! Misbehaviours of the simulated DNS servers, chosen by data.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};

/// How a DNS server (DoH or local resolver) treats the queries it receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer from the zone.
    #[default]
    Answer,
    /// Answer every query with rcode SERVFAIL and no records.
    ServFail,
    /// Answer every query with NOERROR and no records, even for unknown names.
    Empty,
    /// DoH only: reply with this HTTP status and a short text body instead of a DNS
    /// message. A value that is not a valid final status (not in 200..=999) is sent as
    /// 500. The local resolver treats it as [`Behaviour::Answer`].
    HttpError(u16),
    /// Wait this long (on the tokio clock, simulated by the caller) and then answer.
    SlowAnswer(Duration),
    /// DoH only: reply 200 with a body that is not a DNS message. The local resolver
    /// treats it as [`Behaviour::Answer`].
    Malformed,
}

impl Behaviour {
    /// Sleeps for [`Behaviour::SlowAnswer`], returns at once otherwise.
    pub(crate) async fn delay(&self) {
        if let Self::SlowAnswer(d) = self {
            tokio::time::sleep(*d).await;
        }
    }

    /// Rewrites a zone answer for [`Behaviour::ServFail`] and [`Behaviour::Empty`].
    pub(crate) fn apply(&self, mut response: Message) -> Message {
        let rcode = match self {
            Self::ServFail => ResponseCode::ServFail,
            Self::Empty => ResponseCode::NoError,
            Self::Answer | Self::HttpError(_) | Self::SlowAnswer(_) | Self::Malformed => {
                return response;
            }
        };
        response.metadata.response_code = rcode;
        response.answers.clear();
        response.authorities.clear();
        response.additionals.clear();
        response
    }
}
