//! Peer policy, as plain state driven by [`crate::Node`] with an explicit time: who we know
//! ([`book`]), who may connect ([`gater`]), how many we keep and whom we dial ([`tides`]), how
//! peers are scored ([`scoring`]) and when a low score gets a peer banned ([`score_ban`]);
//! which learned addresses may be dialled at all ([`netpolicy`]); how fast one source may open
//! inbound connections ([`accept_rate`]).

pub mod accept_rate;
pub mod book;
pub mod gater;
pub mod netpolicy;
pub mod score_ban;
pub mod scoring;
pub mod tides;
