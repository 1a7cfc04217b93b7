//! The DNS wire format (RFC 1035 §4, EDNS from RFC 6891): what the server reads from clients
//! and upstream resolvers and what it writes back. Parsing takes any bytes and returns an
//! error for what is not a message; it never panics and never allocates more than the input
//! can describe.

mod message;
mod name;

pub use message::{flags, opcode, rcode, rtype, Edns, Header, Message, Question, RData, Record, CLASS_IN};
pub use name::{Labels, Name, MAX_LABEL, MAX_NAME};

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message ends inside a field")]
    Truncated,
    #[error("bad label length or type")]
    BadLabel,
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("compression pointer not strictly backwards")]
    BadPointer,
    #[error("record data does not fit its type {0}")]
    BadRdata(u16),
    #[error("more than one OPT record, or one not owned by the root")]
    BadOpt,
    #[error("message longer than 65535 bytes")]
    TooLong,
}
