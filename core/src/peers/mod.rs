//! Peer policy: who we know ([`book`]), who may connect ([`gater`]), how many we keep and whom
//! we dial ([`tides`]), and how peers are scored and banned ([`scoring`]). Plain state driven
//! by [`crate::Node`] with an explicit time.

pub mod book;
pub mod gater;
pub mod scoring;
pub mod tides;
