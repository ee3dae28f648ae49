//! The resumption model: Exim's bits ([`resumption`]), who resumes with whom and the
//! known-issue treatment ([`policy`], [`hostlist`]), and the ticket flavours
//! ([`ticket_policy`]).

pub mod hostlist;
pub mod policy;
pub mod resumption;
pub mod ticket_policy;
